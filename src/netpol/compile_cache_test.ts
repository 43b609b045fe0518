// The compile cache gives what a compile from scratch gives, whatever sequence of changes it
// went through: every upstream case run one after another through one cache (policies
// added, replaced and deleted, pod and namespace labels changed), each step compared with a
// fresh compile; and the changes it reports are exactly the rules that differ.
import assert from "node:assert/strict";
import { compile, CompileCache, type Compiled, ruleKeyId } from "./compile.ts";
import { IdentityAllocator } from "./identity.ts";
import { upstreamCases } from "./testdata/upstream_cases.ts";
import { applyStep, ENV, initialModel } from "./testdata/steps.ts";

function view(c: Compiled) {
  return {
    isolation: [...c.isolation].sort(),
    rules: [...c.rules].map(([id, r]) => [id, ruleKeyId(r.key), JSON.stringify(r.sources)]).sort(),
  };
}

Deno.test("compile cache: every step of every upstream case, in one cache, equals a compile from scratch", () => {
  const cache = new CompileCache();
  const alloc = { pods: new IdentityAllocator("pod"), cidrs: new IdentityAllocator("cidr") };
  let previous = new Set<string>();
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
      // The reported changes cover every rule that appeared or went.
      const now = new Set(cached.rules.keys());
      const changes = cache.takeChanges();
      for (const id of now) if (!previous.has(id)) assert.ok(changes.has(id), `added ${id}`);
      for (const id of previous) if (!now.has(id)) assert.ok(changes.has(id), `removed ${id}`);
      previous = now;
      reused += cache.reused;
      steps++;
    }
  }
  assert.ok(steps > 90, `${steps} steps`);
  assert.ok(reused > 0, "the cache was used");
});
