// CNI_ARGS ("K=V;K2=V2") parsing and the keys the plugin reads from it.

import { CniError, ErrCode } from "../spec/cni.ts";
import { formatIpv4, parseIpv4Prefix } from "../spec/ipv4.ts";
import { quote } from "../spec/text.ts";

/** The CNI_ARGS keys the plugin understands. Others are refused unless IgnoreUnknown is set
 * (see rejectUnknownArgs). */
export const ARG_IP = "IP";
export const ARG_IDENTITY = "EBPFCNI_IDENTITY";
export const ARG_POD_NAMESPACE = "K8S_POD_NAMESPACE";
export const ARG_POD_NAME = "K8S_POD_NAME";
export const ARG_IGNORE_UNKNOWN = "IgnoreUnknown";
const KNOWN_ARGS: ReadonlySet<string> = new Set([
  ARG_IGNORE_UNKNOWN,
  ARG_IP,
  ARG_IDENTITY,
  ARG_POD_NAMESPACE,
  ARG_POD_NAME,
]);

/**
 * As libcni's types.LoadArgs (and so the reference plugins): a key the plugin does not know
 * is an error (code 999, as theirs) unless IgnoreUnknown is "1" or "true" (any case); other
 * IgnoreUnknown values than those and "0"/"false" are code 4.
 */
export function rejectUnknownArgs(args: Map<string, string>): void {
  const flag = args.get(ARG_IGNORE_UNKNOWN);
  const v = flag?.toLowerCase();
  if (v !== undefined && !["1", "true", "0", "false", ""].includes(v)) {
    throw new CniError(
      ErrCode.InvalidEnv,
      `Invalid CNI_ARGS ${ARG_IGNORE_UNKNOWN} ${quote(flag!)}: must be 1, true, 0 or false`,
    );
  }
  if (v === "1" || v === "true") return;
  const unknown = [...args.keys()].filter((k) => !KNOWN_ARGS.has(k));
  if (unknown.length > 0) {
    throw new CniError(
      ErrCode.Internal,
      `Unknown CNI_ARGS ${unknown.map((k) => quote(k)).join(", ")}: the plugin reads only ${
        [...KNOWN_ARGS].join(", ")
      } (set ${ARG_IGNORE_UNKNOWN}=1 to ignore others)`,
    );
  }
}

/**
 * Parses CNI_ARGS into a map. An empty string means no arguments. Empty segments (a trailing
 * ";") are skipped; a segment without "=" or with an empty key is code 4. The value is what
 * follows the first "=", so values may contain "="; a repeated key keeps its last value.
 */
export function parseCniArgs(raw: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const pair of raw.split(";")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    if (eq <= 0) {
      throw new CniError(
        ErrCode.InvalidEnv,
        `Invalid CNI_ARGS pair ${quote(pair)}: expected KEY=VALUE`,
      );
    }
    out.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  return out;
}

/** A key's value, with "" (as runtimes send for unknown values) read as absent. */
function nonEmpty(args: Map<string, string>, key: string): string | undefined {
  const v = args.get(key);
  return v === undefined || v === "" ? undefined : v;
}

/**
 * The addresses requested with IP= (comma-separated), each IPv4 with an optional prefix length
 * that is dropped (host-local accepts both forms; the subnet comes from IPAM). Code 4 if invalid.
 */
export function requestedIpsFromArgs(args: Map<string, string>): string[] {
  const raw = nonEmpty(args, ARG_IP);
  if (raw === undefined) return [];
  return raw.split(",").map((item) => {
    const ip = normalizeRequestedIpv4(item);
    if (ip === undefined) {
      throw new CniError(
        ErrCode.InvalidEnv,
        `Invalid CNI_ARGS ${ARG_IP} ${quote(item)}: must be an IPv4 address`,
      );
    }
    return ip;
  });
}

/** EBPFCNI_IDENTITY unparsed; identity_mode/identity_source.ts validates it (it owns the range). */
export function identityArg(args: Map<string, string>): string | undefined {
  return nonEmpty(args, ARG_IDENTITY);
}

/** The pod's namespace as the kubelet passes it. */
export function podNamespaceArg(args: Map<string, string>): string | undefined {
  return nonEmpty(args, ARG_POD_NAMESPACE);
}

/** The pod's name as the kubelet passes it. */
export function podNameArg(args: Map<string, string>): string | undefined {
  return nonEmpty(args, ARG_POD_NAME);
}

/**
 * A requested address as "a.b.c.d" or "a.b.c.d/len" reduced to "a.b.c.d", or undefined if it
 * is neither. The plugin is IPv4-only, so IPv6 requests are invalid here.
 */
export function normalizeRequestedIpv4(s: string): string | undefined {
  const p = parseIpv4Prefix(s);
  return p === undefined ? undefined : formatIpv4(p.ip);
}
