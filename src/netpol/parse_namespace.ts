// A v1 Namespace into the model's Namespace: its name (a DNS-1123 label) and labels, with
// kubernetes.io/metadata.name set to the name as the API server sets it (whatever the object
// says: the API server overwrites that label too).
import { dnsLabelProblem } from "./_k8s_names.ts";
import type { JsonObject, Reader } from "./_reader.ts";
import { type Namespace, NAMESPACE_NAME_LABEL } from "./model.ts";
import { readMetadata } from "./parse_meta.ts";

export function readNamespace(r: Reader, obj: JsonObject): Namespace {
  const meta = readMetadata(r, obj, "cluster", dnsLabelProblem);
  return { name: meta.name, labels: { ...meta.labels, [NAMESPACE_NAME_LABEL]: meta.name } };
}
