// Unit tests for LabelSelector validation.
import assert from "node:assert/strict";
import { objectErrorOf, policyObj } from "./_test_util.ts";
import { parseNetworkPolicy } from "./parse.ts";

const withSelector = (podSelector: unknown) => policyObj("ns/p", { podSelector });
const selectorError = (s: unknown) => objectErrorOf(() => parseNetworkPolicy(withSelector(s)));

Deno.test("readSelector() keeps matchLabels and matchExpressions", () => {
  const policy = parseNetworkPolicy(withSelector({
    matchLabels: { app: "web" },
    matchExpressions: [
      { key: "env", operator: "In", values: ["dev", "qa"] },
      { key: "legacy", operator: "DoesNotExist" },
    ],
  }));
  assert.deepEqual(policy.podSelector, {
    matchLabels: { app: "web" },
    matchExpressions: [
      { key: "env", operator: "In", values: ["dev", "qa"] },
      { key: "legacy", operator: "DoesNotExist", values: [] },
    ],
  });
});

Deno.test("readSelector() reads an absent or null podSelector as the empty selector", () => {
  const empty = { matchLabels: {}, matchExpressions: [] };
  assert.deepEqual(parseNetworkPolicy(policyObj("ns/p", {})).podSelector, empty);
  assert.deepEqual(parseNetworkPolicy(withSelector(null)).podSelector, empty);
  assert.deepEqual(parseNetworkPolicy(withSelector({ matchLabels: null })).podSelector, empty);
});

Deno.test("readSelector() refuses unknown operators, with the exact message", () => {
  assert.equal(
    selectorError({ matchExpressions: [{ key: "a", operator: "Equals", values: ["b"] }] }).message,
    `Invalid NetworkPolicy "ns/p": spec.podSelector.matchExpressions[0].operator: must be "In", "NotIn", "Exists" or "DoesNotExist", got "Equals"`,
  );
  assert.equal(
    selectorError({ matchExpressions: [{ key: "a" }] }).path,
    "spec.podSelector.matchExpressions[0].operator",
  );
});

Deno.test("readSelector() requires values for In and NotIn and forbids them otherwise", () => {
  const noValues = selectorError({ matchExpressions: [{ key: "a", operator: "NotIn" }] });
  assert.equal(noValues.path, "spec.podSelector.matchExpressions[0].values");
  assert.equal(noValues.detail, `must be non-empty when operator is "NotIn"`);
  assert.equal(
    selectorError({ matchExpressions: [{ key: "a", operator: "In", values: [] }] }).detail,
    `must be non-empty when operator is "In"`,
  );
  assert.equal(
    selectorError({ matchExpressions: [{ key: "a", operator: "Exists", values: ["x"] }] }).detail,
    `must be empty when operator is "Exists"`,
  );
});

Deno.test("readSelector() checks expression keys and values as labels", () => {
  const key = selectorError({ matchExpressions: [{ key: "a b", operator: "Exists" }] });
  assert.equal(key.path, "spec.podSelector.matchExpressions[0].key");
  assert.match(key.detail, /^name part must consist of .*, got "a b"$/);
  assert.equal(
    selectorError({ matchExpressions: [{ operator: "Exists" }] }).path,
    "spec.podSelector.matchExpressions[0].key",
  );
  const value = selectorError({
    matchExpressions: [{ key: "a", operator: "In", values: ["ok", "no way"] }],
  });
  assert.equal(value.path, "spec.podSelector.matchExpressions[0].values[1]");
  assert.match(value.detail, /^must be empty or consist of .*, got "no way"$/);
  assert.equal(
    selectorError({ matchExpressions: [{ key: "a", operator: "In", values: [1] }] }).detail,
    "must be a string, got 1",
  );
});

Deno.test("readSelector() checks matchLabels keys and values", () => {
  const key = selectorError({ matchLabels: { "a/b/c": "x" } });
  assert.equal(key.path, "spec.podSelector.matchLabels");
  assert.match(key.detail, /^invalid label key "a\/b\/c": /);
  const value = selectorError({ matchLabels: { app: "-x" } });
  assert.equal(value.path, "spec.podSelector.matchLabels[app]");
  assert.equal(selectorError({ matchLabels: { app: true } }).detail, "must be a string, got true");
});

Deno.test("readSelector() refuses unknown fields such as a misspelt matchLabels", () => {
  const err = selectorError({ matchLabel: { app: "web" } });
  assert.equal(err.path, "spec.podSelector");
  assert.equal(err.detail, `unknown field "matchLabel" (known: matchLabels, matchExpressions)`);
});
