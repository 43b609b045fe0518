// Deterministic host-side veth names: the same (container ID, ifname) always maps to the
// same name, so DEL and GC find the link without any state.
import { hex, sha256 } from "../hash.ts";

export const HOST_VETH_PREFIX = "veth";

/** "veth" + 11 hex digits of SHA-256(containerId/ifname): 15 bytes, IFNAMSIZ - 1. */
export function hostVethName(containerId: string, ifname: string): string {
  const h = hex(sha256(`${containerId}/${ifname}`));
  return HOST_VETH_PREFIX + h.slice(0, 11);
}
