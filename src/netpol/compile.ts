// The model compiled into kubernetes-mode datapath entries: every pod address -> its identity
// (ipcache_map), which identities are isolated in which direction (isolation_map), the CIDRs of
// ipBlocks with their identities (cidr_map), and the rules (rule_map keys, with the policy
// rules each comes from, for `policy explain`).
//
// Rules are keyed by identity, and a pod's identity is a function of its labels and namespace
// (identity_alloc.ts), which is all that decides whether a policy selects it; so compiling is done per
// identity, not per pod. Two things are per pod and so merged per identity: named ports (the
// numbers the pods of an identity give a name, together) and addresses. Peers:
//  - no peers: IDENTITY_ANY;
//  - selectors: the identities of the pods they select;
//  - an ipBlock: the CIDR identities of every registered prefix the block covers and none of
//    its excepts covers; every cidr and except of every block is registered, so the longest
//    match of an address (a pod's too) is exactly the set of blocks holding it.
// Pure.
import {
  DIR_EGRESS,
  DIR_INGRESS,
  IDENTITY_ANY,
  ISOLATE_EGRESS,
  ISOLATE_INGRESS,
  type RuleKey,
} from "../spec/bpf_layout.ts";
import { IPPROTO, ruleKeys } from "../spec/rule_key.ts";
import { type Cidr, cidrContains, formatCidr } from "../spec/ipv4.ts";
import { IdentityAllocator, labelSetKey } from "./identity_alloc.ts";
import type { Labels, Model, NamedPort, Peer, Pod, Policy, PortSpec, Protocol } from "./model.ts";
import { namespaceOf } from "./model_build.ts";
import { matches } from "./selector.ts";
import { objectKey } from "./model.ts";

/** Where a rule key comes from: a policy's rule (its index in that direction). */
export interface RuleSource {
  policy: string;
  direction: "ingress" | "egress";
  rule: number;
}

export interface CompiledRule {
  key: RuleKey;
  sources: RuleSource[];
}

export interface Compiled {
  /** Pod key -> identity (pods that are subjects: not hostNetwork). */
  identities: Map<string, number>;
  /** IPv4 (host order) -> identity and ipcache flags, for every pod with an address. */
  ipcache: Map<number, { identity: number; local: boolean }>;
  isolation: Map<number, number>;
  /** "addr/prefix" -> the prefix and its identity. */
  cidrs: Map<string, { cidr: Cidr; identity: number }>;
  /** ruleKeyId(key) -> the key and where it comes from. With a CompileCache, the cache's own
   * map, updated in place by the next compile. */
  rules: Map<string, CompiledRule>;
  /** Policy key -> its own rules (with a CompileCache, the same map object from one compile
   * to the next while the policy's entries do not change). */
  policyRules: Map<string, ReadonlyMap<string, CompiledRule>>;
}

export interface CompileOptions {
  pods: IdentityAllocator;
  cidrs: IdentityAllocator;
  /** Is this pod on this node (its ipcache entry is local)? */
  isLocal: (pod: Pod) => boolean;
  /** Keeps each policy's entries from one compile to the next: a policy object that did not
   * change, compiled against the same identities (labels, namespaces, named ports, CIDRs),
   * gives the same entries, so only what changed is compiled again (the agent). */
  cache?: CompileCache;
}

interface PolicyEntries {
  policy: Policy;
  context: string;
  isolation: [number, number][];
  rules: Map<string, CompiledRule>;
}

/** Per-policy compiled entries (see CompileOptions.cache), and their union, kept up to date
 * one policy at a time. */
export class CompileCache {
  readonly byPolicy = new Map<string, PolicyEntries>();
  /** The union of every policy's rules (what compile() returns as `rules`). */
  readonly merged = new Map<string, CompiledRule>();
  /** The policy each merged rule comes from, or the policies when several (most rules have
   * one: a string each, not a Set, at tens of thousands of rules). */
  readonly #owners = new Map<string, string | string[]>();
  /** How many policies the last compile took from the cache, and compiled. */
  reused = 0;
  compiled = 0;

