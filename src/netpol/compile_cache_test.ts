// The compile cache gives what a compile from scratch gives, whatever sequence of changes it
// went through: every upstream case run one after another through one cache (policies
// added, replaced and deleted, pod and namespace labels changed), each step compared with a
// fresh compile; and a policy whose entries did not change keeps its rules' map object.
import assert from "node:assert/strict";
import { compile, CompileCache, type Compiled, ruleKeyId } from "./compile.ts";
import { IdentityAllocator } from "./identity_alloc.ts";
import { upstreamCases } from "./testdata/upstream_cases.ts";
import { applyStep, ENV, initialModel } from "./testdata/steps.ts";

function view(c: Compiled) {
  return {
    isolation: [...c.isolation].sort(),
    rules: [...c.rules].map(([id, r]) => [id, ruleKeyId(r.key), JSON.stringify(r.sources)]).sort(),
    policies: [...c.policyRules].map(([p, r]) => [p, [...r.keys()].sort()]).sort(),
  };
}

Deno.test("compile cache: every step of every upstream case, in one cache, equals a compile from scratch", () => {
  const cache = new CompileCache();
  const alloc = { pods: new IdentityAllocator("pod"), cidrs: new IdentityAllocator("cidr") };
  /** Each policy's rules' map object at the step before, and the ids it held then. */
  let previous = new Map<string, { rules: unknown; ids: string[] }>();
  let kept = 0;
  let steps = 0;
  let reused = 0;
  for (const c of upstreamCases(ENV)) {
    let model = initialModel();
    for (const step of [{ delete: [], apply: [], probes: [], description: "" }, ...c.steps]) {
      model = applyStep(model, step);
      const cached = compile(model, { ...alloc, isLocal: () => true, cache });
      const fresh = compile(model, {
        pods: new IdentityAllocator("pod"),
        cidrs: new IdentityAllocator("cidr"),
        isLocal: () => true,
      });
      assert.deepEqual(view(cached), view(fresh), `${c.name}: ${step.description}`);
      // The reconciler tells changed policies by their rules' map object: the same object
      // must mean the same entries as the step before (a fresh compile's).
      const freshIds = new Map([...fresh.policyRules].map(([p, r]) => [p, [...r.keys()].sort()]));
      for (const [p, rules] of cached.policyRules) {
        const before = previous.get(p);
        if (before?.rules !== rules) continue;
        kept++;
        assert.deepEqual(freshIds.get(p), before.ids, `${c.name}: ${p} changed, same map object`);
      }
      previous = new Map(
        [...cached.policyRules].map(([p, rules]) => [p, { rules, ids: [...rules.keys()].sort() }]),
      );
      reused += cache.reused;
      steps++;
    }
  }
  assert.ok(steps > 90, `${steps} steps`);
  assert.ok(reused > 0, "the cache was used");
  assert.ok(kept > 0, "unchanged policies kept their rules' map");
});
