// CNI calls handed over by plugin processes (kubernetes mode, src/cni/handoff.ts): run here,
// warm, exactly as the process would run them (src/cni/dispatch.ts), with the process's
// environment and config, their stdout captured for the answer. Calls run concurrently, as
// separate processes would: the attachment locks order them, and every network namespace
// switch is a synchronous window on this thread (src/net/netns.ts). The agent declines a call
// whose network namespace it cannot see (another mount namespace), and the process runs it.
import type { CniReply, CniRequest } from "../spec/agent.ts";
import { quote } from "../spec/text.ts";

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

export async function serveCni(req: CniRequest): Promise<CniReply> {
  // ADD and CHECK enter the pod's network namespace.
  const netns = req.env.CNI_NETNS ?? "";
  if (!netns.startsWith("/") || !visible(netns)) {
    return { fallback: `CNI_NETNS ${quote(netns)} is not visible to the agent` };
  }
  const { runCni } = await import("../cni/dispatch.ts");
  let stdout = "";
  const code = await runCni({
    env: req.env,
    stdin: () => Promise.resolve(new TextEncoder().encode(req.stdin)),
    stdout: (s) => {
      stdout += s;
    },
  });
  return { code, stdout };
}
