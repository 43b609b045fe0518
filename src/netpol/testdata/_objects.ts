// Builders for the plain Kubernetes objects and Expect operations the upstream case
// transcription (upstream_cases.ts) is written with. They encode upstream's model
// (test/e2e/network/netpol/model.go): namespaces x, y, z, pods a, b, c labelled `pod: <name>`,
// one agnhost container per served (port, protocol) with its port named `serve-<port>-<proto>`.
import { NAMESPACE_NAME_LABEL, type Protocol } from "../model.ts";
import type { CaseEnv, CaseProbe, ExpectOp, ObjectRef, PeerSel, PodName } from "./format.ts";

/** A Kubernetes object as JSON: apiVersion, kind, metadata and the kind's own fields. */
export type K8sObject = Record<string, unknown>;

export const NAMESPACE_NAMES: readonly string[] = ["x", "y", "z"];
export const POD_NAMES: readonly string[] = ["a", "b", "c"];
/** Upstream serves 80 and 81; each case creates only the containers it probes, the base
 * cluster here has all of them (no case's outcome depends on a container being absent). */
export const SERVED_PORTS: readonly number[] = [80, 81];
export const SERVED_PROTOCOLS: readonly Protocol[] = ["TCP", "UDP", "SCTP"];
export const NODE_NAME = "node-1";
/** imageutils.GetE2EImage(imageutils.Agnhost); the tag moves with each Kubernetes release. */
const AGNHOST_IMAGE = "registry.k8s.io/e2e-test-images/agnhost:2.52";

/** Every pod of the model, in upstream's AllPodStrings order: x/a, x/b, x/c, y/a, ... */
export function allPodNames(): PodName[] {
  return NAMESPACE_NAMES.flatMap((ns) => POD_NAMES.map((pod) => `${ns}/${pod}`));
}

/** A Namespace. Upstream's model gives namespaces no labels of their own; the API server adds
 * kubernetes.io/metadata.name. (The e2e framework also adds e2e-run and the
 * pod-security.kubernetes.io/* labels; no case selects on them, so they are left out.) */
export function namespaceObject(name: string, extraLabels: Record<string, string> = {}): K8sObject {
  return {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name, labels: { [NAMESPACE_NAME_LABEL]: name, ...extraLabels } },
  };
}

/** A running Pod as the API server holds it once scheduled: upstream's spec plus the node and
 * the addresses `env` assigns. A label change is the same object with `extraLabels` merged in,
 * as upstream's AddPodLabels does. */
export function podObject(
  env: CaseEnv,
  namespace: string,
  name: string,
  extraLabels: Record<string, string> = {},
): K8sObject {
  const ip = env.podIp(`${namespace}/${name}`);
  const containers = SERVED_PORTS.flatMap((port) =>
    SERVED_PROTOCOLS.map((protocol) => containerSpec(port, protocol))
  );
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace, labels: { pod: name, ...extraLabels } },
    spec: { terminationGracePeriodSeconds: 0, nodeName: NODE_NAME, containers },
    status: { phase: "Running", podIP: ip, podIPs: [{ ip }] },
  };
}

function containerSpec(port: number, protocol: Protocol): K8sObject {
  const proto = protocol.toLowerCase();
  const serve = (
    flag: string,
  ) => ["/agnhost", "serve-hostname", flag, "--http=false", "--port", `${port}`];
  const run: K8sObject = protocol === "TCP"
    ? { command: serve("--tcp") }
    : protocol === "UDP"
    ? { command: serve("--udp") }
    : { command: ["/agnhost", "porter"], env: [{ name: `SERVE_SCTP_PORT_${port}`, value: "foo" }] };
  return {
    name: `cont-${port}-${proto}`,
    image: AGNHOST_IMAGE,
    imagePullPolicy: "IfNotPresent",
    ...run,
    securityContext: {},
    ports: [{ containerPort: port, name: `serve-${port}-${proto}`, protocol }],
  };
}

/** A NetworkPolicy in `namespace`. `spec` is written as client-go sends it: Go's omitempty
 * drops empty lists, so `SetSpecIngressRules()` with no rules shows only in policyTypes. */
export function networkPolicy(namespace: string, name: string, spec: K8sObject): K8sObject {
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name, namespace },
    spec,
  };
}

export function policyRef(namespace: string, name: string): ObjectRef {
  return { kind: "NetworkPolicy", namespace, name };
}

/** reachability.Expect(from, to, connected) */
export function expect(from: PodName, to: PodName, connected: boolean): ExpectOp {
  return { op: "expect", from, to, connected };
}

/** reachability.ExpectPeer(&Peer{...}, &Peer{...}, connected) */
export function expectPeer(from: PeerSel, to: PeerSel, connected: boolean): ExpectOp {
  return { op: "expectPeer", from, to, connected };
}

/** reachability.ExpectAllIngress(pod, connected) */
export function expectAllIngress(pod: PodName, connected: boolean): ExpectOp {
  return { op: "expectAllIngress", pod, connected };
}

/** reachability.ExpectAllEgress(pod, connected) */
export function expectAllEgress(pod: PodName, connected: boolean): ExpectOp {
  return { op: "expectAllEgress", pod, connected };
}

/** ValidateOrFail(k8s, &TestCase{ToPort, Protocol, Reachability}); every upstream case builds
 * its Reachability with NewReachability(k8s.AllPodStrings(), true). */
export function probe(protocol: Protocol, port: number, ops: ExpectOp[] = []): CaseProbe {
  return { protocol, port, expect: { default: true, ops } };
}
