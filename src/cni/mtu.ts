// The MTU of a pod's interfaces. In vxlan routing the agent keeps ebpfcni's vxlan device at
// the underlay's MTU - 50 (src/routing/plan.ts), and a pod whose packets are larger than that
// sees large transfers hang while ping works (the most reported overlay problem): so a
// config without "mtu" takes the device's MTU when the device is in the node's namespace.
// Reading the device rather than asking the agent keeps ADD working with no agent, and
// follows an underlay MTU change at the next pod.
import type { NetConf } from "./net_conf.ts";
import type { Links } from "../net/link.ts";
import { type RoutingMode, VXLAN_DEVICE } from "../spec/routing.ts";

/** Why a pod gets the config's default MTU although the node routes with vxlan (its agent
 * says so, and the config sets no mtu): the device is not there yet (a pod added before the
 * agent made it keeps the larger MTU, and its large transfers across nodes would stall). */
export function tunnelMtuMissing(
  conf: Pick<NetConf, "mtu" | "mtuSet">,
  routing: RoutingMode | undefined,
  links: Pick<Links, "get">,
): string | undefined {
  if (conf.mtuSet || routing !== "vxlan" || links.get(VXLAN_DEVICE)?.kind === "vxlan") {
    return undefined;
  }
  return `The agent routes with vxlan but ${JSON.stringify(VXLAN_DEVICE)} does not exist yet: ` +
    `the pod gets MTU ${conf.mtu}, more than the tunnel carries (set "mtu" in the network ` +
    "config, or re-create the pod once the agent made the device)";
}

export function podMtu(conf: Pick<NetConf, "mtu" | "mtuSet">, links: Pick<Links, "get">): number {
  if (conf.mtuSet) return conf.mtu;
  const tunnel = links.get(VXLAN_DEVICE);
  return tunnel && tunnel.kind === "vxlan" && tunnel.mtu > 0 ? tunnel.mtu : conf.mtu;
}
