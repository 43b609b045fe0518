// Shared by the unit tests: the CniError a call throws.
import { CniError } from "../spec/cni.ts";

/** The CniError `fn` throws; fails the test if it throws something else or nothing. */
export function errorOf(fn: () => unknown): CniError {
  try {
    fn();
  } catch (e) {
    if (e instanceof CniError) return e;
    throw e;
  }
  throw new Error("expected a CniError");
}

/** The code of the CniError `fn` throws. */
export function codeOf(fn: () => unknown): number {
  return errorOf(fn).code;
}
