// metadata as the engine reads it: the name (required, in the kind's name syntax), the
// namespace of namespaced kinds (defaulted to "default"), and validated labels. Other
// metadata (annotations, uid, managedFields) is not read and not checked.
import { dnsLabelProblem, labelKeyProblem, labelValueProblem } from "./_k8s_names.ts";
import { describeValue, type JsonObject, keyed, type Reader } from "./_reader.ts";

export interface Metadata {
  name: string;
  /** Undefined for cluster-scoped kinds. */
  namespace: string | undefined;
  labels: Record<string, string>;
}

/**
 * Reads `metadata`. The raw name and namespace go into `r.where` first, so that every later
 * error (even one about the name itself) says which object it is about.
 */
export function readMetadata(
  r: Reader,
  obj: JsonObject,
  scope: "namespaced" | "cluster",
  nameProblem: (name: string) => string | undefined,
): Metadata {
  const meta = r.optObject(obj, "metadata", "") ?? {};
  const rawName = meta["name"];
  if (typeof rawName === "string" && rawName !== "") r.where.name = rawName;
  let namespace: string | undefined;
  if (scope === "namespaced") {
    const rawNs = meta["namespace"];
    // The API server takes the namespace from the request; kubectl defaults it to "default".
    namespace = typeof rawNs === "string" && rawNs !== "" ? rawNs : "default";
    r.where.namespace = namespace;
    r.optString(meta, "namespace", "metadata");
    const why = dnsLabelProblem(namespace);
    if (why !== undefined) r.fail("metadata.namespace", `${why}, got ${describeValue(namespace)}`);
  }
  // A cluster-scoped object's metadata.namespace is ignored (kubectl drops it too).
  const name = r.requiredString(meta, "name", "metadata");
  const why = nameProblem(name);
  if (why !== undefined) r.fail("metadata.name", `${why}, got ${describeValue(name)}`);
  const labels = readLabels(r, r.optObject(meta, "labels", "metadata"), "metadata.labels");
  return { name, namespace, labels };
}

/** A map of label keys to values (metadata.labels, a selector's matchLabels), validated. */
export function readLabels(
  r: Reader,
  value: JsonObject | undefined,
  path: string,
): Record<string, string> {
  const labels: Record<string, string> = {};
  if (value === undefined) return labels;
  for (const [key, raw] of Object.entries(value)) {
    // Go decodes a null map value as "" (YAML `app:` with nothing after it).
    const v = raw === null ? "" : raw;
    const keyWhy = labelKeyProblem(key);
    if (keyWhy !== undefined) r.fail(path, `invalid label key ${describeValue(key)}: ${keyWhy}`);
    if (typeof v !== "string") {
      r.fail(keyed(path, key), `must be a string, got ${describeValue(v)}`);
    }
    const valueWhy = labelValueProblem(v);
    if (valueWhy !== undefined) r.fail(keyed(path, key), `${valueWhy}, got ${describeValue(v)}`);
    labels[key] = v;
  }
  return labels;
}
