// The engine's errors: a Kubernetes object that is not valid (parse.ts), and a flow that names
// a pod the model does not hold (evaluate.ts).

/** Which object a problem is in, as far as it is known when the problem is found. */
export interface ObjectWhere {
  /** The object's kind ("Pod"); undefined when the object has no usable kind. */
  kind?: string | undefined;
  /** The namespace (defaulted to "default"); undefined for Namespaces and when unknown. */
  namespace?: string | undefined;
  /** metadata.name, when it is a string (even an invalid one). */
  name?: string | undefined;
  /** The object's index in a List's items, when it came from one. */
  item?: number | undefined;
}

/**
 * An object the API server would reject, or that the engine cannot read. The message reads
 * `Invalid NetworkPolicy "ns/name": spec.ingress[0].ports[0].endPort: must be greater than or
 * equal to port 80, got 79`. The field path, as the API server writes it, is the documented
 * exception to the message style (src/spec/text.ts): it stays unquoted and in its own case.
 */
export class ObjectError extends Error {
  override name = "ObjectError";
  readonly kind: string | undefined;
  readonly namespace: string | undefined;
  /** metadata.name (`name` is Error's own). */
  readonly objectName: string | undefined;
  readonly item: number | undefined;
  /** The field, as the API server writes it: `spec.ingress[0].from[1].ipBlock.except[0]`;
   * empty for the object as a whole. */
  readonly path: string;
  /** What is wrong with that field. */
  readonly detail: string;

  constructor(where: ObjectWhere, path: string, detail: string, options?: ErrorOptions) {
    super(`Invalid ${describeObject(where)}: ${path === "" ? "" : `${path}: `}${detail}`, options);
    this.kind = where.kind;
    this.namespace = where.namespace;
    this.objectName = where.name;
    this.item = where.item;
    this.path = path;
    this.detail = detail;
  }
}

/** `NetworkPolicy "ns/name" (items[2])`, `Namespace "x"`, `Pod in namespace "ns"`, `object`. */
function describeObject(where: ObjectWhere): string {
  let text = where.kind ?? "object";
  if (where.name !== undefined) {
    const ns = where.namespace === undefined ? "" : `${where.namespace}/`;
    text += ` ${JSON.stringify(ns + where.name)}`;
  } else if (where.namespace !== undefined) {
    text += ` in namespace ${JSON.stringify(where.namespace)}`;
  }
  if (where.item !== undefined) text += ` (items[${where.item}])`;
  return text;
}

/** A flow that the model cannot judge: it names a pod the model does not hold. */
export class FlowError extends Error {
  override name = "FlowError";
}
