// One typed reader for JSON fields: the network config, prevResult, the IPAM config and a
// delegated plugin's result are all checked with it. JSON null counts as absent, as it does
// for Go's decoder (which the reference plugins use). A failed check is a CniError whose
// message names the field's path; each caller picks the words around it (its "style").
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

function present(v: unknown): boolean {
  return v !== undefined && v !== null;
}

export class FieldReader {
  constructor(readonly style: FieldStyle) {}

  invalid(path: string, expected: string, value: unknown): CniError {
    return new CniError(this.style.code, this.style.invalid(path, expected, value));
  }

  missing(path: string): CniError {
    return new CniError(this.style.code, this.style.missing(path));
  }

  /** `v` itself as an object. */
  object(v: unknown, path: string): Obj {
    if (!isObject(v)) throw this.invalid(path, "an object", v);
    return v;
  }

  optObject(o: Obj, key: string, parent = ""): Obj | undefined {
    const v = o[key];
    return present(v) ? this.object(v, fieldPath(parent, key)) : undefined;
  }

  optString(o: Obj, key: string, parent = ""): string | undefined {
    const v = o[key];
    if (!present(v)) return undefined;
    if (typeof v !== "string") throw this.invalid(fieldPath(parent, key), "a string", v);
    return v;
  }

  /** A required string; `nonEmpty` also refuses "". */
  string(o: Obj, key: string, parent = "", nonEmpty = false): string {
    const path = fieldPath(parent, key);
    const v = o[key];
    if (!present(v)) throw this.missing(path);
    if (typeof v !== "string" || (nonEmpty && v === "")) {
      throw this.invalid(path, nonEmpty ? "a non-empty string" : "a string", v);
    }
    return v;
  }

  optBool(o: Obj, key: string, parent = ""): boolean | undefined {
    const v = o[key];
    if (!present(v)) return undefined;
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
    const v = o[key];
    if (!present(v)) return undefined;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
      throw this.invalid(fieldPath(parent, key), expected, v);
    }
    return v;
  }

  optArray(o: Obj, key: string, parent = ""): unknown[] | undefined {
    const v = o[key];
    if (!present(v)) return undefined;
    if (!Array.isArray(v)) throw this.invalid(fieldPath(parent, key), "an array", v);
    return v;
  }

  optStringArray(o: Obj, key: string, parent = ""): string[] | undefined {
    const path = fieldPath(parent, key);
    const v = o[key];
    if (!present(v)) return undefined;
    if (!Array.isArray(v)) throw this.invalid(path, "an array of strings", v);
    return v.map((item, i) => {
      if (typeof item !== "string") throw this.invalid(fieldPath(path, i), "a string", item);
      return item;
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
