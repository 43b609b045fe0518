// The policy engine's model: Namespaces, Pods and NetworkPolicies (networking.k8s.io/v1) as the
// engine reads them (and the Nodes, which the agent's routing and IPAM read), already validated and defaulted (parse.ts makes them from Kubernetes
// objects). Pure data: no I/O anywhere in src/netpol/.
import type { Cidr } from "../spec/ipv4.ts";
import type { ClusterNode } from "../spec/node.ts";

export type Protocol = "TCP" | "UDP" | "SCTP";
export const PROTOCOLS: readonly Protocol[] = ["TCP", "UDP", "SCTP"];

export type SelectorOperator = "In" | "NotIn" | "Exists" | "DoesNotExist";

export interface LabelSelectorRequirement {
  key: string;
  operator: SelectorOperator;
  /** Non-empty for In and NotIn, empty for Exists and DoesNotExist. */
  values: string[];
}

/** A label selector; both parts empty selects everything. */
export interface LabelSelector {
  matchLabels: Record<string, string>;
  matchExpressions: LabelSelectorRequirement[];
}

export type Labels = Readonly<Record<string, string>>;

/** The label the API server sets on every namespace to its name. */
export const NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name";

export interface Namespace {
  name: string;
  /** Always holds NAMESPACE_NAME_LABEL = name. */
  labels: Labels;
}

/** A named containerPort of one of the pod's containers. */
export interface NamedPort {
  name: string;
  port: number;
  protocol: Protocol;
}

export interface Pod {
  namespace: string;
  name: string;
  labels: Labels;
  /** IPv4 addresses (host-order u32) from status.podIPs / status.podIP; may be empty. */
  ips: number[];
  /** spec.nodeName, when scheduled. */
  node: string | undefined;
  /** Every containerPort that has a name, in container order. */
  namedPorts: NamedPort[];
  /** spec.hostNetwork: such pods have the node's addresses and are not NetworkPolicy subjects. */
  hostNetwork: boolean;
}

/** An ipBlock: `cidr` minus every `except`. An IPv6 block is kept with `family: 6` and matches
 * no (IPv4) address. */
export type IpBlock =
  | { family: 4; cidr: Cidr; except: Cidr[]; text: string }
  | { family: 6; text: string };

/** One entry of `from` / `to`. Exactly as the API defines it: ipBlock alone, or podSelector
 * and/or namespaceSelector (both: AND). */
export interface Peer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: IpBlock;
}

/** One entry of `ports`. `port` absent: every port of the protocol. A string port is a named
 * port, resolved against the destination pod's named ports. `endPort` (inclusive) only with a
 * numeric port. */
export interface PortSpec {
  protocol: Protocol;
  port?: number | string;
  endPort?: number;
}

/** One ingress or egress rule. `peers` empty: every peer. `ports` empty: every port and
 * protocol. A rule matches when a peer AND a port match. */
export interface Rule {
  peers: Peer[];
  ports: PortSpec[];
}

export interface Policy {
  namespace: string;
  name: string;
  podSelector: LabelSelector;
  /** policyTypes, defaulted: Ingress always unless only Egress is listed; Egress when listed
   * or when the spec has an egress section. */
  ingressIsolation: boolean;
  egressIsolation: boolean;
  /** Rules in spec order (their index is what decisions cite). */
  ingress: Rule[];
  egress: Rule[];
}

/** Keys of pods and policies: "namespace/name". */
export function objectKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

export interface Model {
  namespaces: ReadonlyMap<string, Namespace>;
  /** By objectKey. */
  pods: ReadonlyMap<string, Pod>;
  /** By objectKey. */
  policies: ReadonlyMap<string, Policy>;
  /** The cluster's nodes as their Node objects say, by name (unchecked: node_check.ts). */
  nodes: ReadonlyMap<string, ClusterNode>;
}

/** One end of a flow: a pod (by name), the destination pod's own node (kubelet probes and
 * other node-local traffic), or any other IPv4 address (another node, the outside world;
 * an address that is a pod's IP is that pod). */
export type FlowEnd =
  | { kind: "pod"; namespace: string; name: string }
  | { kind: "node" }
  | { kind: "ip"; ip: number };

/** A connection as the destination sees it: after Service DNAT, so `port` is the pod's port. */
export interface Flow {
  src: FlowEnd;
  dst: FlowEnd;
  protocol: Protocol;
  port: number;
}

export type Direction = "ingress" | "egress";

/** A rule that allows the flow: policy key, direction and index in that direction's rules. */
export interface RuleRef {
  policy: string;
  direction: Direction;
  rule: number;
}

/** The verdict of one direction: the source pod's egress, or the destination pod's ingress. */
export interface DirectionDecision {
  /** False when that end is not a pod subject (an IP, the node, a hostNetwork pod): then it
   * allows and cites nothing. */
  applies: boolean;
  /** Policies that select the pod for this direction (sorted keys); none: not isolated. */
  isolatedBy: string[];
  /** Every rule that allows the flow, in policy key then rule order. */
  allowedBy: RuleRef[];
  allowed: boolean;
}

export interface Decision {
  /** egress.allowed && ingress.allowed */
  allowed: boolean;
  egress: DirectionDecision;
  ingress: DirectionDecision;
}
