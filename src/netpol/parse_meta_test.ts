// Unit tests for metadata: names, namespaces and labels.
import assert from "node:assert/strict";
import { objectErrorOf } from "./_test_util.ts";
import { parseObject, parsePod } from "./parse.ts";

const pod = (metadata: unknown) => parsePod({ metadata });
const podError = (metadata: unknown) => objectErrorOf(() => pod(metadata));

Deno.test("readMetadata() defaults the namespace of a namespaced kind to default", () => {
  assert.equal(pod({ name: "a" }).namespace, "default");
  assert.equal(pod({ name: "a", namespace: "" }).namespace, "default");
  assert.equal(pod({ name: "a", namespace: "x" }).namespace, "x");
});

Deno.test("readMetadata() requires a name, with the exact message", () => {
  assert.equal(
    podError({ namespace: "x" }).message,
    `Invalid Pod in namespace "x": metadata.name: must be set`,
  );
  assert.equal(podError({ name: "" }).detail, "must be set");
  assert.equal(podError({ generateName: "web-" }).path, "metadata.name");
  assert.equal(podError({ name: 7 }).detail, "must be a string, got 7");
  assert.equal(
    objectErrorOf(() => parsePod({ metadata: [] })).message,
    `Invalid Pod: metadata: must be an object, got an array`,
  );
});

Deno.test("readMetadata() requires a DNS label namespace", () => {
  const err = podError({ name: "a", namespace: "Kube_System" });
  assert.equal(err.path, "metadata.namespace");
  assert.match(err.detail, /^must be a lowercase RFC 1123 label .*, got "Kube_System"$/);
  assert.equal(podError({ name: "a", namespace: 3 }).detail, "must be a string, got 3");
});

Deno.test("readMetadata() names the object in errors about its own name", () => {
  const err = podError({ name: "Web", namespace: "x" });
  assert.equal(err.objectName, "Web");
  assert.equal(err.namespace, "x");
  assert.match(
    err.message,
    /^Invalid Pod "x\/Web": metadata\.name: must be a lowercase RFC 1123 subdomain/,
  );
});

Deno.test("readLabels() keeps valid labels and refuses bad keys and values", () => {
  assert.deepEqual(pod({ name: "a", labels: { app: "web", "example.com/tier": "" } }).labels, {
    app: "web",
    "example.com/tier": "",
  });
  assert.deepEqual(pod({ name: "a", labels: null }).labels, {});
  assert.deepEqual(pod({ name: "a", labels: { app: null } }).labels, { app: "" });
  const key = podError({ name: "a", labels: { "a b": "x" } });
  assert.equal(key.path, "metadata.labels");
  assert.match(key.detail, /^invalid label key "a b": name part must consist of/);
  const value = podError({ name: "a", labels: { app: "web server" } });
  assert.equal(value.path, "metadata.labels[app]");
  assert.match(value.detail, /^must be empty or consist of .*, got "web server"$/);
  assert.equal(
    podError({ name: "a", labels: { replicas: 3 } }).message,
    `Invalid Pod "default/a": metadata.labels[replicas]: must be a string, got 3`,
  );
  assert.equal(podError({ name: "a", labels: ["app"] }).detail, "must be an object, got an array");
});

Deno.test("readMetadata() ignores metadata.namespace on a cluster-scoped Namespace", () => {
  const parsed = parseObject({
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name: "x", namespace: "ignored" },
  });
  assert.equal(parsed.kind, "Namespace");
});
