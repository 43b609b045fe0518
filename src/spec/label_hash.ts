// The label hash both policy modes give pods: identity mode's label source
// (identity_mode/identity_source.ts) and kubernetes mode's allocator (netpol/identity_alloc.ts).
//
// The label hash is what `sort | sha1sum` computed in the shell agent: one line "key=value" per
// label, plus "k8s:namespace=<ns>" when the namespace is known (the argument, else the label
// io.kubernetes.pod.namespace), sorted bytewise (LC_ALL=C), each line ended by "\n"; the first
// 4 bytes of the SHA-1 digest, big-endian, are the identity. A hash of 0 maps to RESERVED_IDENTITY.
import { sha1 } from "../hash.ts";
import { CniError, ErrCode } from "./cni.ts";
import { quote } from "./text.ts";
import { RESERVED_IDENTITY } from "./identity_rule.ts";

/** The label the kubelet sets to the pod's namespace. */
export const NAMESPACE_LABEL = "io.kubernetes.pod.namespace";

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
