// Security identities for pods in identity mode: which source decides a pod's identity (the
// label hash, shared with kubernetes mode, is spec/label_hash.ts).
//
// Precedence, first present wins:
//   1. "cni-args": EBPFCNI_IDENTITY in CNI_ARGS, decimal digits only (code 4 if invalid);
//   2. "args":     args.cni.identity in the network config (code 7 if invalid);
//   3. "labels":   a hash of the pod's labels, when it has at least one;
//   4. "reserved": RESERVED_IDENTITY.
// Identities are integers from 1 to 4294967295; 0 is never an identity.

import { identityFromLabels } from "../spec/label_hash.ts";
import { CniError, ErrCode } from "../spec/cni.ts";
import { quote } from "../spec/text.ts";
import {
  IDENTITY_RANGE,
  isIdentity,
  parseIdentityText,
  RESERVED_IDENTITY,
} from "../spec/identity_rule.ts";
export { RESERVED_IDENTITY };

export type IdentitySource = "cni-args" | "args" | "labels" | "reserved";

/** Undefined is allowed explicitly so callers can pass optional lookups straight through. */
export interface IdentityInputs {
  /** EBPFCNI_IDENTITY from CNI_ARGS, unparsed. */
  cniArgsIdentity?: string | undefined;
  /** args.cni.identity from the network config. */
  argsIdentity?: number | undefined;
  labels?: Record<string, string> | undefined;
  /** K8S_POD_NAMESPACE from CNI_ARGS. */
  namespace?: string | undefined;
}

export interface ResolvedIdentity {
  identity: number;
  source: IdentitySource;
}

/** Parses EBPFCNI_IDENTITY: decimal digits only, in range; code 4 otherwise. */
export function parseIdentityArg(value: string): number {
  const n = parseIdentityText(value);
  if (n === undefined) {
    throw new CniError(
      ErrCode.InvalidEnv,
      `Invalid EBPFCNI_IDENTITY ${quote(value)}: must be ${IDENTITY_RANGE}`,
    );
  }
  return n;
}

/** Checks a config identity (args.cni.identity); code 7 if out of range or not an integer. */
export function checkConfigIdentity(value: number): number {
  if (!isIdentity(value)) {
    throw new CniError(
      ErrCode.InvalidConfig,
      `Invalid network config: "args.cni.identity" must be ${IDENTITY_RANGE}, got ${
        quote(String(value))
      }`,
    );
  }
  return value;
}

/** Picks the pod's identity by the precedence in the module header. */
export function resolveIdentity(inputs: IdentityInputs): ResolvedIdentity {
  if (inputs.cniArgsIdentity !== undefined) {
    return { identity: parseIdentityArg(inputs.cniArgsIdentity), source: "cni-args" };
  }
  if (inputs.argsIdentity !== undefined) {
    return { identity: checkConfigIdentity(inputs.argsIdentity), source: "args" };
  }
  if (inputs.labels !== undefined && Object.keys(inputs.labels).length > 0) {
    return { identity: identityFromLabels(inputs.labels, inputs.namespace), source: "labels" };
  }
  return { identity: RESERVED_IDENTITY, source: "reserved" };
}
