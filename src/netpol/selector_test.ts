// Unit tests for label selector matching.
import assert from "node:assert/strict";
import type { LabelSelector } from "./model.ts";
import { isEmptySelector, matches } from "./selector.ts";

const sel = (
  matchLabels: Record<string, string>,
  matchExpressions: LabelSelector["matchExpressions"] = [],
): LabelSelector => ({ matchLabels, matchExpressions });

Deno.test("matches() selects everything with an empty selector", () => {
  assert.equal(matches(sel({}), {}), true);
  assert.equal(matches(sel({}), { app: "web" }), true);
  assert.equal(isEmptySelector(sel({})), true);
  assert.equal(isEmptySelector(sel({ app: "web" })), false);
});

Deno.test("matches() requires every matchLabels pair", () => {
  const s = sel({ app: "web", tier: "front" });
  assert.equal(matches(s, { app: "web", tier: "front", extra: "x" }), true);
  assert.equal(matches(s, { app: "web" }), false);
  assert.equal(matches(s, { app: "web", tier: "back" }), false);
});

Deno.test("matches() treats In as key present with a listed value", () => {
  const s = sel({}, [{ key: "env", operator: "In", values: ["dev", "qa"] }]);
  assert.equal(matches(s, { env: "qa" }), true);
  assert.equal(matches(s, { env: "prod" }), false);
  assert.equal(matches(s, {}), false);
});

Deno.test("matches() treats NotIn as matching when the key is absent", () => {
  const s = sel({}, [{ key: "env", operator: "NotIn", values: ["prod"] }]);
  assert.equal(matches(s, {}), true);
  assert.equal(matches(s, { env: "dev" }), true);
  assert.equal(matches(s, { env: "prod" }), false);
});

Deno.test("matches() treats Exists and DoesNotExist as key presence, whatever the value", () => {
  const exists = sel({}, [{ key: "env", operator: "Exists", values: [] }]);
  const absent = sel({}, [{ key: "env", operator: "DoesNotExist", values: [] }]);
  assert.equal(matches(exists, { env: "" }), true);
  assert.equal(matches(exists, {}), false);
  assert.equal(matches(absent, {}), true);
  assert.equal(matches(absent, { env: "" }), false);
});

Deno.test("matches() ANDs matchLabels with every matchExpression", () => {
  const s = sel({ app: "web" }, [
    { key: "env", operator: "In", values: ["dev"] },
    { key: "legacy", operator: "DoesNotExist", values: [] },
  ]);
  assert.equal(matches(s, { app: "web", env: "dev" }), true);
  assert.equal(matches(s, { app: "web", env: "dev", legacy: "1" }), false);
  assert.equal(matches(s, { app: "db", env: "dev" }), false);
});

Deno.test("matches() looks at own labels only, so a 'constructor' key is absent unless set", () => {
  const s = sel({}, [{ key: "constructor", operator: "Exists", values: [] }]);
  assert.equal(matches(s, {}), false);
  assert.equal(matches(s, { constructor: "x" }), true);
  assert.equal(matches(sel({}, [{ key: "toString", operator: "NotIn", values: ["a"] }]), {}), true);
});
