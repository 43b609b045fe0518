// One typed reader for JSON fields: the network config, prevResult, the IPAM config and a
// delegated plugin's result are all checked with it (FieldReader), and so are Kubernetes
// objects (netpol/_reader.ts, over JsonReader). JSON null counts as absent, as it does for Go's
// decoder (which the reference plugins use) and for Kubernetes' optional (pointer) fields. A
// failed check is an error whose message names the field's path; each caller picks the words
// around it (its "style") and the error type (CniError here, netpol's ObjectError). Paths are
// written `a.b` and `a[0]`; a map key is `a.key`, or `a[key]` in the Kubernetes style (as
// apimachinery's field.Path.Key writes it): netpol's messages follow the API server's.
import { CniError, ErrCode } from "./cni.ts";
import { describeValue, errorMessage } from "./text.ts";

export type Obj = Record<string, unknown>;

export function isObject(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** How a reader words its errors, and with which CNI code. */
export interface FieldStyle {
  code: number;
  /** `path` holds a value that is not `expected` ("a string", "an integer from 0 to 9"). */
  invalid(path: string, expected: string, value: unknown): string;
  /** `path` is required and absent. */
  missing(path: string): string;
}

/** The style of the network config and prevResult messages:
 * `Invalid network config: "mtu" must be an integer from 68 to 65535, got "9"`. */
export function contextStyle(context: string, code: number = ErrCode.InvalidConfig): FieldStyle {
  return {
    code,
    invalid: (path, expected, value) =>
      `${context}: "${path}" must be ${expected}, got ${describeValue(value)}`,
    missing: (path) => `${context}: "${path}" is required`,
  };
}

/** The path of `key` inside `parent` ("" is the top level). */
export function fieldPath(parent: string, key: string | number): string {
  if (typeof key === "number") return `${parent}[${key}]`;
  return parent === "" ? key : `${parent}.${key}`;
}

/** How a path names a map's key: as a field (`a.key`), or Kubernetes' `a[key]`. */
export type PathStyle = "field" | "kubernetes";

/** The path of map key `key` inside `parent`, in `style`. */
export function mapKeyPath(parent: string, key: string, style: PathStyle = "field"): string {
  return style === "kubernetes" ? `${parent}[${key}]` : fieldPath(parent, key);
}

/** o[key] as an own property, with null read as absent. */
export function field(o: Obj, key: string): unknown {
  if (!Object.hasOwn(o, key)) return undefined;
  const v = o[key];
  return v === null ? undefined : v;
}

/** The errors a reader throws: `path` holds a value that is not `expected` ("a string", "an
 * integer from 0 to 9"), or is required and absent. */
export interface ReaderErrors<E extends Error> {
  invalid(path: string, expected: string, value: unknown): E;
  missing(path: string): E;
}

/** Typed reads of fields, each failure an `E` naming the field's path. */
export class JsonReader<E extends Error> {
  readonly #errors: ReaderErrors<E>;

  constructor(errors: ReaderErrors<E>, readonly pathStyle: PathStyle = "field") {
    this.#errors = errors;
  }

  invalid(path: string, expected: string, value: unknown): E {
    return this.#errors.invalid(path, expected, value);
  }

  missing(path: string): E {
    return this.#errors.missing(path);
  }

  /** The path of map key `key` inside `parent`, in this reader's style. */
  keyPath(parent: string, key: string): string {
    return mapKeyPath(parent, key, this.pathStyle);
  }

  /** `v` itself as an object. */
  object(v: unknown, path: string): Obj {
    if (!isObject(v)) throw this.invalid(path, "an object", v);
    return v;
  }

  optObject(o: Obj, key: string, parent = ""): Obj | undefined {
    const v = field(o, key);
    return v !== undefined ? this.object(v, fieldPath(parent, key)) : undefined;
  }

  optString(o: Obj, key: string, parent = ""): string | undefined {
    const v = field(o, key);
    if (v === undefined) return undefined;
    if (typeof v !== "string") throw this.invalid(fieldPath(parent, key), "a string", v);
    return v;
  }

  /** A required string; `nonEmpty` also refuses "". */
  string(o: Obj, key: string, parent = "", nonEmpty = false): string {
    const path = fieldPath(parent, key);
    const v = field(o, key);
    if (v === undefined) throw this.missing(path);
    if (typeof v !== "string" || (nonEmpty && v === "")) {
      throw this.invalid(path, nonEmpty ? "a non-empty string" : "a string", v);
    }
    return v;
  }

  optBool(o: Obj, key: string, parent = ""): boolean | undefined {
    const v = field(o, key);
    if (v === undefined) return undefined;
    if (typeof v !== "boolean") throw this.invalid(fieldPath(parent, key), "a boolean", v);
    return v;
  }

  /** An integer in [min, max]; `expected` overrides the words of the rule. */
  optInt(
    o: Obj,
    key: string,
    parent: string,
    min: number,
    max: number,
    expected = `an integer from ${min} to ${max}`,
  ): number | undefined {
    const v = field(o, key);
    if (v === undefined) return undefined;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
      throw this.invalid(fieldPath(parent, key), expected, v);
    }
    return v;
  }

  optArray(o: Obj, key: string, parent = ""): unknown[] | undefined {
    const v = field(o, key);
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) throw this.invalid(fieldPath(parent, key), "an array", v);
    return v;
  }

  optStringArray(o: Obj, key: string, parent = ""): string[] | undefined {
    const path = fieldPath(parent, key);
    const v = field(o, key);
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) throw this.invalid(path, "an array of strings", v);
    return v.map((item, i) => {
      if (typeof item !== "string") throw this.invalid(fieldPath(path, i), "a string", item);
      return item;
    });
  }
}

/** The reader of the CNI's JSON: failures are CniErrors with the style's code and words. */
export class FieldReader extends JsonReader<CniError> {
  constructor(readonly style: FieldStyle) {
    super({
      invalid: (path, expected, value) =>
        new CniError(style.code, style.invalid(path, expected, value)),
      missing: (path) => new CniError(style.code, style.missing(path)),
    });
  }
}

/** A network config's bytes as its JSON object, or the spec's decode failure (code 6). Callers
 * that look at the config before the plugin runs (main.ts) decode it once and pass it on. */
export function decodeNetConf(stdin: Uint8Array): Obj {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(stdin);
  } catch (e) {
    throw new CniError(
      ErrCode.DecodeFailure,
      "Could not decode network config: not valid UTF-8",
      errorMessage(e),
      { cause: e },
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new CniError(
      ErrCode.DecodeFailure,
      "Could not decode network config: not valid JSON",
      errorMessage(e),
      { cause: e },
    );
  }
  if (!isObject(parsed)) {
    throw new CniError(
      ErrCode.DecodeFailure,
      `Could not decode network config: expected a JSON object, got ${describeValue(parsed)}`,
    );
  }
  return parsed;
}
