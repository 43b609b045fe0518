// Attaching the classifier to a host-side veth's tc ingress hook (clsact, direct action).
import { tcAttach, tcDetach, tcHookCreate, tcQuery } from "../../ffi/libbpf.ts";

/** Our filter's place on the hook; fixed so that re-attaching replaces rather than stacks. */
export const TC_HANDLE = 1;
export const TC_PRIORITY = 1;

/** Attaches `progFd` on `ifindex` ingress (creating clsact if needed); returns the prog id. */
export function attachIngress(ifindex: number, progFd: number): number {
  tcHookCreate(ifindex);
  return tcAttach(ifindex, progFd, TC_HANDLE, TC_PRIORITY);
}

/** Removes our filter; false when it was not there. */
export function detachIngress(ifindex: number): boolean {
  return tcDetach(ifindex, TC_HANDLE, TC_PRIORITY);
}

/** Id of the program attached at our place on `ifindex` ingress, or 0. */
export function attachedProgramId(ifindex: number): number {
  return tcQuery(ifindex, TC_HANDLE, TC_PRIORITY);
}
