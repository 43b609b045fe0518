// Which tracked connections must end after the agent wrote a change: those whose ends no
// longer have the identities they were judged with (an address left its pod, or its pod's
// identity changed), and, unless established connections are kept, those the compiled
// entries no longer allow. Each connection is judged as its first packet was, by the hook
// that recorded it (simulate(): the datapath's lookups). Pure: the agent reads the tracked
// connections and deletes what this returns.
import {
  CT_FLAGS,
  type CtKey,
  DIR_INGRESS,
  IDENTITY_HOST,
  IDENTITY_WORLD,
  ISOLATE_EGRESS,
  ISOLATE_INGRESS,
} from "../spec/bpf_layout.ts";
import type { Compiled } from "./compile.ts";
import { isPodIdentity } from "./identity_alloc.ts";
import { indexRules, simulate } from "./simulate.ts";

/** A tracked connection as the datapath recorded it: the tuple of its first packet, the
 * identities it was judged with (dstId 0: not judged yet, a Service address) and its flags. */
export interface TrackedConnection {
  key: CtKey;
  entry: { srcId: number; dstId: number; flags: number };
}

export type EndReason =
  /** An end's address resolves to another identity than the one recorded (or to none). */
  | "identity-changed"
  /** The compiled entries deny its first packet now. */
  | "denied";

export interface RevokeInput {
  compiled: Compiled;
  /** What ipcache_map resolves each pod address to now (after the writes). */
  addresses: ReadonlyMap<number, number>;
  /** The node's addresses (host_map). */
  hosts: ReadonlySet<number>;
  /** Also end the connections the compiled entries no longer allow (the default; false with
   * --keep-established). */
  revokeDenied: boolean;
}

export interface Ended<T> {
  connection: T;
  reason: EndReason;
}

/** The identity the datapath gives `addr` now (k8s_peer() in bpf/ebpfcni.bpf.c). */
function identityOf(input: RevokeInput, addr: number): number {
  return input.addresses.get(addr) ?? (input.hosts.has(addr) ? IDENTITY_HOST : IDENTITY_WORLD);
}

/** The connections of `tracked` that must end, each with why. */
export function connectionsToEnd<T extends TrackedConnection>(
  tracked: readonly T[],
  input: RevokeInput,
): Ended<T>[] {
  const c = input.compiled;
  const rules = indexRules(c);
  // Many connections share a flow (a client's source ports): judged once each.
  const verdicts = new Map<string, boolean>();
  const allowed = (k: CtKey): boolean => {
    const id = `${k.saddr}>${k.daddr}/${k.proto}/${k.dport}`;
    let v = verdicts.get(id);
    if (v === undefined) {
      const flow = { src: k.saddr, dst: k.daddr, proto: k.proto, port: k.dport };
      v = simulate(c, flow, input.hosts, rules).allowed;
      verdicts.set(id, v);
    }
    return v;
  };
  // An end the maps know but the compile does not (an attachment the source does not show
  // yet): not judged, the agent would be guessing.
  const unknownToCompile = (addr: number) => input.addresses.has(addr) && !c.ipcache.has(addr);
  const out: Ended<T>[] = [];
  const serviceEntries: T[] = [];
  const endedSenders = new Map<string, EndReason>();
  const sender = (k: CtKey) => `${k.saddr}/${k.sport}/${k.proto}`;
  for (const t of tracked) {
    const { key: k, entry: e } = t;
    // A broadcast or multicast delivered to a pod: its hook judged and recorded it as
    // addressed to the pod (whose address the entry does not hold). Not judged here.
    const toGroup = (e.flags & CT_FLAGS.pending) === 0 && isPodIdentity(e.dstId) &&
      !input.addresses.has(k.daddr) && !input.hosts.has(k.daddr);
    const stale = e.srcId !== identityOf(input, k.saddr) ||
      (e.dstId !== 0 && !toGroup && e.dstId !== identityOf(input, k.daddr));
    if (stale) {
      out.push({ connection: t, reason: "identity-changed" });
      endedSenders.set(sender(k), "identity-changed");
      continue;
    }
    if ((e.flags & CT_FLAGS.service) !== 0) {
      // Recorded at the sender before the node's DNAT: the backend's hook judged (and
      // recorded) the connection on the real addresses. This entry only lets replies back
      // from the Service address, so it ends with its backend's entry.
      serviceEntries.push(t);
      continue;
    }
    if (!input.revokeDenied || toGroup) continue;
    if (unknownToCompile(k.saddr) || unknownToCompile(k.daddr)) continue;
    if (!allowed(k)) {
      out.push({ connection: t, reason: "denied" });
      endedSenders.set(sender(k), "denied");
    }
  }
  for (const t of serviceEntries) {
    const reason = endedSenders.get(sender(t.key));
    if (reason !== undefined) out.push({ connection: t, reason });
  }
  return out;
}

