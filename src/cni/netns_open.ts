// Opening CNI_NETNS with the spec's error: a path that is missing, not a network namespace
// (a FIFO, a regular file: refused without blocking) or the namespace of whoever runs the
// call (the node's own: the pod's interface and address would land on the node) is an
// invalid environment variable (code 4), found before any change.
import { Netns, NetnsPathError, nsIdOf, sameNs } from "../net/netns.ts";
import { CniError, ErrCode } from "../spec/cni.ts";
import { quote } from "../spec/text.ts";

/** `callerPid`: the process that handed the call over (the agent runs it for that process),
 * whose namespace is refused as this process's own is. */
export function openNetns(path: string, callerPid?: number): Netns {
  let ns: Netns;
  try {
    ns = Netns.open(path);
  } catch (err) {
    const why = err instanceof NetnsPathError ? err.what : "cannot be opened";
    throw new CniError(ErrCode.InvalidEnv, `CNI_NETNS ${quote(path)} ${why}`, causeText(err), {
      cause: err,
    });
  }
  try {
    const id = ns.id();
    const own: [string, string][] = [[
      callerPid === undefined ? "the plugin's" : "the policy agent's",
      "self",
    ]];
    if (callerPid !== undefined && callerPid > 0) own.push(["the caller's", String(callerPid)]);
    for (const [who, pid] of own) {
      if (sameNs(id, nsIdOf(`/proc/${pid}/ns/net`))) {
        throw new CniError(
          ErrCode.InvalidEnv,
          `CNI_NETNS ${quote(path)} is ${who} own network namespace, not a pod's`,
          ns.resolved === path ? "" : `it resolves to ${quote(ns.resolved)}`,
        );
      }
    }
  } catch (err) {
    ns.close();
    throw err;
  }
  return ns;
}

function causeText(err: unknown): string {
  const cause = err instanceof Error ? err.cause : undefined;
  return cause === undefined ? String(err) : String(cause);
}
