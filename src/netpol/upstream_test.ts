// The engine against the upstream NetworkPolicy e2e suite: every case of
// kubernetes/kubernetes test/e2e/network/netpol/network_policy.go (testdata/), every step,
// every probe, every cell of the expected reachability matrix. Pure: no permissions.
import assert from "node:assert/strict";
import { applyObject, buildModel, deleteObject } from "./model_build.ts";
import { parseDocument } from "./parse.ts";
import { evaluate } from "./evaluate.ts";
import type { Model } from "./model.ts";
import { baseCluster, casePods, upstreamCases } from "./testdata/upstream_cases.ts";
import { expectedMatrix } from "./testdata/reachability.ts";
import type { CaseEnv, CaseProbe, CaseStep, UpstreamCase } from "./testdata/format.ts";

/** Pod addresses as upstream's cluster would give them: all inside one /4 (the except cases
 * build a /4 from x/a's address and rely on every pod being in it). */
export const ENV: CaseEnv = {
  podIp(pod: string): string {
    const [ns = "", name = ""] = pod.split("/");
    return `10.244.${"xyz".indexOf(ns) + 1}.${10 + "abc".indexOf(name)}`;
  },
};

/** The model at the start of `step`, given the model before it. */
export function applyStep(model: Model, step: CaseStep): Model {
  let m = model;
  for (const ref of step.delete) m = deleteObject(m, ref);
  for (const obj of step.apply) for (const o of parseDocument(obj)) m = applyObject(m, o);
  return m;
}

export function initialModel(): Model {
  return buildModel(baseCluster(ENV).flatMap((o) => parseDocument(o)));
}

/** Cells where `allowed(from, to)` disagrees with upstream's matrix, as "from->to: want X". */
export function mismatches(
  probe: CaseProbe,
  allowed: (from: string, to: string) => boolean,
): string[] {
  const want = expectedMatrix(casePods(), probe.expect);
  const out: string[] = [];
  for (const [cell, expected] of want) {
    const [from = "", to = ""] = cell.split("->");
    if (allowed(from, to) !== expected) {
      out.push(`${probe.protocol}/${probe.port} ${cell}: want ${expected ? "allowed" : "denied"}`);
    }
  }
  return out;
}

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
import { IdentityAllocator } from "./identity.ts";
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
