// Security identities for pods: which source decides a pod's identity, and how labels hash to
// one so that identities match those the original shell policy agent computed.
//
// Precedence, first present wins:
//   1. "cni-args": EBPFCNI_IDENTITY in CNI_ARGS, decimal digits only (code 4 if invalid);
//   2. "args":     args.cni.identity in the network config (code 7 if invalid);
//   3. "labels":   a hash of the pod's labels, when it has at least one;
//   4. "reserved": RESERVED_IDENTITY.
// Identities are integers from 1 to 4294967295; 0 is never an identity.
//
// The label hash is what `sort | sha1sum` computed in the shell agent: one line "key=value" per
// label, plus "k8s:namespace=<ns>" when the namespace is known (the argument, else the label
// io.kubernetes.pod.namespace), sorted bytewise (LC_ALL=C), each line ended by "\n"; the first
// 4 bytes of the SHA-1 digest, big-endian, are the identity. A hash of 0 maps to RESERVED_IDENTITY.

import { sha1 } from "../hash.ts";
import { CniError, ErrCode } from "../spec/cni.ts";
import { quote } from "../spec/text.ts";
import {
  IDENTITY_RANGE,
  isIdentity,
  parseIdentityText,
  RESERVED_IDENTITY,
} from "../spec/identity_rule.ts";
export { RESERVED_IDENTITY };

/** The label the kubelet sets to the pod's namespace. */
export const NAMESPACE_LABEL = "io.kubernetes.pod.namespace";

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

/** Bytewise comparison of UTF-8 encodings, i.e. `sort` under LC_ALL=C. */
function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/**
 * The lines the hash covers, sorted, each with its "\n". Keys containing "=" or a newline and
 * values containing a newline are code 7: they would make two label sets hash alike (and
 * Kubernetes allows neither).
 */
export function labelHashInput(labels: Record<string, string>, namespace?: string): string {
  const enc = new TextEncoder();
  const lines: string[] = [];
  for (const [k, v] of Object.entries(labels)) {
    if (k === "" || k.includes("=") || k.includes("\n")) {
      throw new CniError(
        ErrCode.InvalidConfig,
        `Invalid label key ${quote(k)}: must be non-empty without "=" or newlines`,
      );
    }
    if (v.includes("\n")) {
      throw new CniError(
        ErrCode.InvalidConfig,
        `Invalid value for label ${quote(k)}: must not contain newlines`,
      );
    }
    lines.push(`${k}=${v}`);
  }
  const ns = namespace !== undefined && namespace !== "" ? namespace : labels[NAMESPACE_LABEL];
  if (ns !== undefined && ns !== "") {
    if (ns.includes("\n")) {
      throw new CniError(
        ErrCode.InvalidConfig,
        `Invalid namespace ${quote(ns)}: must not contain newlines`,
      );
    }
    lines.push(`k8s:namespace=${ns}`);
  }
  const encoded = lines.map((line) => ({ line, bytes: enc.encode(line) }));
  encoded.sort((a, b) => compareBytes(a.bytes, b.bytes));
  return encoded.map((e) => `${e.line}\n`).join("");
}

/** The identity the labels hash to (see the module header). */
export function identityFromLabels(labels: Record<string, string>, namespace?: string): number {
  return identityFromDigest(sha1(labelHashInput(labels, namespace)));
}

/** The identity a SHA-1 digest stands for: its first 4 bytes big-endian, 0 read as reserved. */
export function identityFromDigest(digest: Uint8Array): number {
  if (digest.length < 4) {
    throw new CniError(ErrCode.Internal, `Digest too short: ${digest.length} bytes`);
  }
  const view = new DataView(digest.buffer, digest.byteOffset, digest.byteLength);
  const id = view.getUint32(0, false);
  return id === 0 ? RESERVED_IDENTITY : id;
}
