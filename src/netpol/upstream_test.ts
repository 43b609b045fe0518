// The engine against the upstream NetworkPolicy e2e suite: every case of
// kubernetes/kubernetes test/e2e/network/netpol/network_policy.go (testdata/), every step,
// every probe, every cell of the expected reachability matrix. Pure: no permissions.
import assert from "node:assert/strict";
import { evaluate } from "./evaluate.ts";
import { upstreamCases } from "./testdata/upstream_cases.ts";
import type { UpstreamCase } from "./testdata/format.ts";
import { applyStep, ENV, initialModel, mismatches } from "./testdata/steps.ts";

function podEnd(name: string) {
  const [namespace = "", pod = ""] = name.split("/");
  return { kind: "pod" as const, namespace, name: pod };
}

function runCase(c: UpstreamCase): string[] {
  let model = initialModel();
  const problems: string[] = [];
  c.steps.forEach((step, i) => {
    model = applyStep(model, step);
    for (const probe of step.probes) {
      const m = model;
      const wrong = mismatches(probe, (from, to) =>
        evaluate(m, {
          src: podEnd(from),
          dst: podEnd(to),
          protocol: probe.protocol,
          port: probe.port,
        }).allowed);
      problems.push(...wrong.map((w) => `step ${i + 1} (${step.description}): ${w}`));
    }
  });
  return problems;
}

for (const c of upstreamCases(ENV)) {
  Deno.test(`engine matches upstream: ${c.name}`, () => {
    assert.deepEqual(runCase(c), []);
  });
}

// The compiler against the same cases: the datapath's lookups over the compiled entries
// (simulate.ts, what bpf/lib/policy.h does) give every cell evaluate() gives.
import { compile } from "./compile.ts";
import { IdentityAllocator } from "./identity_alloc.ts";
import { simulate } from "./simulate.ts";
import { parseIpv4 } from "../spec/ipv4.ts";

const PROTO = { TCP: 6, UDP: 17, SCTP: 132 } as const;

for (const c of upstreamCases(ENV)) {
  Deno.test(`compiled entries match upstream: ${c.name}`, () => {
    let model = initialModel();
    const pods = new IdentityAllocator("pod");
    const cidrs = new IdentityAllocator("cidr");
    const problems: string[] = [];
    c.steps.forEach((step, i) => {
      model = applyStep(model, step);
      const compiled = compile(model, { pods, cidrs, isLocal: () => true });
      for (const probe of step.probes) {
        const wrong = mismatches(probe, (from, to) =>
          simulate(compiled, {
            src: parseIpv4(ENV.podIp(from)),
            dst: parseIpv4(ENV.podIp(to)),
            proto: PROTO[probe.protocol],
            port: probe.port,
          }).allowed);
        problems.push(...wrong.map((w) => `step ${i + 1}: ${w}`));
      }
    });
    assert.deepEqual(problems, []);
  });
}
