// What the kubernetes-mode datapath would do with a flow, given compiled entries: the lookups
// of bpf/lib/policy.h (isolation, then rules with the longest-prefix semantics of rule_map, for
// the peer's identity, its CIDR identity and any peer), at the hook that judges the flow. Pure;
// tests hold it against evaluate() to check the compiler, and `policy explain` prints it.
import {
  DIR_EGRESS,
  DIR_INGRESS,
  IDENTITY_ANY,
  IDENTITY_HOST,
  IDENTITY_WORLD,
  ISOLATE_EGRESS,
  ISOLATE_INGRESS,
  RULE_PREFIX_ANY_PORT,
  RULE_PREFIX_ANY_PROTO,
  type RuleKey,
} from "../spec/bpf_layout.ts";
import { cidrContains } from "../spec/ipv4.ts";
import type { Compiled, CompiledRule } from "./compile.ts";

export interface SimFlow {
  /** Source address; the node's own addresses are in `hosts`. */
  src: number;
  dst: number;
  proto: number;
  port: number;
}

export interface SimDirection {
  applies: boolean;
  isolated: boolean;
  allowed: boolean;
  /** The rule entries that matched (for explain). */
  matched: CompiledRule[];
}

export interface SimVerdict {
  allowed: boolean;
  /** Which hook judges it: the destination's (a pod) or the source's (anything else). */
  hook: "to-pod" | "from-pod" | "node";
  egress: SimDirection;
  ingress: SimDirection;
}

function keyMatches(k: RuleKey, subject: number, dir: number, peer: number, f: SimFlow): boolean {
  if (k.subject !== subject || k.dir !== dir || k.peer !== peer) return false;
  if (k.prefixlen <= RULE_PREFIX_ANY_PROTO) return true;
  if (k.proto !== f.proto) return false;
  if (k.prefixlen <= RULE_PREFIX_ANY_PORT) return true;
  const bits = k.prefixlen - RULE_PREFIX_ANY_PORT;
  const mask = bits === 0 ? 0 : (0xffff << (16 - bits)) & 0xffff;
  return (f.port & mask) === (k.port & mask);
}

/** The identity of the longest compiled CIDR holding `ip`, or 0. */
export function cidrIdentityOf(c: Compiled, ip: number): number {
  let best: { prefix: number; identity: number } | undefined;
  for (const { cidr, identity } of c.cidrs.values()) {
    if (cidrContains(cidr, ip) && (best === undefined || cidr.prefix > best.prefix)) {
      best = { prefix: cidr.prefix, identity };
    }
  }
  return best?.identity ?? 0;
}

/** The rules a lookup for (subject, direction, peer) can match. */
export type RuleLookup = (subject: number, dir: number, peer: number) => readonly CompiledRule[];

/** The rules grouped by subject, direction and peer, for many verdicts against one compile
 * (revocation judges every tracked connection). Valid until the next compile. */
export function indexRules(c: Compiled): RuleLookup {
  const by = new Map<string, CompiledRule[]>();
  for (const r of c.rules.values()) {
    const id = `${r.key.subject}/${r.key.dir}/${r.key.peer}`;
    const list = by.get(id);
    if (list === undefined) by.set(id, [r]);
    else list.push(r);
  }
  return (subject, dir, peer) => by.get(`${subject}/${dir}/${peer}`) ?? [];
}

function direction(
  c: Compiled,
  rules: RuleLookup | undefined,
  subject: number,
  dir: number,
  peer: number,
  peerCidr: number,
  f: SimFlow,
): SimDirection {
  const bit = dir === DIR_INGRESS ? ISOLATE_INGRESS : ISOLATE_EGRESS;
  const isolated = ((c.isolation.get(subject) ?? 0) & bit) !== 0;
  const peers = peerCidr !== 0 ? [peer, peerCidr, IDENTITY_ANY] : [peer, IDENTITY_ANY];
  let matched: CompiledRule[];
  if (rules === undefined) {
    // One flow (explain): every rule, in the compile's order.
    matched = [...c.rules.values()].filter((r) =>
      peers.some((p) => keyMatches(r.key, subject, dir, p, f))
    );
  } else if (!isolated) {
    matched = []; // allowed whatever matches: many flows only need the verdict
  } else {
    matched = [];
    for (const p of peers) {
      for (const r of rules(subject, dir, p)) {
        if (keyMatches(r.key, subject, dir, p, f) && !matched.includes(r)) matched.push(r);
      }
    }
  }
  return { applies: true, isolated, allowed: !isolated || matched.length > 0, matched };
}

const NONE: SimDirection = { applies: false, isolated: false, allowed: true, matched: [] };

/** The verdict of `f` (post-DNAT addresses). `hosts` are the node's addresses; `rules` finds
 * the candidate rules (indexRules() when judging many flows against one compile; then
 * `matched` is listed only for isolated directions). */
export function simulate(
  c: Compiled,
  f: SimFlow,
  hosts: ReadonlySet<number> = new Set(),
  rules?: RuleLookup,
): SimVerdict {
  const src = c.ipcache.get(f.src);
  const dst = c.ipcache.get(f.dst);
  // Each direction is judged on the node of the pod it belongs to: a remote pod's egress on
  // its node as it leaves, a remote pod's ingress where it is delivered.
  const egressOf = (peer: number) =>
    src?.local
      ? direction(c, rules, src.identity, DIR_EGRESS, peer, cidrIdentityOf(c, f.dst), f)
      : NONE;
  if (dst && !dst.local) {
    // To a remote pod: only the local source's egress, as it leaves this node.
    const egress = egressOf(dst.identity);
    return { allowed: egress.allowed, hook: "from-pod", egress, ingress: NONE };
  }
  if (dst) {
    // Delivered to a pod: judged at its hook, source egress and destination ingress.
    if (hosts.has(f.src)) return { allowed: true, hook: "node", egress: NONE, ingress: NONE };
    const srcId = src?.identity ?? IDENTITY_WORLD;
    const egress = egressOf(dst.identity);
    const ingress = direction(
      c,
      rules,
      dst.identity,
      DIR_INGRESS,
      srcId,
      cidrIdentityOf(c, f.src),
      f,
    );
    return { allowed: egress.allowed && ingress.allowed, hook: "to-pod", egress, ingress };
  }
  // To anything else: the sender's egress, at the sender's hook.
  if (!src?.local) return { allowed: true, hook: "from-pod", egress: NONE, ingress: NONE };
  const egress = egressOf(hosts.has(f.dst) ? IDENTITY_HOST : IDENTITY_WORLD);
  return { allowed: egress.allowed, hook: "from-pod", egress, ingress: NONE };
}
