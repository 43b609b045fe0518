// Kubernetes objects (plain JSON as kubectl and the API server give them, or parsed YAML) into
// the engine's model: Namespaces, Pods, Nodes and networking.k8s.io/v1 NetworkPolicies, validated as
// the API server validates the fields the engine reads, and defaulted as it defaults them.
//
// Results and errors:
// - an object of another kind, or of a known kind under another apiVersion (a Calico
//   `projectcalico.org/v3` NetworkPolicy, a pre-1.16 `extensions/v1beta1` one), is not an
//   error: it is `{ kind: "Other" }` with its identity, for the caller to skip with a note;
// - an object of a known kind that the API server would reject (or that has no apiVersion) is
//   an ObjectError naming the object, the field and what is wrong with it (the first problem
//   found; the API server lists them all).
//
// Documents: `parseDocument` also takes `kind: List` and the typed lists kubectl and the API
// server print (`PodList`, `NetworkPolicyList`, ...), whose items may omit kind and apiVersion
// (the API server's list responses do); an empty YAML document (null) holds no objects.
import { ObjectError } from "./errors.ts";
import { describeValue, field, isObject, type JsonObject, Reader } from "./_reader.ts";
import type { Namespace, Pod, Policy } from "./model.ts";
import { readNamespace } from "./parse_namespace.ts";
import { readNetworkPolicy } from "./parse_policy.ts";
import { readPod } from "./parse_pod.ts";
import { readNode } from "./parse_node.ts";
import type { ClusterNode } from "../spec/node.ts";

/** An object that is none of the engine's kinds: what it is, for a "skipped" note. */
export interface OtherObject {
  apiVersion: string | undefined;
  kind: string;
  namespace: string | undefined;
  name: string | undefined;
}

export type ParsedObject =
  | { kind: "Namespace"; value: Namespace }
  | { kind: "Pod"; value: Pod }
  | { kind: "NetworkPolicy"; value: Policy }
  | { kind: "Node"; value: ClusterNode }
  | { kind: "Other"; value: OtherObject };

/** One object of a document: parsed, or why not. */
export type ParsedItem =
  | { ok: true; object: ParsedObject }
  | { ok: false; error: ObjectError };

/** The apiVersion each kind the engine reads must have. */
export const API_VERSIONS = {
  Namespace: "v1",
  Pod: "v1",
  NetworkPolicy: "networking.k8s.io/v1",
  Node: "v1",
} as const;

/** One object; a List is "Other" here (use parseDocument). Throws ObjectError. */
export function parseObject(obj: unknown): ParsedObject {
  return parseWhere(obj, undefined);
}

/** Every object of a document (one object or a List), in order. Throws the first ObjectError. */
export function parseDocument(doc: unknown): ParsedObject[] {
  return parseItems(doc).map((item) => {
    if (!item.ok) throw item.error;
    return item.object;
  });
}

/** Like parseDocument, but one invalid item does not hide the others (kubectl apply goes on
 * to the next item too). */
export function parseItems(doc: unknown): ParsedItem[] {
  if (doc === null || doc === undefined) return [];
  let items: unknown[] | undefined;
  try {
    items = listItems(doc);
  } catch (err) {
    if (err instanceof ObjectError) return [{ ok: false, error: err }];
    throw err;
  }
  if (items === undefined) return [settle(() => parseWhere(doc, undefined))];
  const list = doc as JsonObject;
  const out: ParsedItem[] = [];
  items.forEach((item, i) => {
    if (isObject(item) && isList(item)) {
      // A List inside a List: flattened, its objects reported at the outer index.
      for (const inner of parseItems(item)) out.push(inner.ok ? inner : relocate(inner.error, i));
      return;
    }
    out.push(settle(() => parseWhere(withListTypeMeta(item, list), i)));
  });
  return out;
}

/** A Namespace, whatever its kind field says (for callers that know the type). */
export function parseNamespace(obj: unknown): Namespace {
  const r = new Reader({ kind: "Namespace" });
  return readNamespace(r, r.object(obj, ""));
}

/** A Pod, whatever its kind field says (for callers that know the type). */
export function parsePod(obj: unknown): Pod {
  const r = new Reader({ kind: "Pod" });
  return readPod(r, r.object(obj, ""));
}

