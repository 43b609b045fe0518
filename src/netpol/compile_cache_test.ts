// The compile cache gives what a compile from scratch gives, whatever sequence of changes it
// went through: every upstream case run one after another through one cache (policies
// added, replaced and deleted, pod and namespace labels changed), each step compared with a
// fresh compile; and a policy whose entries did not change keeps its rules' map object.
import assert from "node:assert/strict";
import { compile, CompileCache, type Compiled, ruleKeyId } from "./compile.ts";
import { IdentityAllocator } from "./identity.ts";
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
  let previous = new Map<string, unknown>();
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
      // The reconciler tells changed policies by their rules' map object.
      for (const [p, rules] of cached.policyRules) {
        if (previous.get(p) === rules) kept++;
        else if (previous.has(p)) {
          assert.ok(cache.compiled > 0, `${c.name}: ${p} changed without a compile`);
        }
      }
      previous = new Map(cached.policyRules);
      reused += cache.reused;
      steps++;
    }
  }
  assert.ok(steps > 90, `${steps} steps`);
  assert.ok(reused > 0, "the cache was used");
  assert.ok(kept > 0, "unchanged policies kept their rules' map");
});
