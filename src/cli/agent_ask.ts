// Asking the node's policy agent over its socket, for the CLI commands that do (`agent status`,
// `policy explain`): which socket, and a failed or refused answer as a failed command.
import { errorMessage, quote } from "../spec/text.ts";
import { DEFAULT_AGENT_SOCKET } from "../spec/agent_wire.ts";
import { dirPathProblem } from "../spec/name_rules.ts";
import { requestLine, RpcError } from "../net/unix_rpc.ts";
import type { ParsedFlags } from "./args.ts";
import { CommandError, UsageError } from "./errors.ts";

export const SOCKET_HELP = `--socket PATH is the agent's socket (default ${DEFAULT_AGENT_SOCKET}, or
EBPFCNI_AGENT_SOCKET).`;

export function socketOf(values: ParsedFlags["values"], env: Record<string, string>): string {
  const v = typeof values.socket === "string"
    ? values.socket
    : env.EBPFCNI_AGENT_SOCKET ?? DEFAULT_AGENT_SOCKET;
  const problem = dirPathProblem(v);
  if (problem !== undefined) throw new UsageError(`Invalid --socket ${quote(v)}: ${problem}`);
  return v;
}

/** Asks the agent; its error answers and an unreachable agent are failures (exit 1). */
export async function ask(
  socket: string,
  req: unknown,
  timeoutMs = 10_000,
): Promise<Record<string, unknown>> {
  let reply: unknown;
  try {
    reply = await requestLine(socket, req, timeoutMs);
  } catch (err) {
    if (err instanceof RpcError && err.kind === "unreachable") {
      throw new CommandError(
        `The policy agent is not reachable on ${quote(socket)}: is "ebpfcni agent run" running?`,
        { cause: err },
      );
    }
    throw new CommandError(`The policy agent on ${quote(socket)}: ${errorMessage(err)}`, {
      cause: err,
    });
  }
  const r = reply as Record<string, unknown>;
  if (typeof r?.error === "string") throw new CommandError(`The policy agent: ${r.error}`);
  return r;
}
