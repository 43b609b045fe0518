// Identity-mode rules as operators see them: an identity pair allowed for all traffic
// (policy_map, the original's) or for a protocol and port range (rule_map keys of direction
// DIR_PAIR), with host and world by name. Turning the map contents into rules, rules into
// the keys to add or remove, and rules into text. Pure.
import { DIR_PAIR, RULE_PREFIX_ANY_PORT, type RuleKey } from "../spec/bpf_layout.ts";
import { keyCoverage, type PortRange, protocolName, ruleKeys } from "../spec/rule_key.ts";
import { identityText, type Policy } from "../spec/bpf_layout.ts";
export { identityText };

export interface PolicyRule {
  src: number;
  dst: number;
  /** Absent: all traffic of the pair (policy_map). */
  proto?: number;
  /** Absent with a protocol: every port of it. */
  ports?: PortRange;
}

export function portsText(p: PortRange | undefined): string {
  if (p === undefined) return "any";
  return p.from === p.to ? String(p.from) : `${p.from}-${p.to}`;
}

export function ruleText(r: PolicyRule): string {
  const what = r.proto === undefined
    ? ""
    : ` ${protocolName(r.proto)}${r.ports ? `/${portsText(r.ports)}` : ""}`;
  return `${identityText(r.src)} -> ${identityText(r.dst)}${what}`;
}

function byRule(a: PolicyRule, b: PolicyRule): number {
  return a.src - b.src || a.dst - b.dst || (a.proto ?? -1) - (b.proto ?? -1) ||
    (a.ports?.from ?? -1) - (b.ports?.from ?? -1);
}

/** The rules the maps hold: every policy_map pair, and the DIR_PAIR keys of rule_map with
 * adjacent port prefixes joined into ranges. Sorted by src, dst, protocol, port. */
export function rulesOf(pairs: readonly Policy[], keys: readonly RuleKey[]): PolicyRule[] {
  const out: PolicyRule[] = pairs.map((p) => ({ src: p.src, dst: p.dst }));
  const groups = new Map<
    string,
    { src: number; dst: number; proto: number; ranges: PortRange[] }
  >();
  for (const k of keys) {
    if (k.dir !== DIR_PAIR || k.prefixlen < RULE_PREFIX_ANY_PORT) continue;
    const c = keyCoverage(k);
    const id = `${k.subject}/${k.peer}/${k.proto}`;
    let g = groups.get(id);
    if (!g) groups.set(id, g = { src: k.subject, dst: k.peer, proto: k.proto, ranges: [] });
    g.ranges.push(c.ports ?? { from: 0, to: 65535 });
  }
  for (const g of groups.values()) {
    const ranges = [...g.ranges].sort((a, b) => a.from - b.from);
    const merged: PortRange[] = [];
    for (const r of ranges) {
      const last = merged.at(-1);
      if (last && r.from <= last.to + 1) last.to = Math.max(last.to, r.to);
      else merged.push({ ...r });
    }
    for (const r of merged) {
      const all = r.from === 0 && r.to === 65535 &&
        keys.some((k) =>
          k.subject === g.src && k.peer === g.dst && k.proto === g.proto &&
          k.prefixlen === RULE_PREFIX_ANY_PORT
        );
      out.push(all ? { src: g.src, dst: g.dst, proto: g.proto } : { ...g, ports: r });
    }
  }
  return out.map(({ src, dst, proto, ports }) => ({
    src,
    dst,
    ...(proto === undefined ? {} : { proto }),
    ...(ports === undefined ? {} : { ports }),
  })).sort(byRule);
}

/** The rule_map keys of an L4 rule (a rule without a protocol is a policy_map pair). */
export function keysOf(r: PolicyRule): RuleKey[] {
  if (r.proto === undefined) return [];
  return ruleKeys({
    subject: r.src,
    peer: r.dst,
    dir: DIR_PAIR,
    proto: r.proto,
    ...(r.ports ? { ports: r.ports } : {}),
  });
}

/** What removing `r` means for the keys there are: every key of the pair (no protocol), of
 * the protocol (no ports), or the parts of keys inside the port range, with the parts of
 * them outside it written back. */
export function denyPlan(
  r: PolicyRule,
  existing: readonly RuleKey[],
): { remove: RuleKey[]; add: RuleKey[] } {
  const mine = existing.filter((k) =>
    k.dir === DIR_PAIR && k.subject === r.src && k.peer === r.dst &&
    (r.proto === undefined || k.proto === r.proto) && k.prefixlen >= RULE_PREFIX_ANY_PORT
  );
  if (r.ports === undefined) return { remove: mine, add: [] };
  const remove: RuleKey[] = [];
  const add: RuleKey[] = [];
  const deny = r.ports;
  for (const k of mine) {
    const have = keyCoverage(k).ports ?? { from: 0, to: 65535 };
    if (have.to < deny.from || have.from > deny.to) continue;
    remove.push(k);
    const keep: PortRange[] = [];
    if (have.from < deny.from) keep.push({ from: have.from, to: deny.from - 1 });
    if (have.to > deny.to) keep.push({ from: deny.to + 1, to: have.to });
    for (const ports of keep) {
      add.push(...keysOf({ src: r.src, dst: r.dst, proto: k.proto, ports }));
    }
  }
  return { remove, add };
}
