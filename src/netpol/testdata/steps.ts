// Running the upstream cases against the engine: the environment (pod addresses), a step
// applied to a model, and the cells where a verdict disagrees with upstream's matrix.
import { applyObject, buildModel, deleteObject } from "../model_build.ts";
import { parseDocument } from "../parse.ts";
import type { Model } from "../model.ts";
import { baseCluster, casePods } from "./upstream_cases.ts";
import { expectedMatrix } from "./reachability.ts";
import type { CaseEnv, CaseProbe, CaseStep } from "./format.ts";

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
