// Unit tests for the typed JSON reader.
import assert from "node:assert/strict";
import { child, describeValue, field, index, keyed, Reader } from "./_reader.ts";
import { objectErrorOf } from "./_test_util.ts";

Deno.test("child(), index() and keyed() write paths as the API server does", () => {
  assert.equal(child("", "spec"), "spec");
  assert.equal(child("spec", "ingress"), "spec.ingress");
  assert.equal(index("spec.ingress", 0), "spec.ingress[0]");
  assert.equal(
    keyed("metadata.labels", "app.kubernetes.io/name"),
    "metadata.labels[app.kubernetes.io/name]",
  );
});

Deno.test("describeValue() quotes strings and names other kinds of values", () => {
  assert.equal(describeValue("x"), `"x"`);
  assert.equal(describeValue(3), "3");
  assert.equal(describeValue(true), "true");
  assert.equal(describeValue(null), "null");
  assert.equal(describeValue([]), "an array");
  assert.equal(describeValue({}), "an object");
  assert.equal(describeValue("a".repeat(150)), JSON.stringify(`${"a".repeat(100)}...`));
});

Deno.test("field() reads null as absent and ignores inherited properties", () => {
  assert.equal(field({ a: null }, "a"), undefined);
  assert.equal(field({}, "constructor"), undefined);
  assert.equal(field({ a: 0 }, "a"), 0);
});

Deno.test("Reader reports wrong types with the field's path", () => {
  const r = new Reader({ kind: "Pod", namespace: "ns", name: "a" });
  const o = { s: 1, b: "yes", n: 1.5, a: {}, o: [] };
  assert.equal(objectErrorOf(() => r.optString(o, "s", "spec")).detail, "must be a string, got 1");
  assert.equal(
    objectErrorOf(() => r.optBoolean(o, "b", "spec")).detail,
    `must be a boolean, got "yes"`,
  );
  assert.equal(
    objectErrorOf(() => r.optInteger(o, "n", "spec")).detail,
    "must be an integer, got 1.5",
  );
  assert.equal(
    objectErrorOf(() => r.optArray(o, "a", "spec")).message,
    `Invalid Pod "ns/a": spec.a: must be an array, got an object`,
  );
  assert.equal(objectErrorOf(() => r.optObject(o, "o", "spec")).path, "spec.o");
  assert.equal(objectErrorOf(() => r.requiredString({ s: "" }, "s", "spec")).detail, "must be set");
  assert.equal(
    objectErrorOf(() => r.onlyFields({ x: 1 }, ["y"], "spec")).detail,
    `unknown field "x" (known: y)`,
  );
});