  #mergeOf(id: string, owners: readonly string[]): CompiledRule | undefined {
    let out: CompiledRule | undefined;
    for (const o of [...owners].sort()) {
      const r = this.byPolicy.get(o)?.rules.get(id);
      if (r === undefined) continue;
      // Entries are shared with byPolicy: merged into a new object, never changed.
      out = out === undefined ? r : { key: r.key, sources: [...out.sources, ...r.sources] };
    }
    return out;
  }

  /** Policy `key`'s rules were `before` and are now those of byPolicy (or none). */
  replace(key: string, before: Map<string, CompiledRule> | undefined): void {
    const now = this.byPolicy.get(key)?.rules;
    for (const id of before?.keys() ?? []) {
      if (now?.has(id)) continue;
      const had = this.#owners.get(id);
      const left = had === undefined ? [] : (typeof had === "string" ? [had] : had)
        .filter((o) => o !== key);
      const merged = left.length > 0 ? this.#mergeOf(id, left) : undefined;
      if (merged === undefined) {
        this.merged.delete(id);
        this.#owners.delete(id);
      } else {
        this.merged.set(id, merged);
        this.#owners.set(id, left.length === 1 ? left[0]! : left);
      }
    }
    for (const [id, rule] of now ?? []) {
      const had = this.#owners.get(id);
      if (had === undefined || had === key) {
        this.#owners.set(id, key);
        this.merged.set(id, rule);
      } else {
        const list = typeof had === "string" ? [had] : had;
        const owners = list.includes(key) ? list : [...list, key];
        this.#owners.set(id, owners);
        this.merged.set(id, this.#mergeOf(id, owners)!);
      }
    }
  }
}

/** Everything a policy's entries depend on besides the policy itself. */
function contextOf(c: Ctx): string {
  const parts: string[] = [];
  for (const g of c.groups.values()) {
    parts.push(
      `${g.identity}|${g.local}|${g.namespace}|${JSON.stringify(g.labels)}|${
        JSON.stringify(g.pods.map((p) => p.namedPorts))
      }`,
    );
  }
  for (const ns of c.model.namespaces.values()) parts.push(`ns|${JSON.stringify(ns.labels)}`);
  for (const [text, e] of c.cidrs) parts.push(`cidr|${text}|${e.identity}`);
  return parts.join("\n");
}

/** A stable text form of a rule key (map keys, diffs). */
export function ruleKeyId(k: RuleKey): string {
  return `${k.prefixlen}/${k.subject}/${k.peer}/${k.dir}/${k.proto}/${k.port}`;
}

const PROTO_NUMBER: Record<Protocol, number> = {
  TCP: IPPROTO.tcp,
  UDP: IPPROTO.udp,
  SCTP: IPPROTO.sctp,
};

interface Group {
  identity: number;
  namespace: string;
  labels: Labels;
  pods: Pod[];
  /** Has a pod on this node: only such a group is a subject here (each pod's rules are
   * enforced on its own node; elsewhere it is only a peer, by its addresses in ipcache). */
  local: boolean;
}

/** labelSetKey per labels object and namespace: pods keep their labels object from one
 * model snapshot to the next, so the key is computed once per pod version. */
const keyMemo = new WeakMap<Labels, Map<string, string>>();

function podKey(pod: Pod): string {
  let m = keyMemo.get(pod.labels);
  if (m === undefined) keyMemo.set(pod.labels, m = new Map());
  let k = m.get(pod.namespace);
  if (k === undefined) m.set(pod.namespace, k = labelSetKey(pod.namespace, pod.labels));
  return k;
}

/** Every (identity -> its pods) group, from the model's subject pods. */
function groupsOf(model: Model, pods: IdentityAllocator, isLocal: (pod: Pod) => boolean): {
  groups: Map<number, Group>;
  identities: Map<string, number>;
} {
  const groups = new Map<number, Group>();
  const identities = new Map<string, number>();
  const keys = new Map<string, Pod[]>();
  for (const pod of model.pods.values()) {
    if (pod.hostNetwork) continue;
    const key = podKey(pod);
    const list = keys.get(key) ?? [];
    list.push(pod);
    keys.set(key, list);
  }
  // Sorted, so collisions resolve the same way whatever order objects arrived in.
  for (const key of [...keys.keys()].sort()) {
    const list = keys.get(key)!;
    const identity = pods.assign(key);
    const first = list[0]!;
    groups.set(identity, {
      identity,
      namespace: first.namespace,
      labels: first.labels,
      pods: list,
      local: list.some(isLocal),
    });
    for (const pod of list) identities.set(objectKey(pod.namespace, pod.name), identity);
  }
  pods.retain(new Set(keys.keys()));
  return { groups, identities };
}

