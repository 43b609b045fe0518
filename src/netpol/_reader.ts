// Typed reads of plain JSON (as kubectl prints it or a YAML parser returns it) with the field
// path of every value, so each problem is reported where the API server would report it.
// JSON null reads as absent, as it does for Kubernetes' optional (pointer) fields.
import { ObjectError, type ObjectWhere } from "./errors.ts";

export type JsonObject = Record<string, unknown>;

/** `spec` + `ingress` = `spec.ingress`. */
export function child(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}

/** `spec.ingress` + 0 = `spec.ingress[0]`. */
export function index(path: string, i: number): string {
  return `${path}[${i}]`;
}

/** `metadata.labels` + `app` = `metadata.labels[app]`, as field.Path.Key writes map keys. */
export function keyed(path: string, key: string): string {
  return `${path}[${key}]`;
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

export function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Reads fields of one object; every failure is an ObjectError naming that object. */
export class Reader {
  /** Filled in as the object's identity becomes known (kind, then namespace and name). */
  readonly where: ObjectWhere;

  constructor(where: ObjectWhere) {
    this.where = { ...where };
  }

  fail(path: string, detail: string, cause?: unknown): never {
    const options = cause === undefined ? undefined : { cause };
    throw new ObjectError({ ...this.where }, path, detail, options);
  }

  /** A required object. */
  object(value: unknown, path: string): JsonObject {
    if (value === undefined || value === null) this.fail(path, "must be set");
    if (!isObject(value)) this.fail(path, `must be an object, got ${describeValue(value)}`);
    return value;
  }

  optObject(o: JsonObject, key: string, path: string): JsonObject | undefined {
    const v = field(o, key);
    return v === undefined ? undefined : this.object(v, child(path, key));
  }

  optArray(o: JsonObject, key: string, path: string): unknown[] | undefined {
    const v = field(o, key);
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) {
      this.fail(child(path, key), `must be an array, got ${describeValue(v)}`);
    }
    return v;
  }

  optString(o: JsonObject, key: string, path: string): string | undefined {
    const v = field(o, key);
    if (v === undefined) return undefined;
    if (typeof v !== "string") {
      this.fail(child(path, key), `must be a string, got ${describeValue(v)}`);
    }
    return v;
  }

  /** A string that must be present and non-empty (Go's zero value "" counts as unset). */
  requiredString(o: JsonObject, key: string, path: string): string {
    const v = this.optString(o, key, path);
    if (v === undefined || v === "") this.fail(child(path, key), "must be set");
    return v;
  }

  optBoolean(o: JsonObject, key: string, path: string): boolean | undefined {
    const v = field(o, key);
    if (v === undefined) return undefined;
    if (typeof v !== "boolean") {
      this.fail(child(path, key), `must be a boolean, got ${describeValue(v)}`);
    }
    return v;
  }

  optInteger(o: JsonObject, key: string, path: string): number | undefined {
    const v = field(o, key);
    if (v === undefined) return undefined;
    if (typeof v !== "number" || !Number.isInteger(v)) {
      this.fail(child(path, key), `must be an integer, got ${describeValue(v)}`);
    }
    return v;
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

/** o[key] as an own property, with null read as absent. */
export function field(o: JsonObject, key: string): unknown {
  if (!Object.hasOwn(o, key)) return undefined;
  const v = o[key];
  return v === null ? undefined : v;
}
