// A metav1.LabelSelector read and validated as ValidateLabelSelector does: matchLabels keys and
// values in label syntax; each matchExpression with a valid key, a known operator, values for
// In/NotIn (at least one) and none for Exists/DoesNotExist, each value in label value syntax.
import { labelKeyProblem, labelValueProblem } from "./_k8s_names.ts";
import { child, describeValue, index, type Reader } from "./_reader.ts";
import type { LabelSelector, LabelSelectorRequirement, SelectorOperator } from "./model.ts";
import { readLabels } from "./parse_meta.ts";

const OPERATORS: readonly SelectorOperator[] = ["In", "NotIn", "Exists", "DoesNotExist"];

export function readSelector(r: Reader, value: unknown, path: string): LabelSelector {
  const o = r.object(value, path);
  r.onlyFields(o, ["matchLabels", "matchExpressions"], path);
  const matchLabels = readLabels(
    r,
    r.optObject(o, "matchLabels", path),
    child(path, "matchLabels"),
  );
  const exprsPath = child(path, "matchExpressions");
  const matchExpressions = (r.optArray(o, "matchExpressions", path) ?? []).map((e, i) =>
    readRequirement(r, e, index(exprsPath, i))
  );
  return { matchLabels, matchExpressions };
}

function readRequirement(r: Reader, value: unknown, path: string): LabelSelectorRequirement {
  const o = r.object(value, path);
  r.onlyFields(o, ["key", "operator", "values"], path);
  const operator = r.requiredString(o, "operator", path);
  if (!(OPERATORS as readonly string[]).includes(operator)) {
    r.fail(
      child(path, "operator"),
      `must be "In", "NotIn", "Exists" or "DoesNotExist", got ${describeValue(operator)}`,
    );
  }
  const op = operator as SelectorOperator;
  const valuesPath = child(path, "values");
  const values = (r.optArray(o, "values", path) ?? []).map((v, i) => {
    if (typeof v !== "string") {
      r.fail(index(valuesPath, i), `must be a string, got ${describeValue(v)}`);
    }
    return v;
  });
  if ((op === "In" || op === "NotIn") && values.length === 0) {
    r.fail(valuesPath, `must be non-empty when operator is "${op}"`);
  }
  if ((op === "Exists" || op === "DoesNotExist") && values.length > 0) {
    r.fail(valuesPath, `must be empty when operator is "${op}"`);
  }
  const key = r.requiredString(o, "key", path);
  const keyWhy = labelKeyProblem(key);
  if (keyWhy !== undefined) r.fail(child(path, "key"), `${keyWhy}, got ${describeValue(key)}`);
  values.forEach((v, i) => {
    const why = labelValueProblem(v);
    if (why !== undefined) r.fail(index(valuesPath, i), `${why}, got ${describeValue(v)}`);
  });
  return { key, operator: op, values };
}
