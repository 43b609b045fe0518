// Unit tests for object and document parsing: kinds, apiVersions and lists.
import assert from "node:assert/strict";
import { namespaceObj, objectErrorOf, podObj, policyObj } from "./_test_util.ts";
import { ObjectError } from "./errors.ts";
import { parseDocument, parseItems, parseObject } from "./parse.ts";

const service = {
  apiVersion: "v1",
  kind: "Service",
  metadata: { namespace: "x", name: "s-x-a" },
  spec: { ports: [{ port: 80 }] },
};

Deno.test("parseObject() reads the three kinds the engine knows", () => {
  assert.equal(parseObject(namespaceObj("x")).kind, "Namespace");
  assert.equal(parseObject(podObj("x/a")).kind, "Pod");
  assert.equal(parseObject(policyObj("x/p", {})).kind, "NetworkPolicy");
});

Deno.test("parseObject() returns other kinds as Other with their identity, not as errors", () => {
  assert.deepEqual(parseObject(service), {
    kind: "Other",
    value: { apiVersion: "v1", kind: "Service", namespace: "x", name: "s-x-a" },
  });
  assert.deepEqual(parseObject({ apiVersion: "apps/v1", kind: "Deployment", metadata: {} }), {
    kind: "Other",
    value: { apiVersion: "apps/v1", kind: "Deployment", namespace: undefined, name: undefined },
  });
});

Deno.test("parseObject() returns a known kind under another apiVersion as Other", () => {
  const calico = { apiVersion: "projectcalico.org/v3", kind: "NetworkPolicy", spec: { x: 1 } };
  assert.equal(parseObject(calico).kind, "Other");
  const old = policyObj("x/p", {}) as Record<string, unknown>;
  assert.equal(parseObject({ ...old, apiVersion: "extensions/v1beta1" }).kind, "Other");
  assert.equal(parseObject({ ...(podObj("x/a") as object), apiVersion: "v2" }).kind, "Other");
});

Deno.test("parseObject() requires kind, and apiVersion for the kinds it knows", () => {
  assert.equal(
    objectErrorOf(() => parseObject({ metadata: {} })).message,
    "Invalid object: kind: must be set",
  );
  assert.equal(objectErrorOf(() => parseObject({ kind: 3 })).detail, "must be a string, got 3");
  assert.equal(
    objectErrorOf(() => parseObject({ kind: "Pod", metadata: { name: "a" } })).message,
    `Invalid Pod "default/a": apiVersion: must be set ("v1" for Pod)`,
  );
  assert.equal(
    objectErrorOf(() => parseObject(null)).message,
    "Invalid object: must be an object, got null",
  );
  assert.equal(parseObject({ kind: "ConfigMap" }).kind, "Other");
});

Deno.test("parseObject() reports a kubectl-style List as Other", () => {
  assert.equal(parseObject({ apiVersion: "v1", kind: "List", items: [] }).kind, "Other");
});

Deno.test("parseDocument() reads one object, or none from an empty YAML document", () => {
  assert.equal(parseDocument(podObj("x/a")).length, 1);
  assert.deepEqual(parseDocument(null), []);
  assert.deepEqual(parseDocument(undefined), []);
});

Deno.test("parseDocument() reads a List's items in order, other kinds included", () => {
  const objects = parseDocument({
    apiVersion: "v1",
    kind: "List",
    items: [namespaceObj("x"), service, podObj("x/a"), policyObj("x/p", {})],
  });
  assert.deepEqual(objects.map((o) => o.kind), ["Namespace", "Other", "Pod", "NetworkPolicy"]);
  assert.deepEqual(parseDocument({ apiVersion: "v1", kind: "List" }), []);
});

Deno.test("parseDocument() lets a typed list's items omit kind and apiVersion", () => {
  const objects = parseDocument({
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicyList",
    metadata: { resourceVersion: "12" },
    items: [{ metadata: { namespace: "x", name: "p" }, spec: {} }],
  });
  assert.equal(objects[0]?.kind, "NetworkPolicy");
  const pods = parseDocument({
    apiVersion: "v1",
    kind: "PodList",
    items: [{ metadata: { name: "a" } }],
  });
  assert.equal(pods[0]?.kind, "Pod");
  // A typed list of another kind is a list of Others.
  const services = parseDocument({
    apiVersion: "v1",
    kind: "ServiceList",
    items: [{ metadata: {} }],
  });
  assert.equal(services[0]?.kind, "Other");
});

Deno.test("parseDocument() flattens a List inside a List", () => {
  const objects = parseDocument({
    kind: "List",
    items: [{ kind: "List", items: [namespaceObj("x"), namespaceObj("y")] }, podObj("x/a")],
  });
  assert.deepEqual(objects.map((o) => o.kind), ["Namespace", "Namespace", "Pod"]);
});

Deno.test("parseDocument() throws the first invalid item, naming its index", () => {
  const err = objectErrorOf(() =>
    parseDocument({
      kind: "List",
      items: [podObj("x/a"), { apiVersion: "v1", kind: "Pod", metadata: { namespace: "x" } }],
    })
  );
  assert.equal(err.item, 1);
  assert.equal(err.message, `Invalid Pod in namespace "x" (items[1]): metadata.name: must be set`);
  assert.equal(
    objectErrorOf(() => parseDocument({ kind: "List", items: {} })).message,
    "Invalid List: items: must be an array, got an object",
  );
});

Deno.test("parseItems() reports every item, valid or not, so one bad item hides no others", () => {
  const items = parseItems({
    kind: "List",
    items: [
      podObj("x/a"),
      "junk",
      { kind: "List", items: [{ kind: "Pod", apiVersion: "v1" }] },
      podObj("x/b"),
    ],
  });
  assert.deepEqual(items.map((i) => i.ok), [true, false, false, true]);
  const bad = items[1];
  assert.ok(bad !== undefined && !bad.ok);
  assert.equal(bad.error.message, `Invalid object (items[1]): must be an object, got "junk"`);
  const nested = items[2];
  assert.ok(nested !== undefined && !nested.ok);
  assert.equal(nested.error.item, 2);
  assert.ok(nested.error.cause instanceof ObjectError);
  assert.deepEqual(parseItems({ kind: "List", items: 3 }).map((i) => i.ok), [false]);
});
