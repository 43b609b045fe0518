// Unit tests for the engine's error types.
import assert from "node:assert/strict";
import { FlowError, ObjectError } from "./errors.ts";

Deno.test("ObjectError names the object by kind and namespace/name, then the field", () => {
  const err = new ObjectError(
    { kind: "NetworkPolicy", namespace: "ns", name: "p" },
    "spec.ingress[0].ports[0].endPort",
    "must be greater than or equal to port 80, got 79",
  );
  assert.equal(
    err.message,
    `Invalid NetworkPolicy "ns/p": spec.ingress[0].ports[0].endPort: must be greater than or equal to port 80, got 79`,
  );
  assert.equal(err.name, "ObjectError");
  assert.equal(err.kind, "NetworkPolicy");
  assert.equal(err.namespace, "ns");
  assert.equal(err.objectName, "p");
  assert.equal(err.path, "spec.ingress[0].ports[0].endPort");
  assert.equal(err.detail, "must be greater than or equal to port 80, got 79");
  assert.equal(err.item, undefined);
});

Deno.test("ObjectError says what it knows when the name or kind is missing", () => {
  assert.equal(
    new ObjectError({ kind: "Namespace", name: "x" }, "metadata.name", "bad").message,
    `Invalid Namespace "x": metadata.name: bad`,
  );
  assert.equal(
    new ObjectError({ kind: "Pod", namespace: "ns" }, "metadata.name", "must be set").message,
    `Invalid Pod in namespace "ns": metadata.name: must be set`,
  );
  assert.equal(
    new ObjectError({}, "", "must be an object, got 3").message,
    "Invalid object: must be an object, got 3",
  );
  assert.equal(
    new ObjectError({ kind: "Pod", namespace: "a", name: "b", item: 2 }, "spec", "x").message,
    `Invalid Pod "a/b" (items[2]): spec: x`,
  );
});

Deno.test("ObjectError keeps its cause", () => {
  const cause = new Error("inner");
  assert.equal(new ObjectError({}, "a", "b", { cause }).cause, cause);
});

Deno.test("FlowError is a named Error", () => {
  const err = new FlowError('Pod "x/a" is not in the model');
  assert.ok(err instanceof Error);
  assert.equal(err.name, "FlowError");
});
