import assert from "node:assert/strict";
import { renderExplanation } from "./explain_view.ts";
import type { Explanation } from "../agent/agent_core.ts";

const ALLOWED_BY_POLICY: Explanation = {
  flow: { from: "x/a", to: "x/c", protocol: "TCP", port: 80 },
  allowed: false,
  notEnforced: [{
    policy: "x/c-from-a",
    needed: 1,
    free: 0,
    reason: "rule_map holds 131072 of 131072 entries",
    since: "2026-01-01T00:00:00.000Z",
    place: 1,
    keepsPrevious: false,
    pods: ["x/c"],
    podCount: 1,
  }],
  decision: {
    allowed: true,
    egress: { applies: true, isolatedBy: [], allowedBy: [], allowed: true },
    ingress: {
      applies: true,
      isolatedBy: ["x/c-from-a"],
      allowedBy: [{ policy: "x/c-from-a", direction: "ingress", rule: 0 }],
      allowed: true,
    },
  },
  datapath: {
    allowed: false,
    hook: "to-pod",
    egress: { applies: true, isolated: false, allowed: true, matched: [] },
    ingress: { applies: true, isolated: true, allowed: false, matched: [] },
  },
};

Deno.test("policy explain text: the verdict is the maps', and names the policy not enforced", () => {
  const text = renderExplanation(ALLOWED_BY_POLICY);
  assert.match(text, /^x\/a -> x\/c 80\/tcp: DENIED by the maps \(the policies allow it\)$/m);
  assert.match(text, /^ {2}NOT ENFORCED as written: x\/c-from-a \(#1 in line/m);
  assert.doesNotMatch(text, /WARNING/);
  const agreeing = renderExplanation({
    ...ALLOWED_BY_POLICY,
    allowed: true,
    notEnforced: [],
    datapath: { ...ALLOWED_BY_POLICY.datapath!, allowed: true },
  });
  assert.match(agreeing, /^x\/a -> x\/c 80\/tcp: ALLOWED$/m);
  assert.doesNotMatch(agreeing, /NOT ENFORCED|WARNING/);
});
