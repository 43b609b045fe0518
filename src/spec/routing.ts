// The names and numbers the node's routing (src/routing/) and the CNI plugin share: the vxlan
// device the plugin reads its default pod MTU from, and the marks that tell ebpfcni's routes
// from everyone else's.

/** How remote nodes' pod CIDRs are reached (agent flag --routing). */
export type RoutingMode = "vxlan" | "native" | "none";
export const ROUTING_MODES: readonly RoutingMode[] = ["vxlan", "native", "none"];

/** The overlay device (flannel's is flannel.<VNI>). One per node network namespace. */
export const VXLAN_DEVICE = "ebpfcni.vxlan";

/** Outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14) headers: what the tunnel takes
 * from the underlay's MTU, as flannel and Calico count it. */
export const VXLAN_OVERHEAD = 50;

/** The Linux default VXLAN port (flannel's and Cilium's), not IANA's 4789. */
export const DEFAULT_VXLAN_PORT = 8472;
export const DEFAULT_VXLAN_VNI = 1;

/** rtm_protocol of every route ebpfcni adds ("proto 235" in `ip route`): not one of the
 * numbers iproute2's rt_protos reserves, so a dump tells ours from the kernel's, DHCP's or a
 * routing daemon's, and only ours are ever changed or removed. */
export const RTPROT_EBPFCNI = 235;