/** Every prefix of every ipBlock (cidrs and excepts) with its identity. */
function cidrsOf(
  model: Model,
  alloc: IdentityAllocator,
): Map<string, { cidr: Cidr; identity: number }> {
  const prefixes = new Map<string, Cidr>();
  for (const p of model.policies.values()) {
    for (const rule of [...p.ingress, ...p.egress]) {
      for (const peer of rule.peers) {
        const b = peer.ipBlock;
        if (b?.family !== 4) continue;
        for (const c of [b.cidr, ...b.except]) prefixes.set(formatCidr(c), c);
      }
    }
  }
  const out = new Map<string, { cidr: Cidr; identity: number }>();
  for (const text of [...prefixes.keys()].sort()) {
    out.set(text, { cidr: prefixes.get(text)!, identity: alloc.assign(text) });
  }
  alloc.retain(new Set(prefixes.keys()));
  return out;
}

/** Does `outer` hold all of `inner`? */
function covers(outer: Cidr, inner: Cidr): boolean {
  return outer.prefix <= inner.prefix && cidrContains(outer, inner.network);
}

interface Ctx {
  model: Model;
  groups: Map<number, Group>;
  cidrs: Map<string, { cidr: Cidr; identity: number }>;
}

/** The identities a peer names (see the module header). */
function peerIdentities(c: Ctx, policy: Policy, peer: Peer): number[] {
  const b = peer.ipBlock;
  if (b !== undefined) {
    if (b.family !== 4) return [];
    return [...c.cidrs.values()]
      .filter(({ cidr }) => covers(b.cidr, cidr) && !b.except.some((e) => covers(e, cidr)))
      .map((e) => e.identity);
  }
  if (peer.podSelector === undefined && peer.namespaceSelector === undefined) return [];
  const out: number[] = [];
  for (const g of c.groups.values()) {
    if (peer.podSelector !== undefined && !matches(peer.podSelector, g.labels)) continue;
    if (peer.namespaceSelector === undefined) {
      if (g.namespace !== policy.namespace) continue;
    } else if (!matches(peer.namespaceSelector, namespaceOf(c.model, g.namespace).labels)) {
      continue;
    }
    out.push(g.identity);
  }
  return out;
}

/** The numbers `group`'s pods give port `name` over `protocol`. */
function namedPort(group: Group, name: string, protocol: Protocol): number[] {
  const out = new Set<number>();
  for (const pod of group.pods) {
    for (const p of pod.namedPorts as NamedPort[]) {
      if (p.name === name && p.protocol === protocol) out.add(p.port);
    }
  }
  return [...out];
}

/** The L4 part of rule keys: any traffic, a protocol, or a protocol and a port range. */
interface L4 {
  proto?: number;
  ports?: { from: number; to: number };
}

function numericL4(spec: PortSpec): L4 | undefined {
  const proto = PROTO_NUMBER[spec.protocol];
  if (spec.port === undefined) return { proto };
  if (typeof spec.port !== "number") return undefined;
  return { proto, ports: { from: spec.port, to: spec.endPort ?? spec.port } };
}

