// CNI calls handed over by plugin processes (kubernetes mode, src/cni/handoff.ts): run here,
// warm, exactly as the process would run them (src/cni/dispatch.ts), with the process's
// environment and config, their stdout captured for the answer. Calls run concurrently, as
// separate processes would: the attachment locks order them, and every network namespace
// switch is a synchronous window on this thread (src/net/netns.ts). The agent declines, and
// the process runs it, a call of another build of the plugin (the binary was upgraded under a
// running agent), or whose network namespace it cannot open as the plugin would (not visible
// in its mount namespace, or a /proc/PID path of another PID namespace).
import type { CniReply, CniRequest } from "../spec/agent.ts";
import { quote } from "../spec/text.ts";
import { buildStamp } from "../build_stamp.ts";

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

export class CniServer {
  /** This agent's build, read when it started (before any upgrade of the files). */
  readonly build = buildStamp();
  readonly faults = Deno.env.get(AGENT_FAULTS_ENV) === "1";

  serve(req: CniRequest): Promise<CniReply> {
    if (req.build !== undefined && req.build !== this.build) {
      return Promise.resolve({
        fallback: "the agent runs another build of ebpfcni than the plugin (restart the agent)",
      });
    }
    return serveCni(req, this.faults);
  }
}

async function serveCni(req: CniRequest, faults: boolean): Promise<CniReply> {
  // ADD and CHECK enter the pod's network namespace. A /proc/PID/ns/net path names a process
  // of the caller's PID namespace, which may not be the agent's.
  const netns = req.env.CNI_NETNS ?? "";
  if (!netns.startsWith("/") || netns.startsWith("/proc/") || !visible(netns)) {
    return {
      fallback: `CNI_NETNS ${quote(netns)} is not one the agent can open as the plugin would`,
    };
  }
  const env = faults
    ? req.env
    : Object.fromEntries(Object.entries(req.env).filter(([k]) => !k.startsWith("EBPFCNI_FAULT")));
  const { runCni } = await import("../cni/dispatch.ts");
  let stdout = "";
  const code = await runCni({
    env,
    stdin: () => Promise.resolve(new TextEncoder().encode(req.stdin)),
    stdout: (s) => {
      stdout += s;
    },
  });
  return { code, stdout };
}
