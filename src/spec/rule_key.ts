// L4 rules as rule_map entries: a rule {subject, direction, peer, protocol, port range} is
// the set of longest-prefix keys that covers exactly its ports (a range split on bit
// boundaries, as Cilium splits port ranges), so "1-65535" is 16 keys, not 65535. Pure.
import {
  RULE_PREFIX_ANY_PORT,
  RULE_PREFIX_ANY_PROTO,
  RULE_PREFIX_FULL,
  type RuleKey,
} from "./bpf_layout.ts";

export const IPPROTO = { icmp: 1, tcp: 6, udp: 17, sctp: 132 } as const;
export type ProtocolName = keyof typeof IPPROTO;

export const PROTOCOL_NAMES = Object.keys(IPPROTO).join(", ");

/** "tcp", "udp", "sctp", "icmp" (any case) -> protocol number; undefined otherwise. */
export function parseProtocol(text: string): number | undefined {
  const p = text.toLowerCase();
  return Object.hasOwn(IPPROTO, p) ? IPPROTO[p as ProtocolName] : undefined;
}

/** "80" or "8000-8100" (1..65535, from <= to) -> a range; a problem string otherwise. */
export function parsePortRange(text: string): PortRange | string {
  const m = text.match(/^([0-9]{1,5})(?:-([0-9]{1,5}))?$/);
  if (!m) return 'expected a port or a range like "8000-8100"';
  const from = Number(m[1]);
  const to = Number(m[2] ?? m[1]);
  if (from < 1 || to > 65535) return "ports are 1 to 65535";
  if (to < from) return `the range ends (${to}) before it starts (${from})`;
  return { from, to };
}

export function protocolName(proto: number): string {
  const name = Object.entries(IPPROTO).find(([, n]) => n === proto)?.[0];
  return name ?? String(proto);
}

export interface PortRange {
  from: number;
  to: number;
}

export interface L4Rule {
  subject: number;
  dir: number;
  peer: number;
  /** Absent: any traffic of the pair. */
  proto?: number;
  /** Absent: every port of the protocol. */
  ports?: PortRange;
}

/** The aligned blocks covering from..to (inclusive), largest first: each is a port and how
 * many of its leading bits are fixed. */
export function portPrefixes(from: number, to: number): { port: number; bits: number }[] {
  if (!(Number.isInteger(from) && Number.isInteger(to) && 0 <= from && from <= to && to <= 65535)) {
    throw new RangeError(`Invalid port range ${from}-${to}`);
  }
  const out: { port: number; bits: number }[] = [];
  let at = from;
  while (at <= to) {
    // The largest block that starts at `at` (aligned) and ends by `to`.
    let size = at === 0 ? 65536 : at & -at;
    while (at + size - 1 > to) size /= 2;
    out.push({ port: at, bits: 16 - Math.log2(size) });
    at += size;
  }
  return out;
}

export function ruleKeys(rule: L4Rule): RuleKey[] {
  const base = { subject: rule.subject, peer: rule.peer, dir: rule.dir };
  if (rule.proto === undefined) {
    return [{ ...base, prefixlen: RULE_PREFIX_ANY_PROTO, proto: 0, port: 0 }];
  }
  if (rule.ports === undefined) {
    return [{ ...base, prefixlen: RULE_PREFIX_ANY_PORT, proto: rule.proto, port: 0 }];
  }
  return portPrefixes(rule.ports.from, rule.ports.to).map((p) => ({
    ...base,
    prefixlen: RULE_PREFIX_ANY_PORT + p.bits,
    proto: rule.proto!,
    port: p.port,
  }));
}

/** What a key covers, for listing: protocol (undefined: any) and port range. */
export function keyCoverage(k: RuleKey): { proto?: number; ports?: PortRange } {
  if (k.prefixlen <= RULE_PREFIX_ANY_PROTO) return {};
  if (k.prefixlen <= RULE_PREFIX_ANY_PORT) return { proto: k.proto };
  const bits = Math.min(k.prefixlen, RULE_PREFIX_FULL) - RULE_PREFIX_ANY_PORT;
  return { proto: k.proto, ports: { from: k.port, to: k.port + 2 ** (16 - bits) - 1 } };
}