/** A Node, whatever its kind field says (for callers that know the type). */
export function parseNode(obj: unknown): ClusterNode {
  const r = new Reader({ kind: "Node" });
  return readNode(r, r.object(obj, ""));
}

/** A NetworkPolicy, whatever its kind and apiVersion say (for callers that know the type). */
export function parseNetworkPolicy(obj: unknown): Policy {
  const r = new Reader({ kind: "NetworkPolicy" });
  return readNetworkPolicy(r, r.object(obj, ""));
}

function parseWhere(obj: unknown, item: number | undefined): ParsedObject {
  const r: Reader = new Reader({ item });
  if (!isObject(obj)) r.fail("", `must be an object, got ${describeValue(obj)}`);
  const kind = r.requiredString(obj, "kind", "");
  r.where.kind = kind;
  const apiVersion = r.optString(obj, "apiVersion", "") || undefined;
  if (!Object.hasOwn(API_VERSIONS, kind)) return other(obj, kind, apiVersion);
  const known = kind as keyof typeof API_VERSIONS;
  const id = identity(obj);
  r.where.name = id.name;
  if (known !== "Namespace" && known !== "Node") r.where.namespace = id.namespace ?? "default";
  if (apiVersion === undefined) {
    r.fail("apiVersion", `must be set (${JSON.stringify(API_VERSIONS[known])} for ${kind})`);
  }
  if (apiVersion !== API_VERSIONS[known]) return other(obj, kind, apiVersion);
  switch (known) {
    case "Namespace":
      return { kind: known, value: readNamespace(r, obj) };
    case "Pod":
      return { kind: known, value: readPod(r, obj) };
    case "NetworkPolicy":
      return { kind: known, value: readNetworkPolicy(r, obj) };
    case "Node":
      return { kind: known, value: readNode(r, obj) };
  }
}

function other(obj: JsonObject, kind: string, apiVersion: string | undefined): ParsedObject {
  return { kind: "Other", value: { apiVersion, kind, ...identity(obj) } };
}

/** metadata's namespace and name as written, when they are non-empty strings. */
function identity(obj: JsonObject): { namespace: string | undefined; name: string | undefined } {
  const meta = field(obj, "metadata");
  const str = (key: string): string | undefined => {
    const v = isObject(meta) ? field(meta, key) : undefined;
    return typeof v === "string" && v !== "" ? v : undefined;
  };
  return { namespace: str("namespace"), name: str("name") };
}

function isList(o: JsonObject): boolean {
  const kind = o["kind"];
  if (kind === "List") return true;
  return typeof kind === "string" && kind.endsWith("List") && Array.isArray(o["items"]);
}

/** A list's items, or undefined when `doc` is not a list. */
function listItems(doc: unknown): unknown[] | undefined {
  if (!isObject(doc) || !isList(doc)) return undefined;
  const items = field(doc, "items");
  if (items === undefined) return [];
  if (Array.isArray(items)) return items;
  return new Reader({ kind: "List" }).fail(
    "items",
    `must be an array, got ${describeValue(items)}`,
  );
}

/** A typed list's items may leave kind and apiVersion to the list: `PodList` holds Pods. */
function withListTypeMeta(item: unknown, list: JsonObject): unknown {
  const listKind = list["kind"];
  if (!isObject(item) || listKind === "List" || typeof listKind !== "string") return item;
  const filled: JsonObject = { ...item };
  if (field(item, "kind") === undefined) filled["kind"] = listKind.slice(0, -"List".length);
  if (field(item, "apiVersion") === undefined && typeof list["apiVersion"] === "string") {
    filled["apiVersion"] = list["apiVersion"];
  }
  return filled;
}

function settle(parse: () => ParsedObject): ParsedItem {
  try {
    return { ok: true, object: parse() };
  } catch (err) {
    if (err instanceof ObjectError) return { ok: false, error: err };
    throw err;
  }
}

function relocate(error: ObjectError, item: number): ParsedItem {
  const where = {
    kind: error.kind,
    namespace: error.namespace,
    name: error.objectName,
    item,
  };
  return { ok: false, error: new ObjectError(where, error.path, error.detail, { cause: error }) };
}
