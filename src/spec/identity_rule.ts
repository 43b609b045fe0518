// The identity rule: what a security identity is (an integer from 1 to 2^32-1; 0 is never
// one) and how its decimal text form reads. CNI_ARGS, the network config, the CLI and import
// files all check identities with these, each wrapping a problem in its own error type.

export const MIN_IDENTITY = 1;
export const MAX_IDENTITY = 4294967295;

/** The rule as error messages state it. */
export const IDENTITY_RANGE = `an integer from ${MIN_IDENTITY} to ${MAX_IDENTITY}`;

/** The identity of pods without identity information (the original's default). */
export const RESERVED_IDENTITY = 1;

/** Is `v` a valid identity: an integer from 1 to 2^32-1? */
export function isIdentity(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= MIN_IDENTITY &&
    v <= MAX_IDENTITY;
}

/** Decimal digits only (leading zeros allowed), in range; undefined otherwise. */
export function parseIdentityText(text: string): number | undefined {
  if (!/^[0-9]+$/.test(text)) return undefined;
  const n = Number(text);
  return isIdentity(n) ? n : undefined;
}