export function compile(model: Model, opts: CompileOptions): Compiled {
  const { groups, identities } = groupsOf(model, opts.pods, opts.isLocal);
  const cidrs = cidrsOf(model, opts.cidrs);
  const c: Ctx = { model, groups, cidrs };

  const ipcache = new Map<number, { identity: number; local: boolean }>();
  // An address two pods report is the one with the smaller key (as the engine reads it):
  // written last.
  const byKeyDesc = [...model.pods.values()].sort((a, b) =>
    objectKey(a.namespace, a.name) < objectKey(b.namespace, b.name) ? 1 : -1
  );
  for (const pod of byKeyDesc) {
    if (pod.hostNetwork) continue;
    const identity = identities.get(objectKey(pod.namespace, pod.name))!;
    for (const ip of pod.ips) ipcache.set(ip, { identity, local: opts.isLocal(pod) });
  }

  const isolation = new Map<number, number>();
  const cache = opts.cache;
  const context = cache === undefined ? "" : contextOf(c);
  const rules = cache?.merged ?? new Map<string, CompiledRule>();
  const seen = new Set<string>();
  const policyRules = new Map<string, ReadonlyMap<string, CompiledRule>>();
  if (cache) cache.reused = cache.compiled = 0;
  for (const [policyKey, policy] of [...model.policies].sort(([a], [b]) => (a < b ? -1 : 1))) {
    seen.add(policyKey);
    let entries = cache?.byPolicy.get(policyKey);
    if (
      cache === undefined || entries === undefined || entries.policy !== policy ||
      entries.context !== context
    ) {
      const before = entries?.rules;
      entries = compilePolicy(c, policyKey, policy, context);
      if (cache) {
        cache.byPolicy.set(policyKey, entries);
        cache.replace(policyKey, before);
        cache.compiled++;
      } else {
        for (const [id, rule] of entries.rules) {
          const have = rules.get(id);
          rules.set(
            id,
            have === undefined
              ? rule
              : { key: rule.key, sources: [...have.sources, ...rule.sources] },
          );
        }
      }
    } else cache.reused++;
    policyRules.set(policyKey, entries.rules);
    for (const [id, bits] of entries.isolation) isolation.set(id, (isolation.get(id) ?? 0) | bits);
  }
  if (cache) {
    for (const [k, e] of [...cache.byPolicy]) {
      if (seen.has(k)) continue;
      cache.byPolicy.delete(k);
      cache.replace(k, e.rules);
    }
  }
  return { identities, ipcache, isolation, cidrs, rules, policyRules };
}

/** One policy's isolation and rule entries. */
function compilePolicy(c: Ctx, policyKey: string, policy: Policy, context: string): PolicyEntries {
  const groups = c.groups;
  const isolation = new Map<number, number>();
  const rules = new Map<string, CompiledRule>();
  const emit = (key: RuleKey, source: RuleSource) => {
    const id = ruleKeyId(key);
    const have = rules.get(id);
    if (have) {
      if (
        !have.sources.some((s) =>
          s.policy === source.policy && s.direction === source.direction && s.rule === source.rule
        )
      ) {
        have.sources.push(source);
      }
    } else {
      rules.set(id, { key, sources: [source] });
    }
  };
  const done = () => ({ policy, context, isolation: [...isolation], rules });
  const subjects = [...groups.values()].filter((g) =>
    g.local && g.namespace === policy.namespace && matches(policy.podSelector, g.labels)
  );
  if (subjects.length === 0) return done();
  for (const direction of ["ingress", "egress"] as const) {
    const isolates = direction === "ingress" ? policy.ingressIsolation : policy.egressIsolation;
    if (!isolates) continue;
    const bit = direction === "ingress" ? ISOLATE_INGRESS : ISOLATE_EGRESS;
    const dir = direction === "ingress" ? DIR_INGRESS : DIR_EGRESS;
    for (const s of subjects) isolation.set(s.identity, (isolation.get(s.identity) ?? 0) | bit);
    const list = direction === "ingress" ? policy.ingress : policy.egress;
    list.forEach((rule, index) => {
      const source = { policy: policyKey, direction, rule: index };
      const peers = rule.peers.length === 0
        ? [IDENTITY_ANY]
        : [...new Set(rule.peers.flatMap((p) => peerIdentities(c, policy, p)))];
      for (const subject of subjects) {
        const add = (peer: number, l4: L4) => {
          for (const key of ruleKeys({ subject: subject.identity, dir, peer, ...l4 })) {
            emit(key, source);
          }
        };
        if (rule.ports.length === 0) {
          for (const peer of peers) add(peer, {});
          continue;
        }
        for (const spec of rule.ports) {
          const numeric = numericL4(spec);
          if (numeric) {
            for (const peer of peers) add(peer, numeric);
            continue;
          }
          // A named port is the destination's: for ingress the subject's pods, for egress
          // each peer identity's pods (a peer without pods, an ipBlock, has none).
          const name = spec.port as string;
          const proto = PROTO_NUMBER[spec.protocol];
          if (direction === "ingress") {
            for (const port of namedPort(subject, name, spec.protocol)) {
              for (const peer of peers) add(peer, { proto, ports: { from: port, to: port } });
            }
          } else {
            const targets = peers[0] === IDENTITY_ANY ? [...groups.keys()] : peers;
            for (const peer of targets) {
              const g = groups.get(peer);
              if (!g) continue;
              for (const port of namedPort(g, name, spec.protocol)) {
                add(peer, { proto, ports: { from: port, to: port } });
              }
            }
          }
        }
      }
    });
  }
  return done();
}
