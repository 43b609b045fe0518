// A networking.k8s.io/v1 NetworkPolicy into the model's Policy, validated as the API server's
// ValidateNetworkPolicy does and defaulted as SetDefaults_NetworkPolicy does (port protocol TCP;
// policyTypes from the rules when not given).
//
// The spec is read with strict field validation (an unknown field is an error, as
// `kubectl apply --validate=strict` makes it): a misspelt `from` or `ports` would otherwise
// widen a rule to every peer or port without a word.
import { dnsSubdomainProblem } from "./_k8s_names.ts";
import { child, describeValue, field, index, type JsonObject, type Reader } from "./_reader.ts";
import type { Peer, Policy, Rule } from "./model.ts";
import { readIpBlock } from "./parse_ipblock.ts";
import { readMetadata } from "./parse_meta.ts";
import { readPort } from "./parse_port.ts";
import { readSelector } from "./parse_selector.ts";

const SPEC_FIELDS = ["podSelector", "ingress", "egress", "policyTypes"] as const;

export function readNetworkPolicy(r: Reader, obj: JsonObject): Policy {
  const meta = readMetadata(r, obj, "namespaced", dnsSubdomainProblem);
  const spec = r.optObject(obj, "spec", "") ?? {};
  r.onlyFields(spec, SPEC_FIELDS, "spec");
  const podSelectorValue = field(spec, "podSelector");
  const podSelector = podSelectorValue === undefined
    ? { matchLabels: {}, matchExpressions: [] }
    : readSelector(r, podSelectorValue, "spec.podSelector");
  const ingress = readRules(r, spec, "ingress", "from");
  const egress = readRules(r, spec, "egress", "to");
  const types = readPolicyTypes(r, spec);
  return {
    namespace: meta.namespace ?? "default",
    name: meta.name,
    podSelector,
    // Defaulting: every policy without policyTypes is an Ingress policy, and an Egress one
    // too when its egress list is non-empty (`egress: []` alone does not make it one).
    ingressIsolation: types === undefined ? true : types.includes("Ingress"),
    egressIsolation: types === undefined ? egress.length > 0 : types.includes("Egress"),
    ingress,
    egress,
  };
}

function readPolicyTypes(r: Reader, spec: JsonObject): ("Ingress" | "Egress")[] | undefined {
  const list = r.optArray(spec, "policyTypes", "spec");
  if (list === undefined || list.length === 0) return undefined;
  if (list.length > 2) {
    r.fail("spec.policyTypes", `must list at most two policy types, got ${list.length}`);
  }
  return list.map((t, i) => {
    if (t !== "Ingress" && t !== "Egress") {
      r.fail(
        index("spec.policyTypes", i),
        `must be "Ingress" or "Egress", got ${describeValue(t)}`,
      );
    }
    return t;
  });
}

function readRules(
  r: Reader,
  spec: JsonObject,
  direction: "ingress" | "egress",
  peersKey: "from" | "to",
): Rule[] {
  const list = r.optArray(spec, direction, "spec") ?? [];
  return list.map((value, i) => {
    const path = index(child("spec", direction), i);
    const o = r.object(value, path);
    r.onlyFields(o, ["ports", peersKey], path);
    const ports = (r.optArray(o, "ports", path) ?? []).map((p, j) =>
      readPort(r, p, index(child(path, "ports"), j))
    );
    const peers = (r.optArray(o, peersKey, path) ?? []).map((p, j) =>
      readPeer(r, p, index(child(path, peersKey), j))
    );
    return { peers, ports };
  });
}

function readPeer(r: Reader, value: unknown, path: string): Peer {
  const o = r.object(value, path);
  r.onlyFields(o, ["podSelector", "namespaceSelector", "ipBlock"], path);
  const peer: Peer = {};
  const pod = field(o, "podSelector");
  if (pod !== undefined) peer.podSelector = readSelector(r, pod, child(path, "podSelector"));
  const ns = field(o, "namespaceSelector");
  if (ns !== undefined) {
    peer.namespaceSelector = readSelector(r, ns, child(path, "namespaceSelector"));
  }
  const block = field(o, "ipBlock");
  if (block !== undefined) peer.ipBlock = readIpBlock(r, block, child(path, "ipBlock"));
  if (pod === undefined && ns === undefined && block === undefined) {
    r.fail(path, "must set at least one of podSelector, namespaceSelector or ipBlock");
  }
  if (block !== undefined && (pod !== undefined || ns !== undefined)) {
    r.fail(path, "must not set ipBlock together with podSelector or namespaceSelector");
  }
  return peer;
}