/** What a compile gave that revocation compares (each a new map per compile). */
export interface CompiledSnapshot {
  ipcache: Compiled["ipcache"];
  isolation: Compiled["isolation"];
  cidrs: Compiled["cidrs"];
}

/** The ids of the rules `before` had and `after` has not, found through the policies whose
 * rules changed (the compile cache keeps an unchanged policy's rules as the same map). */
export function rulesRemoved(
  before: Pick<Compiled, "policyRules"> | undefined,
  after: Compiled,
): Set<string> | undefined {
  if (before === undefined) return undefined;
  const gone = new Set<string>();
  for (const [policy, rules] of before.policyRules) {
    if (after.policyRules.get(policy) === rules) continue;
    for (const id of rules.keys()) if (!after.rules.has(id)) gone.add(id);
  }
  return gone;
}

/** Can the change from `before` to `after` end a tracked connection? Rules removed, an
 * identity in use isolated in a direction it was not, a pod address gone or given another identity,
 * any CIDR change (an except carved out of an allowed block), or the node's addresses
 * changed. A new pod address or new rules alone cannot: they end nothing tracked, so a pod's
 * ADD does not pay for a pass over every tracked connection. `changedRules`: the rule ids
 * that changed (undefined: unknown, so yes). */
export function changeMayEnd(
  before: CompiledSnapshot | undefined,
  after: Compiled,
  changedRules: ReadonlySet<string> | undefined,
  hosts: { before: ReadonlySet<number>; after: ReadonlySet<number> },
): boolean {
  if (before === undefined || changedRules === undefined) return true;
  for (const id of changedRules) {
    if (after.rules.has(id)) continue;
    // A rule gone matters while its subject stays isolated in its direction (a policy
    // removed whole takes the isolation with it). Its id is ruleKeyId()'s
    // "prefixlen/subject/peer/dir/proto/port".
    const [, subject, , dir] = id.split("/").map(Number);
    const bit = dir === DIR_INGRESS ? ISOLATE_INGRESS : ISOLATE_EGRESS;
    if (((after.isolation.get(subject!) ?? 0) & bit) !== 0) return true;
  }
  // A direction newly isolated matters to an identity some address had already (a new pod's
  // new identity has no connections yet).
  let inUse: Set<number> | undefined;
  for (const [id, flags] of after.isolation) {
    if ((flags & ~(before.isolation.get(id) ?? 0)) === 0) continue;
    inUse ??= new Set([...before.ipcache.values()].map((e) => e.identity));
    if (inUse.has(id)) return true;
  }
  for (const [ip, e] of before.ipcache) {
    if (after.ipcache.get(ip)?.identity !== e.identity) return true;
  }
  if (before.cidrs.size !== after.cidrs.size) return true;
  for (const [text, e] of after.cidrs) {
    if (before.cidrs.get(text)?.identity !== e.identity) return true;
  }
  if (hosts.before.size !== hosts.after.size) return true;
  for (const ip of hosts.before) if (!hosts.after.has(ip)) return true;
  return false;
}
