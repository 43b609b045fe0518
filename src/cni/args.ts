// CNI_ARGS ("K=V;K2=V2") parsing, the keys the plugin reads from it, and the IP literal checks
// that requested addresses (here and in config.ts) and results (result.ts) need.

import { CniError, ErrCode } from "../spec/cni.ts";
import { ipv4Problem, isIpv6 } from "../spec/ipv4.ts";

export { isIpv6 };
import { quote } from "../spec/text.ts";

/** The CNI_ARGS keys the plugin understands; others are ignored, as with IgnoreUnknown=1. */
export const ARG_IP = "IP";
export const ARG_IDENTITY = "EBPFCNI_IDENTITY";
export const ARG_POD_NAMESPACE = "K8S_POD_NAMESPACE";
export const ARG_POD_NAME = "K8S_POD_NAME";

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

/** EBPFCNI_IDENTITY unparsed; policy/identity.ts validates it (it owns the range). */
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

// ---- IP literals -------------------------------------------------------------------------------

/** Is `s` a dotted-quad IPv4 address without leading zeros? */
export function isIpv4(s: string): boolean {
  return ipv4Problem(s) === undefined;
}

/** Is `s` an IPv4 or IPv6 address? */
export function isIp(s: string): boolean {
  return isIpv4(s) || isIpv6(s);
}

export interface Cidr {
  address: string;
  prefix: number;
  family: 4 | 6;
}

/** Parses "address/prefix" for either family, or returns undefined. */
export function parseCidr(s: string): Cidr | undefined {
  const slash = s.indexOf("/");
  if (slash < 0) return undefined;
  const address = s.slice(0, slash);
  const p = s.slice(slash + 1);
  if (!/^(?:0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
  const prefix = Number(p);
  if (isIpv4(address)) return prefix <= 32 ? { address, prefix, family: 4 } : undefined;
  if (isIpv6(address)) return prefix <= 128 ? { address, prefix, family: 6 } : undefined;
  return undefined;
}

/**
 * A requested address as "a.b.c.d" or "a.b.c.d/len" reduced to "a.b.c.d", or undefined if it
 * is neither. The plugin is IPv4-only, so IPv6 requests are invalid here.
 */
export function normalizeRequestedIpv4(s: string): string | undefined {
  if (isIpv4(s)) return s;
  const cidr = parseCidr(s);
  return cidr?.family === 4 ? cidr.address : undefined;
}
