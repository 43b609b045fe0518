// Label selector matching with Kubernetes semantics (k8s.io/apimachinery pkg/labels): every
// matchLabels pair AND every matchExpression must hold; an empty selector matches everything.
import type { Labels, LabelSelector, LabelSelectorRequirement } from "./model.ts";

/** Does `selector` select an object carrying `labels`? */
export function matches(selector: LabelSelector, labels: Labels): boolean {
  const want = selector.matchLabels;
  // for-in rather than Object.entries: this runs per pod per policy and must not allocate.
  for (const key in want) {
    if (Object.hasOwn(want, key) && labelOf(labels, key) !== want[key]) return false;
  }
  for (const req of selector.matchExpressions) {
    if (!requirementHolds(req, labels)) return false;
  }
  return true;
}

/** Whether a selector has no terms at all (it selects every object). */
export function isEmptySelector(selector: LabelSelector): boolean {
  return Object.keys(selector.matchLabels).length === 0 && selector.matchExpressions.length === 0;
}

function requirementHolds(req: LabelSelectorRequirement, labels: Labels): boolean {
  const value = labelOf(labels, req.key);
  switch (req.operator) {
    case "In":
      return value !== undefined && req.values.includes(value);
    case "NotIn":
      // An absent key is "not in" any set, as labels.Requirement.Matches has it.
      return value === undefined || !req.values.includes(value);
    case "Exists":
      return value !== undefined;
    case "DoesNotExist":
      return value === undefined;
  }
}

// Own properties only: "constructor" is a valid label key and must not find Object's.
function labelOf(labels: Labels, key: string): string | undefined {
  return Object.hasOwn(labels, key) ? labels[key] : undefined;
}
