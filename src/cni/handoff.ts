// Kubernetes mode: a CNI call (ADD, CHECK) handed to the node's policy agent over its
// socket. The agent is warm: it runs the call exactly as this process would (its
// src/cni/dispatch.ts), without this process loading and first running the plugin's code,
// which is most of a cold call's cost (bench/RESULTS.md). The process runs the call itself
// when the config says `"agentHandoff": false`, when no agent listens, when the agent
// declines (another build, a netns it cannot open as this process would) or refuses the
// request (an older agent). Once the agent has taken an ADD and then fails to answer, the ADD
// fails with code 11: the runtime's DEL then undoes whatever the agent did, and the runtime
// tries again. A CHECK is simply run here instead. DEL always runs here (spec/agent_wire.ts says why). Only this module, the socket client
// and the protocol load on this path.
import { requestLine, RpcError } from "../net/unix_rpc.ts";
import { type CniReply, DEFAULT_AGENT_SOCKET, HANDOFF_COMMANDS } from "../spec/agent_wire.ts";
import { CniError, ErrCode } from "../spec/cni.ts";
import { isObject, type Obj } from "../spec/json.ts";
import { errorMessage, quote } from "../spec/text.ts";
import { log } from "../log.ts";
import { buildStamp } from "../build_stamp.ts";

/** How long the process waits for the agent's answer: longer than the agent may wait for the
 * attachment's lock (60 s, cni/lock.ts) and for the pod to reach its source (10 s), so the
 * process does not give up on a call the agent still runs. */
export const HANDOFF_TIMEOUT_MS = 90_000;

export interface HandoffIo {
  env: Record<string, string>;
  /** All of stdin (read once, by whoever asks first). */
  stdin: () => Uint8Array;
  /** stdin's JSON object, decoded once by the caller (decodeNetConf). */
  config: Obj;
  stdout: (s: string) => void;
}

/** What a config (stdin's JSON) asks of this call: the agent's socket when the call is to be
 * handed over. */
export function handoffSocket(env: Record<string, string>, json: unknown): string | undefined {
  if (!(HANDOFF_COMMANDS as readonly string[]).includes(env.CNI_COMMAND ?? "")) return undefined;
  if (!isObject(json) || json.policyMode !== "kubernetes" || json.agentHandoff === false) {
    return undefined;
  }
  const socket = json.agentSocket ?? DEFAULT_AGENT_SOCKET;
  return typeof socket === "string" && socket.startsWith("/") ? socket : undefined;
}

/** The agent's answer to a handed-over call, or why the process is to run it itself. */
export async function handOff(
  socket: string,
  env: Record<string, string>,
  config: string,
  timeoutMs = HANDOFF_TIMEOUT_MS,
): Promise<CniReply> {
  let reply: unknown;
  try {
    const req = { op: "cni", env, stdin: config, build: buildStamp() };
    reply = await requestLine(socket, req, timeoutMs);
  } catch (err) {
    if (err instanceof RpcError && err.kind === "unreachable") {
      return { fallback: `no agent listens on ${quote(socket)}` };
    }
    if (err instanceof RpcError && err.kind === "unsent") {
      return { fallback: `the request did not reach the agent: ${err.message}` };
    }
    const why = errorMessage(err);
    if (env.CNI_COMMAND !== "ADD") return { fallback: `the agent failed to answer: ${why}` };
    return { code: 1, stdout: tryAgainJson(config, socket, why) + "\n" };
  }
  if (isObject(reply)) {
    if (typeof reply.code === "number" && typeof reply.stdout === "string") {
      return { code: reply.code, stdout: reply.stdout };
    }
    if (typeof reply.fallback === "string") return { fallback: reply.fallback };
    if (typeof reply.error === "string") return { fallback: `the agent refused: ${reply.error}` };
  }
  return { fallback: "the agent's answer is not one of a CNI call" };
}

function tryAgainJson(config: string, socket: string, why: string): string {
  let cniVersion = "1.1.0";
  try {
    const v = JSON.parse(config).cniVersion;
    if (typeof v === "string") cniVersion = v;
  } catch {
    // parsed before: cannot fail here
  }
  const err = new CniError(
    ErrCode.TryAgainLater,
    `The policy agent on ${quote(socket)} took the ADD and did not answer`,
    `${why}; the runtime's DEL undoes what it did`,
  );
  return JSON.stringify(err.toJSON(cniVersion));
}

/**
 * Runs the call through the agent when the config asks for it and the agent takes it: the
 * exit code, its result written to stdout. Undefined: run it in this process.
 */
export async function runHandoff(io: HandoffIo): Promise<number | undefined> {
  if (!(HANDOFF_COMMANDS as readonly string[]).includes(io.env.CNI_COMMAND ?? "")) {
    return undefined;
  }
  const socket = handoffSocket(io.env, io.config);
  if (socket === undefined) return undefined;
  const config = new TextDecoder().decode(io.stdin());
  const reply = await handOff(socket, io.env, config);
  if ("fallback" in reply) {
    log.debug(`${io.env.CNI_COMMAND} runs in this process: ${reply.fallback}`);
    return undefined;
  }
  try {
    io.stdout(reply.stdout);
  } catch (err) {
    if (io.env.CNI_COMMAND !== "ADD" || reply.code !== 0) return 1;
    // The runtime never got the result (stdout closed): undone like any failed ADD.
    log.error(`ADD: cannot write the result (${err}); undoing it`);
    const { runCni } = await import("./dispatch.ts");
    await runCni({
      env: { ...io.env, CNI_COMMAND: "DEL" },
      stdin: () => Promise.resolve(io.stdin()),
      stdout: () => {},
    });
    return 1;
  }
  return reply.code;
}
