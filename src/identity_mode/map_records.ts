// The text forms of endpoint_map and policy_map entries that operators see and write: dotted-
// quad IPv4 addresses, decimal identities, and the JSON records that `list --json` prints and
// `import` reads back. Pure, so the CLI and the import validation agree on every rule.
//
// JSON format (stable): an array with one object per line, keys in this order,
//   endpoints: [{"ip":"10.13.0.2","identity":1001}]  sorted by address numerically;
//   policies:  [{"src":1001,"dst":1002}]              sorted by src, then dst.
import type { Endpoint, Policy } from "../spec/bpf_layout.ts";
import { formatIpv4 } from "../spec/ipv4.ts";
import { protocolName } from "../spec/rule_key.ts";
import { type PolicyRule, portsText } from "./pair_rules.ts";

export interface EndpointRecord {
  ip: string;
  identity: number;
}

export interface PolicyRecord {
  src: number;
  dst: number;
  proto?: string;
  ports?: string;
}

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

/** Rules as records: identities as numbers (host and world too: a stable machine format, as
 * the original's), protocol and ports only for L4 rules. The order is the rules'. */
export function ruleRecords(rules: readonly PolicyRule[]): PolicyRecord[] {
  return rules.map((r) => ({
    src: r.src,
    dst: r.dst,
    ...(r.proto === undefined ? {} : { proto: protocolName(r.proto) }),
    ...(r.ports === undefined ? {} : { ports: portsText(r.ports) }),
  }));
}

/** The JSON array form: one compact object per line, so diffs and grep work on it. */
export function formatRecordsJson(records: readonly (EndpointRecord | PolicyRecord)[]): string {
  if (records.length === 0) return "[]\n";
  return `[\n${records.map((r) => `  ${JSON.stringify(r)}`).join(",\n")}\n]\n`;
}
