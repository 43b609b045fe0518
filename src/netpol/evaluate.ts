// The NetworkPolicy verdict for one flow: the source pod's egress and the destination pod's
// ingress, each judged as networking/v1 defines it, with the policies and rules that decided.
//
// - A pod is isolated in a direction when a policy of its own namespace selects it and has that
//   policy type; a pod that is not isolated allows everything in that direction. Policies add
//   up: the flow is allowed when any rule of any isolating policy matches it. A policy without
//   the direction's type contributes no rules to it, even if it has some.
// - A rule matches when a peer matches (no peers: every peer) and a port matches (no ports:
//   every port and protocol).
// - Peers: an ipBlock matches the peer's addresses (a pod's IPs too, as the upstream e2e suite
//   expects); a podSelector alone selects pods of the policy's namespace, a namespaceSelector
//   alone every pod of the selected namespaces, both together pods matching both.
// - Ports: the protocol must match; a number, with endPort a range, inclusive; no number, every
//   port of the protocol; a name, the numbers the destination pod gives that name with that
//   protocol (in any of its containers: two containers may number one name differently).
//   An `ip` or `node` destination has no named ports.
// - The destination pod's own node (kubelet probes) is always allowed in, citing no rule.
//
// hostNetwork pods are not subjects (both directions do not apply to them), and as peers they
// are what their addresses are, the node's: pod and namespace selectors do not match them and
// only ipBlocks can (on their IPs, which are the node's). That is kube-network-policies' reading
// (its pod-by-IP index leaves hostNetwork pods out, so their traffic is an address). Cilium
// agrees that selectors do not match them (they carry the host or remote-node identity) but by
// default lets no ipBlock match node addresses either (policy-cidr-match-mode=nodes opts in);
// here an ipBlock is taken at its word, as the API describes it. As a flow's destination a
// hostNetwork pod still has its named ports: the flow names the pod.
//
// An `ip` end that is a (non-hostNetwork) pod's address IS that pod; see model_index.ts for
// which pod when two report the same address. A `node` destination (a pod reaching its own
// node) has no address here, so only rules without peers can allow it.
import { FlowError } from "./errors.ts";
import {
  type Decision,
  type Direction,
  type DirectionDecision,
  type Flow,
  type FlowEnd,
  type IpBlock,
  type Model,
  type NamedPort,
  objectKey,
  type Peer,
  type Pod,
  type Policy,
  type PortSpec,
  type Rule,
  type RuleRef,
} from "./model.ts";
import { namespaceOf } from "./model_build.ts";
import { indexModel, type ModelIndex } from "./model_index.ts";
import { matches } from "./selector.ts";
import { cidrContains } from "../spec/ipv4.ts";

/** A flow end after lookup: an `ip` that is a pod's address has become that pod. */
type End =
  | { kind: "pod"; pod: Pod }
  | { kind: "node" }
  | { kind: "ip"; ip: number };

/** Judges `flow`. Throws FlowError when it names a pod the model does not hold. */
export function evaluate(model: Model, flow: Flow): Decision {
  const index = indexModel(model);
  const src = resolve(model, index, flow.src);
  const dst = resolve(model, index, flow.dst);
  const dstPorts = dst.kind === "pod" ? dst.pod.namedPorts : [];
  const egress = isSubject(src)
    ? judge(model, index, src.pod, "egress", dst, flow, dstPorts)
    : notApplicable();
  const ingress = isSubject(dst)
    ? judge(model, index, dst.pod, "ingress", src, flow, dstPorts)
    : notApplicable();
  return { allowed: egress.allowed && ingress.allowed, egress, ingress };
}

function resolve(model: Model, index: ModelIndex, end: FlowEnd): End {
  switch (end.kind) {
    case "pod": {
      const key = objectKey(end.namespace, end.name);
      const pod = model.pods.get(key);
      if (pod === undefined) throw new FlowError(`Pod ${JSON.stringify(key)} is not in the model`);
      return { kind: "pod", pod };
    }
    case "node":
      return end;
    case "ip": {
      const pod = index.podByIp.get(end.ip);
      return pod === undefined ? end : { kind: "pod", pod };
    }
  }
}

