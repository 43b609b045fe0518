// Attaching the classifiers to a host-side veth's tc hooks (clsact, direct action), through
// netlink on the caller's socket (the host's): ingress sees every frame the pod sends, egress
// every frame delivered to it. Re-attaching at our fixed place replaces the program in place.
import { Errno, NetlinkError } from "../../ffi/errors.ts";
import type { NetlinkSocket } from "../net/socket.ts";
import * as M from "../net/messages.ts";
import { parseBpfFilterProgId } from "../net/rtnl_parse.ts";

export type { TcHook } from "../net/messages.ts";

/** Our filter's place on each hook; fixed so that re-attaching replaces rather than stacks. */
export const TC_HANDLE = 1;
export const TC_PRIORITY = 1;

function place(ifindex: number, hook: M.TcHook): M.TcFilterSpec {
  return { ifindex, hook, handle: TC_HANDLE, priority: TC_PRIORITY };
}

/** Creates the clsact qdisc unless there is one (another program, or an earlier attach). */
export function ensureClsact(nl: NetlinkSocket, ifindex: number): void {
  try {
    nl.request(M.newClsact(ifindex));
  } catch (err) {
    if (!(err instanceof NetlinkError && err.exists)) throw err;
  }
}

/** Attaches `progFd` on `ifindex`'s `hook` (creating clsact if needed). */
export function attach(
  nl: NetlinkSocket,
  ifindex: number,
  hook: M.TcHook,
  progFd: number,
  name: string,
): void {
  ensureClsact(nl, ifindex);
  nl.request(M.newBpfFilter(place(ifindex, hook), progFd, name));
}

/** Removes our filter; false when it was not there (or no clsact qdisc is). */
export function detach(nl: NetlinkSocket, ifindex: number, hook: M.TcHook): boolean {
  try {
    nl.request(M.delFilter(place(ifindex, hook)));
    return true;
  } catch (err) {
    if (err instanceof NetlinkError && (err.notFound || err.errno === Errno.EINVAL)) return false;
    throw err;
  }
}

/** Id of the program attached at our place on `ifindex`'s `hook`, or 0. */
export function attachedProgramId(nl: NetlinkSocket, ifindex: number, hook: M.TcHook): number {
  try {
    const [msg] = nl.get(M.getFilter(place(ifindex, hook)));
    return msg ? parseBpfFilterProgId(msg.payload) : 0;
  } catch (err) {
    // ENOENT: no filter there; EINVAL: no clsact qdisc at all.
    if (err instanceof NetlinkError && (err.notFound || err.errno === Errno.EINVAL)) return 0;
    throw err;
  }
}
