// Unit tests for Namespace parsing.
import assert from "node:assert/strict";
import { namespaceObj, objectErrorOf } from "./_test_util.ts";
import { NAMESPACE_NAME_LABEL } from "./model.ts";
import { parseNamespace, parseObject } from "./parse.ts";

Deno.test("readNamespace() sets kubernetes.io/metadata.name to the name", () => {
  assert.deepEqual(parseObject(namespaceObj("x", { team: "a" })), {
    kind: "Namespace",
    value: { name: "x", labels: { team: "a", [NAMESPACE_NAME_LABEL]: "x" } },
  });
  assert.deepEqual(parseNamespace({ metadata: { name: "y" } }).labels, {
    [NAMESPACE_NAME_LABEL]: "y",
  });
});

Deno.test("readNamespace() overwrites a kubernetes.io/metadata.name label that says otherwise", () => {
  const ns = parseNamespace(namespaceObj("x", { [NAMESPACE_NAME_LABEL]: "y" }));
  assert.equal(ns.labels[NAMESPACE_NAME_LABEL], "x");
});

Deno.test("readNamespace() requires a DNS label name, so dots are refused", () => {
  const err = objectErrorOf(() => parseNamespace(namespaceObj("a.b")));
  assert.equal(err.kind, "Namespace");
  assert.equal(err.namespace, undefined);
  assert.match(
    err.message,
    /^Invalid Namespace "a\.b": metadata\.name: must be a lowercase RFC 1123 label/,
  );
  assert.equal(
    objectErrorOf(() => parseNamespace(namespaceObj("a".repeat(64)))).detail,
    `must be no more than 63 characters, got "${"a".repeat(64)}"`,
  );
});
