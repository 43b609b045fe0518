// Typed reads of plain JSON (as kubectl prints it or a YAML parser returns it) with the field
// path of every value, so each problem is reported where the API server would report it: the
// one JSON reader (spec/json.ts) in the Kubernetes path style, its failures ObjectErrors worded
// as the API server words them. JSON null reads as absent, as it does for Kubernetes' optional
// (pointer) fields.
import { field, fieldPath, isObject, JsonReader, mapKeyPath, type Obj } from "../spec/json.ts";
import { ObjectError, type ObjectWhere } from "./errors.ts";

export type JsonObject = Obj;
export { field, isObject };

/** `spec` + `ingress` = `spec.ingress`. */
export function child(path: string, key: string): string {
  return fieldPath(path, key);
}

/** `spec.ingress` + 0 = `spec.ingress[0]`. */
export function index(path: string, i: number): string {
  return fieldPath(path, i);
}

/** `metadata.labels` + `app` = `metadata.labels[app]`, as field.Path.Key writes map keys. */
export function keyed(path: string, key: string): string {
  return mapKeyPath(path, key, "kubernetes");
}

/** A value for a message: strings quoted (and cut at 100 characters), others by kind. */
export function describeValue(value: unknown): string {
  if (typeof value === "string") {
    return JSON.stringify(value.length > 100 ? `${value.slice(0, 100)}...` : value);
  }
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  return String(value);
}

/** Reads fields of one object; every failure is an ObjectError naming that object. */
export class Reader extends JsonReader<ObjectError> {
  /** Filled in as the object's identity becomes known (kind, then namespace and name). */
  readonly where: ObjectWhere;

  constructor(where: ObjectWhere) {
    const w = { ...where };
    super({
      invalid: (path, expected, value) =>
        new ObjectError({ ...w }, path, `must be ${expected}, got ${describeValue(value)}`),
      missing: (path) => new ObjectError({ ...w }, path, "must be set"),
    }, "kubernetes");
    this.where = w;
  }

  fail(path: string, detail: string, cause?: unknown): never {
    const options = cause === undefined ? undefined : { cause };
    throw new ObjectError({ ...this.where }, path, detail, options);
  }

  /** A required object. */
  override object(value: unknown, path: string): JsonObject {
    if (value === undefined || value === null) throw this.missing(path);
    return super.object(value, path);
  }

  /** A string that must be present and non-empty (Go's zero value "" counts as unset). */
  requiredString(o: JsonObject, key: string, path: string): string {
    const v = this.optString(o, key, path);
    if (v === undefined || v === "") this.fail(child(path, key), "must be set");
    return v;
  }

  optBoolean(o: JsonObject, key: string, path: string): boolean | undefined {
    return this.optBool(o, key, path);
  }

  optInteger(o: JsonObject, key: string, path: string): number | undefined {
    return this.optInt(o, key, path, -Infinity, Infinity, "an integer");
  }

  /** Strict field validation, as `kubectl apply --validate=strict` asks of the API server. */
  onlyFields(o: JsonObject, allowed: readonly string[], path: string): void {
    for (const key of Object.keys(o)) {
      if (!allowed.includes(key)) {
        this.fail(path, `unknown field ${JSON.stringify(key)} (known: ${allowed.join(", ")})`);
      }
    }
  }
}
