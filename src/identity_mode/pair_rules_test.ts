// Tests for identity-mode rules: listing, keys, and carving a port range out.
import assert from "node:assert/strict";
import { denyPlan, keysOf, rulesOf, ruleText } from "./pair_rules.ts";
import { IDENTITY_HOST, IDENTITY_WORLD } from "../spec/bpf_layout.ts";

Deno.test("rulesOf() lists pairs and joins a rule's port prefixes back into its range", () => {
  const keys = [
    ...keysOf({ src: 1, dst: 2, proto: 6, ports: { from: 8000, to: 8100 } }),
    ...keysOf({ src: 1, dst: 2, proto: 17 }),
    ...keysOf({ src: 1, dst: IDENTITY_HOST, proto: 6, ports: { from: 80, to: 80 } }),
  ];
  assert.deepEqual(rulesOf([{ src: 3, dst: 4 }], keys), [
    { src: 1, dst: 2, proto: 6, ports: { from: 8000, to: 8100 } },
    { src: 1, dst: 2, proto: 17 },
    { src: 1, dst: IDENTITY_HOST, proto: 6, ports: { from: 80, to: 80 } },
    { src: 3, dst: 4 },
  ]);
});

Deno.test("ruleText() names host and world and the protocol and ports", () => {
  assert.equal(ruleText({ src: 1, dst: IDENTITY_WORLD }), "1 -> world");
  assert.equal(
    ruleText({ src: IDENTITY_HOST, dst: 2, proto: 6, ports: { from: 80, to: 81 } }),
    "host -> 2 tcp/80-81",
  );
  assert.equal(ruleText({ src: 1, dst: 2, proto: 1 }), "1 -> 2 icmp");
});

Deno.test("denyPlan() removes what the range covers and writes back the rest", () => {
  const have = keysOf({ src: 1, dst: 2, proto: 6, ports: { from: 8000, to: 8100 } });
  const plan = denyPlan({ src: 1, dst: 2, proto: 6, ports: { from: 8050, to: 8060 } }, have);
  const after = [...have.filter((k) => !plan.remove.includes(k)), ...plan.add];
  assert.deepEqual(rulesOf([], after), [
    { src: 1, dst: 2, proto: 6, ports: { from: 8000, to: 8049 } },
    { src: 1, dst: 2, proto: 6, ports: { from: 8061, to: 8100 } },
  ]);
  // Without ports: every key of the protocol; without a protocol: every key of the pair.
  assert.equal(denyPlan({ src: 1, dst: 2, proto: 6 }, have).remove.length, have.length);
  assert.equal(denyPlan({ src: 1, dst: 2 }, have).remove.length, have.length);
  assert.deepEqual(denyPlan({ src: 1, dst: 3 }, have), { remove: [], add: [] });
});
