// A node of the cluster as the multi-node rooms see it (routing, masquerade, the agent's
// status): its name, its pod CIDRs (IPv4) and the address other nodes reach it at. Built from
// Kubernetes Node objects (spec.podCIDRs, else spec.podCIDR; status.addresses InternalIP,
// else ExternalIP) by the agent's sources; nothing here reads them.
import type { Cidr } from "./ipv4.ts";

export interface ClusterNode {
  /** metadata.name */
  name: string;
  /** The node's IPv4 pod CIDRs (spec.podCIDRs, else spec.podCIDR); empty when none is
   * assigned yet. */
  podCidrs: Cidr[];
  /** InternalIP, else ExternalIP (IPv4, host order); undefined when the node has neither. */
  address?: number;
}

/** What the routing reconciler made of a remote node: routed, or why not. */
export type NodeRouteState =
  | { routed: true; via: string }
  | { routed: false; reason: string };

/** The cluster's nodes as the agent sees them, and a hook called after they change (what the
 * routing and masquerade reconcilers follow). */
export interface NodeSource {
  nodes(): ReadonlyMap<string, ClusterNode>;
  /** Every pod CIDR some Node claims, withheld ones included (nodes() leaves those out):
   * pods may still use them, so masquerade must not masquerade traffic to them. */
  claimedPodCidrs?(): readonly Cidr[];
  onChange(cb: () => void): void;
}
