// Unit tests for NetworkPolicy parsing: rules, peers, policyTypes and their defaults.
import assert from "node:assert/strict";
import { objectErrorOf, policyObj } from "./_test_util.ts";
import type { Policy } from "./model.ts";
import { parseNetworkPolicy, parseObject } from "./parse.ts";

const policy = (spec: Record<string, unknown>): Policy =>
  parseNetworkPolicy(policyObj("ns/p", spec));
const policyError = (spec: Record<string, unknown>) => objectErrorOf(() => policy(spec));
const types = (spec: Record<string, unknown>) => {
  const p = policy(spec);
  return { ingress: p.ingressIsolation, egress: p.egressIsolation };
};

Deno.test("readNetworkPolicy() reads the upstream default-deny-ingress policy", () => {
  assert.deepEqual(parseObject(policyObj("x/deny-ingress", { podSelector: {}, ingress: [] })), {
    kind: "NetworkPolicy",
    value: {
      namespace: "x",
      name: "deny-ingress",
      podSelector: { matchLabels: {}, matchExpressions: [] },
      ingressIsolation: true,
      egressIsolation: false,
      ingress: [],
      egress: [],
    },
  });
});

Deno.test("readNetworkPolicy() keeps rules in spec order with their peers and ports", () => {
  const p = policy({
    podSelector: { matchLabels: { pod: "a" } },
    ingress: [
      {
        from: [
          { podSelector: { matchLabels: { pod: "b" } } },
          { namespaceSelector: {}, podSelector: {} },
        ],
        ports: [{ port: 80 }],
      },
      {},
    ],
  });
  assert.equal(p.ingress.length, 2);
  assert.deepEqual(p.ingress[0], {
    peers: [
      { podSelector: { matchLabels: { pod: "b" }, matchExpressions: [] } },
      {
        podSelector: { matchLabels: {}, matchExpressions: [] },
        namespaceSelector: { matchLabels: {}, matchExpressions: [] },
      },
    ],
    ports: [{ protocol: "TCP", port: 80 }],
  });
  assert.deepEqual(p.ingress[1], { peers: [], ports: [] });
});

Deno.test("readNetworkPolicy() defaults policyTypes to Ingress, plus Egress with egress rules", () => {
  assert.deepEqual(types({}), { ingress: true, egress: false });
  assert.deepEqual(types({ egress: [{}] }), { ingress: true, egress: true });
  assert.deepEqual(types({ policyTypes: [], egress: [{}] }), { ingress: true, egress: true });
  // An empty egress list does not make an Egress policy (SetDefaults_NetworkPolicy: len != 0).
  assert.deepEqual(types({ egress: [] }), { ingress: true, egress: false });
});

Deno.test("readNetworkPolicy() takes listed policyTypes as they are", () => {
  assert.deepEqual(types({ policyTypes: ["Egress"] }), { ingress: false, egress: true });
  assert.deepEqual(types({ policyTypes: ["Egress"], ingress: [{}] }), {
    ingress: false,
    egress: true,
  });
  assert.deepEqual(types({ policyTypes: ["Ingress"], egress: [{}] }), {
    ingress: true,
    egress: false,
  });
  assert.deepEqual(types({ policyTypes: ["Ingress", "Egress"] }), { ingress: true, egress: true });
});

Deno.test("readNetworkPolicy() refuses unknown and too many policyTypes", () => {
  const err = policyError({ policyTypes: ["Ingress", "ingress"] });
  assert.equal(err.path, "spec.policyTypes[1]");
  assert.equal(err.detail, `must be "Ingress" or "Egress", got "ingress"`);
  assert.equal(
    policyError({ policyTypes: ["Ingress", "Egress", "Ingress"] }).detail,
    "must list at most two policy types, got 3",
  );
  assert.equal(policyError({ policyTypes: "Ingress" }).detail, `must be an array, got "Ingress"`);
});

Deno.test("readNetworkPolicy() requires a peer to set at least one field", () => {
  const err = policyError({ ingress: [{ from: [{ podSelector: {} }, {}] }] });
  assert.equal(
    err.message,
    `Invalid NetworkPolicy "ns/p": spec.ingress[0].from[1]: must set at least one of podSelector, namespaceSelector or ipBlock`,
  );
  assert.equal(
    policyError({ egress: [{ to: [{ podSelector: null }] }] }).path,
    "spec.egress[0].to[0]",
  );
});

Deno.test("readNetworkPolicy() refuses ipBlock together with a selector", () => {
  const err = policyError({
    egress: [{ to: [{ ipBlock: { cidr: "10.0.0.0/8" }, namespaceSelector: {} }] }],
  });
  assert.equal(err.path, "spec.egress[0].to[0]");
  assert.equal(err.detail, "must not set ipBlock together with podSelector or namespaceSelector");
});

Deno.test("readNetworkPolicy() refuses unknown fields in the spec, so typos do not widen rules", () => {
  const rule = policyError({ ingress: [{ form: [{ podSelector: {} }] }] });
  assert.equal(rule.path, "spec.ingress[0]");
  assert.equal(rule.detail, `unknown field "form" (known: ports, from)`);
  assert.equal(
    policyError({ egress: [{ from: [] }] }).detail,
    `unknown field "from" (known: ports, to)`,
  );
  assert.equal(
    policyError({ ingres: [] }).detail,
    `unknown field "ingres" (known: podSelector, ingress, egress, policyTypes)`,
  );
  assert.equal(
    policyError({ ingress: [{ from: [{ podselector: {} }] }] }).detail,
    `unknown field "podselector" (known: podSelector, namespaceSelector, ipBlock)`,
  );
});

Deno.test("readNetworkPolicy() refuses rules, peers and ports that are not objects", () => {
  assert.equal(policyError({ ingress: ["x"] }).detail, `must be an object, got "x"`);
  assert.equal(policyError({ ingress: [{ from: [3] }] }).path, "spec.ingress[0].from[0]");
  assert.equal(
    policyError({ ingress: [{ ports: [[]] }] }).detail,
    "must be an object, got an array",
  );
  assert.equal(policyError({ ingress: {} }).detail, "must be an array, got an object");
});

Deno.test("readNetworkPolicy() reads a missing spec as default deny ingress for every pod", () => {
  const p = parseNetworkPolicy({ metadata: { name: "p" } });
  assert.equal(p.namespace, "default");
  assert.equal(p.ingressIsolation, true);
  assert.equal(p.egressIsolation, false);
  assert.deepEqual(p.ingress, []);
});

Deno.test("readNetworkPolicy() requires a DNS subdomain name", () => {
  const err = objectErrorOf(() =>
    parseNetworkPolicy({ metadata: { namespace: "ns", name: "Allow_All" } })
  );
  assert.equal(err.path, "metadata.name");
  assert.match(err.detail, /^must be a lowercase RFC 1123 subdomain .*, got "Allow_All"$/);
  assert.equal(parseNetworkPolicy({ metadata: { name: "allow.all" } }).name, "allow.all");
});