function isSubject(end: End): end is { kind: "pod"; pod: Pod } {
  return end.kind === "pod" && !end.pod.hostNetwork;
}

function notApplicable(): DirectionDecision {
  return { applies: false, isolatedBy: [], allowedBy: [], allowed: true };
}

function judge(
  model: Model,
  index: ModelIndex,
  subject: Pod,
  direction: Direction,
  peer: End,
  flow: Flow,
  dstPorts: readonly NamedPort[],
): DirectionDecision {
  const fromOwnNode = direction === "ingress" && peer.kind === "node";
  const isolatedBy: string[] = [];
  const allowedBy: RuleRef[] = [];
  for (const { key, policy } of index.policiesByNamespace.get(subject.namespace) ?? []) {
    const isolates = direction === "ingress" ? policy.ingressIsolation : policy.egressIsolation;
    if (!isolates || !matches(policy.podSelector, subject.labels)) continue;
    isolatedBy.push(key);
    if (fromOwnNode) continue;
    const rules = direction === "ingress" ? policy.ingress : policy.egress;
    rules.forEach((rule, i) => {
      if (ruleMatches(model, policy, rule, peer, flow, dstPorts)) {
        allowedBy.push({ policy: key, direction, rule: i });
      }
    });
  }
  const allowed = isolatedBy.length === 0 || fromOwnNode || allowedBy.length > 0;
  return { applies: true, isolatedBy, allowedBy, allowed };
}

function ruleMatches(
  model: Model,
  policy: Policy,
  rule: Rule,
  peer: End,
  flow: Flow,
  dstPorts: readonly NamedPort[],
): boolean {
  const portOk = rule.ports.length === 0 ||
    rule.ports.some((p) => portMatches(p, flow, dstPorts));
  return portOk &&
    (rule.peers.length === 0 || rule.peers.some((p) => peerMatches(model, policy, p, peer)));
}

function peerMatches(model: Model, policy: Policy, peer: Peer, end: End): boolean {
  if (peer.ipBlock !== undefined) {
    const block = peer.ipBlock;
    return addressesOf(end).some((ip) => inBlock(block, ip));
  }
  if (end.kind !== "pod" || end.pod.hostNetwork) return false;
  const pod = end.pod;
  if (peer.podSelector === undefined && peer.namespaceSelector === undefined) return false;
  if (peer.podSelector !== undefined && !matches(peer.podSelector, pod.labels)) return false;
  if (peer.namespaceSelector === undefined) return pod.namespace === policy.namespace;
  return matches(peer.namespaceSelector, namespaceOf(model, pod.namespace).labels);
}

function addressesOf(end: End): readonly number[] {
  switch (end.kind) {
    case "pod":
      return end.pod.ips;
    case "ip":
      return [end.ip];
    case "node":
      return [];
  }
}

/** In the cidr and in no except; an IPv6 block holds no IPv4 address. */
export function inBlock(block: IpBlock, ip: number): boolean {
  if (block.family === 6) return false;
  return cidrContains(block.cidr, ip) && !block.except.some((e) => cidrContains(e, ip));
}

/** Does the flow's destination port match `spec`? Named ports resolve on `dstPorts`. */
export function portMatches(spec: PortSpec, flow: Flow, dstPorts: readonly NamedPort[]): boolean {
  if (spec.protocol !== flow.protocol) return false;
  if (spec.port === undefined) return true;
  if (typeof spec.port === "number") {
    return flow.port >= spec.port && flow.port <= (spec.endPort ?? spec.port);
  }
  const name = spec.port;
  return dstPorts.some((p) =>
    p.name === name && p.protocol === flow.protocol && p.port === flow.port
  );
}
