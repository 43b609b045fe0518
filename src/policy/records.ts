// The text forms of endpoint_map and policy_map entries that operators see and write: dotted-
// quad IPv4 addresses, decimal identities, and the JSON records that `list --json` prints and
// `import` reads back. Pure, so the CLI and the import validation agree on every rule.
//
// JSON format (stable): an array with one object per line, keys in this order,
//   endpoints: [{"ip":"10.13.0.2","identity":1001}]  sorted by address numerically;
//   policies:  [{"src":1001,"dst":1002}]              sorted by src, then dst.
import type { Endpoint, Policy } from "../datapath/maps.ts";
import { isIpv6 } from "../cni/args.ts";
import { MAX_IDENTITY } from "./identity.ts";

export interface EndpointRecord {
  ip: string;
  identity: number;
}

export interface PolicyRecord {
  src: number;
  dst: number;
}

/** The identity rule as error messages state it. */
export const IDENTITY_RANGE = `an integer from 1 to ${MAX_IDENTITY}`;

/** Is `n` a valid identity: an integer from 1 to 2^32-1? */
export function isIdentity(n: unknown): n is number {
  return typeof n === "number" && Number.isInteger(n) && n >= 1 && n <= MAX_IDENTITY;
}

/** Why `text` is not a dotted-quad IPv4 address (no leading zeros), or undefined. */
export function ipv4Problem(text: string): string | undefined {
  if (text.includes(":")) {
    return isIpv6(text)
      ? "IPv6 addresses are not supported (IPv4 dotted quad only)"
      : "not an IPv4 address (dotted quad, e.g. 10.13.0.2)";
  }
  if (text.includes("/")) return "expected a single address, not a CIDR";
  const parts = text.split(".");
  if (parts.length !== 4) return `expected 4 dot-separated octets, found ${parts.length}`;
  for (const p of parts) {
    if (!/^[0-9]{1,3}$/.test(p)) return `invalid octet ${JSON.stringify(p.slice(0, 16))}`;
    // Leading zeros read as octal to some tools (inet_aton), so they are refused outright.
    if (p.length > 1 && p.startsWith("0")) return `octet "${p}" has a leading zero`;
    if (Number(p) > 255) return `octet ${p} out of range 0-255`;
  }
  return undefined;
}

/** A dotted quad as a host-order u32 (the endpoint_map key); call ipv4Problem first. */
export function ipv4ToU32(text: string): number {
  let n = 0;
  for (const p of text.split(".")) n = n * 256 + Number(p);
  return n;
}

/** A host-order u32 as a dotted quad. */
export function formatIpv4(ip: number): string {
  return `${ip >>> 24}.${(ip >>> 16) & 0xff}.${(ip >>> 8) & 0xff}.${ip & 0xff}`;
}

/** Endpoints as records, sorted by address numerically. */
export function endpointRecords(entries: readonly Endpoint[]): EndpointRecord[] {
  return [...entries].sort((a, b) => a.ip - b.ip).map((e) => ({
    ip: formatIpv4(e.ip),
    identity: e.identity,
  }));
}

/** Policies as records, sorted by src, then dst. */
export function policyRecords(entries: readonly Policy[]): PolicyRecord[] {
  return [...entries].sort((a, b) => a.src - b.src || a.dst - b.dst).map((p) => ({
    src: p.src,
    dst: p.dst,
  }));
}

/** The JSON array form: one compact object per line, so diffs and grep work on it. */
export function formatRecordsJson(records: readonly (EndpointRecord | PolicyRecord)[]): string {
  if (records.length === 0) return "[]\n";
  return `[\n${records.map((r) => `  ${JSON.stringify(r)}`).join(",\n")}\n]\n`;
}
