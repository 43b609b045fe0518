// The shape of the upstream NetworkPolicy e2e cases (kubernetes/kubernetes
// test/e2e/network/netpol/network_policy.go) transcribed as data: the cluster they run on,
// the objects each step applies or deletes, and the reachability each probe expects, written
// with the same Expect operations upstream uses. The engine test (upstream_test.ts) and the
// real-traffic test (test/agent_matrix_test.ts) both read them.
import type { Protocol } from "../model.ts";

/** "x/a": namespace x, pod a. */
export type PodName = string;

/** Upstream's Peer: a namespace, a pod in every namespace, or one pod; absent fields match all. */
export interface PeerSel {
  namespace?: string;
  pod?: string;
}

export type ExpectOp =
  /** reachability.Expect(from, to, connected) */
  | { op: "expect"; from: PodName; to: PodName; connected: boolean }
  /** reachability.ExpectPeer(from, to, connected) */
  | { op: "expectPeer"; from: PeerSel; to: PeerSel; connected: boolean }
  /** reachability.ExpectAllIngress(pod, connected): every pod to `pod` */
  | { op: "expectAllIngress"; pod: PodName; connected: boolean }
  /** reachability.ExpectAllEgress(pod, connected): `pod` to every pod */
  | { op: "expectAllEgress"; pod: PodName; connected: boolean };

/** NewReachability(allPods, default) followed by `ops` in order. A pod probing itself is
 * not checked (upstream ignores it). */
export interface Reachability {
  default: boolean;
  ops: ExpectOp[];
}

export interface CaseProbe {
  protocol: Protocol;
  /** The port probed on the destination pod (upstream probes the Service, whose port is the
   * pod's port: 80 or 81). */
  port: number;
  expect: Reachability;
}

export interface ObjectRef {
  kind: "NetworkPolicy" | "Pod" | "Namespace";
  /** For namespaced kinds. */
  namespace?: string;
  name: string;
}

export interface CaseStep {
  /** What the step does, in upstream's words where it has some. */
  description: string;
  /** Kubernetes objects (plain JSON, apiVersion and kind set) created or replaced, in order,
   * before probing. Label changes are a full replacement of the Pod or Namespace object. */
  apply: unknown[];
  delete: ObjectRef[];
  probes: CaseProbe[];
}

export interface UpstreamCase {
  /** The ginkgo It() title, verbatim. */
  name: string;
  /** The upstream function or Describe block it sits in, for finding it again. */
  source: string;
  steps: CaseStep[];
}

/** What the cases are parameterised by: the pods' addresses (ipBlock cases use them), as the
 * environment running them assigned. */
export interface CaseEnv {
  /** Dotted-quad IPv4 of pod "x/a" etc. */
  podIp(pod: PodName): string;
}
