// How values appear in error messages: quoted so that control characters cannot forge log
// lines and cut so that an arbitrarily long env or config value cannot flood them.
//
// The messages' style (denoland/std's): sentence case, no trailing period, quoted values, the
// detail after a colon, and a detail in lower case since it follows a colon:
// `Invalid --count "0": must be a positive integer`. The one exception is the NetworkPolicy
// engine's ObjectError (src/netpol/errors.ts): after the object it names, its detail starts with
// the field path as the API server writes it (`spec.ingress[0].from[1].ipBlock.cidr: ...`), so
// that it reads like kubectl's own errors.

/**
 * Quotes a value for an error message: JSON string syntax (so control characters cannot forge
 * log lines) and cut to `max` characters, since env and config values can be arbitrarily long.
 */
export function quote(value: string, max = 64): string {
  if (value.length <= max) return JSON.stringify(value);
  return `${JSON.stringify(value.slice(0, max))}... (${value.length} characters)`;
}

/**
 * Describes a JSON value for a type error: numbers and booleans quoted bare ("-5"), strings
 * marked as such so `"1500"` and `1500` read differently, containers by kind only.
 */
export function describeValue(value: unknown): string {
  if (typeof value === "string") return `the string ${quote(value)}`;
  if (typeof value === "number" || typeof value === "boolean") return quote(String(value));
  if (value === null) return "null";
  if (value === undefined) return "nothing";
  return Array.isArray(value) ? "an array" : "an object";
}

/** The JSON kind of a value, as the IPAM config messages name it ("array", "number"). */
export function jsonKind(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v;
}

/** The message of a thrown value: an Error's own message, anything else (a string, a rejected
 * promise's reason) as text, so a non-Error never turns into "undefined". */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
