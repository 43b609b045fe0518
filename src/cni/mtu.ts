// The MTU of a pod's interfaces. In vxlan routing the agent keeps ebpfcni's vxlan device at
// the underlay's MTU - 50 (src/routing/plan.ts), and a pod whose packets are larger than that
// sees large transfers hang while ping works (the most reported overlay problem): so a
// config without "mtu" takes the device's MTU when the device is in the node's namespace.
// Reading the device rather than asking the agent keeps ADD working with no agent, and
// follows an underlay MTU change at the next pod.
import type { NetConf } from "./net_conf.ts";
import type { Links } from "../net/link.ts";
import { VXLAN_DEVICE } from "../spec/routing.ts";

export function podMtu(conf: Pick<NetConf, "mtu" | "mtuSet">, links: Pick<Links, "get">): number {
  if (conf.mtuSet) return conf.mtu;
  const tunnel = links.get(VXLAN_DEVICE);
  return tunnel && tunnel.kind === "vxlan" && tunnel.mtu > 0 ? tunnel.mtu : conf.mtu;
}
