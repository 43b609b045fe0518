// CNI calls handed over by plugin processes (kubernetes mode, src/cni/handoff.ts): run here,
// warm, exactly as the process would run them (src/cni/dispatch.ts), with the process's
// environment and config, their stdout captured for the answer. Calls run concurrently, as
// separate processes would: the attachment locks order them, and every network namespace
// switch is a synchronous window on this thread (src/net/netns.ts). The agent declines, and
// the process runs it, a call of another build of the plugin (the binary was upgraded under a
// running agent), or whose network namespace it cannot open as the plugin would (not visible
// in its mount namespace, or a /proc/PID path of another PID namespace: judged on the path
// resolved, so `..` cannot dress a /proc path up as another).
//
// An ADD runs only as long as it is wanted: its caller's connection closing (the runtime
// killed the plugin after its timeout) or a DEL of the same attachment (the plugin's DEL tells
// the agent, `cancelAdds`) aborts it, and it stops and rolls back at its next step, or does
// not begin at all if it still waits for the attachment's lock. Otherwise the late ADD would
// complete after the runtime's DEL, for a pod nobody will delete.
import type { CniCaller, CniReply, CniRequest, CniRunner } from "../spec/agent_wire.ts";
import { quote } from "../spec/text.ts";
import { CniError, ErrCode } from "../spec/cni.ts";
import { buildStamp } from "../build_stamp.ts";
import { resolveNetnsPath } from "../net/netns.ts";
import type { Cidr } from "../spec/ipv4.ts";
import type { RoutingMode } from "../spec/routing.ts";

/** The fault injection of the robustness tests (cni/fault.ts) is honoured in a handed-over
 * call only when the agent itself was started with this set to 1 (the tests do). */
export const AGENT_FAULTS_ENV = "EBPFCNI_AGENT_FAULTS";

export class CniCounts {
  readonly handled: Record<string, number> = {};
  declined = 0;
  /** How long the last call of each command took here, ms. */
  readonly lastMs: Record<string, number> = {};

  count(reply: CniReply, command: string, ms: number): void {
    if ("fallback" in reply) this.declined++;
    else {
      this.handled[command] = (this.handled[command] ?? 0) + 1;
      this.lastMs[command] = Math.round(ms * 100) / 100;
    }
  }
}

function visible(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

export type { CniCaller };

export class CniServer {
  /** This agent's build, read when it started (before any upgrade of the files). */
  readonly build = buildStamp();
  readonly faults = Deno.env.get(AGENT_FAULTS_ENV) === "1";
  /** The ADDs running, by attachment. */
  readonly #adds = new Map<string, Set<AbortController>>();
  readonly #runCni: CniRunner;

  /** `runCni`: the CNI dispatcher (src/cni/dispatch.ts), handed in by the composition root;
   * `agent.podCidr`: this node's pod CIDR, which the calls run here get straight from the
   * agent. */
  constructor(
    runCni: CniRunner,
    readonly agent: { podCidr?: () => Promise<Cidr>; routing?: RoutingMode } = {},
  ) {
    this.#runCni = runCni;
  }

  async serve(
    req: CniRequest,
    caller: CniCaller = { pid: 0, signal: new AbortController().signal },
  ): Promise<CniReply> {
    if (req.build !== undefined && req.build !== this.build) {
      return {
        fallback: "the agent runs another build of ebpfcni than the plugin (restart the agent)",
      };
    }
    if (req.env.CNI_COMMAND !== "ADD") {
      return await serveCni(
        req,
        this.faults,
        this.#caller(caller.pid, caller.signal),
        caller,
        this.#runCni,
      );
    }
    const key = attachmentKey(req.env.CNI_CONTAINERID ?? "", req.env.CNI_IFNAME ?? "");
    const wanted = new AbortController();
    const onGone = () =>
      wanted.abort(
        new CniError(
          ErrCode.TryAgainLater,
          "The plugin process that handed the ADD over is gone (the runtime gave up on it): " +
            "the ADD is undone",
        ),
      );
    if (caller.signal.aborted) onGone();
    caller.signal.addEventListener("abort", onGone);
    const running = this.#adds.get(key) ?? new Set();
    this.#adds.set(key, running.add(wanted));
    try {
      return await serveCni(
        req,
        this.faults,
        this.#caller(caller.pid, wanted.signal),
        caller,
        this.#runCni,
      );
    } finally {
      caller.signal.removeEventListener("abort", onGone);
      running.delete(wanted);
      if (running.size === 0 && this.#adds.get(key) === running) this.#adds.delete(key);
    }
  }

  #caller(pid: number, signal: AbortSignal): CniCaller {
    const { podCidr, routing } = this.agent;
    return {
      pid,
      signal,
      ...(podCidr === undefined ? {} : { podCidr }),
      ...(routing === undefined ? {} : { routing }),
    };
  }

  /** A DEL of the attachment came: the ADDs of it still running stop and roll back. */
  cancelAdds(containerId: string, ifname: string): number {
    const running = this.#adds.get(attachmentKey(containerId, ifname));
    for (const add of running ?? []) {
      add.abort(
        new CniError(
          ErrCode.TryAgainLater,
          `A DEL of container ${quote(containerId)} interface ${
            quote(ifname)
          } came before the ADD finished: the ADD is abandoned`,
        ),
      );
    }
    return running?.size ?? 0;
  }
}

function attachmentKey(containerId: string, ifname: string): string {
  return `${containerId}\0${ifname}`;
}

/** `caller`: the call runs while it is wanted; `conn`: whether its process is still there. */
async function serveCni(
  req: CniRequest,
  faults: boolean,
  caller: CniCaller,
  conn: CniCaller,
  runCni: CniRunner,
): Promise<CniReply> {
  // ADD and CHECK enter the pod's network namespace. A /proc/PID/ns/net path names a process
  // of the caller's PID namespace, which may not be the agent's.
  const netns = req.env.CNI_NETNS ?? "";
  const resolved = netns.startsWith("/") ? resolveNetnsPath(netns) : netns;
  if (!netns.startsWith("/") || resolved.startsWith("/proc/") || !visible(resolved)) {
    return {
      fallback: `CNI_NETNS ${quote(netns)} is not one the agent can open as the plugin would`,
    };
  }
  const env = faults
    ? req.env
    : Object.fromEntries(Object.entries(req.env).filter(([k]) => !k.startsWith("EBPFCNI_FAULT")));
  let stdout = "";
  const code = await runCni({
    env,
    stdin: () => Promise.resolve(new TextEncoder().encode(req.stdin)),
    stdout: (s) => {
      // The result is the commit: an ADD whose caller is gone by now is undone (runCni undoes
      // an ADD whose result cannot be written).
      conn.signal.throwIfAborted();
      stdout += s;
    },
    caller,
  });
  return { code, stdout };
}
