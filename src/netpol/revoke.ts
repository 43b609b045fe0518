// Which tracked connections must end after the agent wrote a change: those whose ends no
// longer have the identities they were judged with (an address left its pod, or its pod's
// identity changed), and, unless established connections are kept, those the compiled
// entries no longer allow. Each connection is judged as its first packet was, by the hook
// that recorded it (simulate(): the datapath's lookups). Pure: the agent reads the tracked
// connections and deletes what this returns.
import { CT_FLAGS, type CtKey, IDENTITY_HOST, IDENTITY_WORLD } from "../datapath/layout.ts";
import type { Compiled } from "./compile.ts";
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
    const stale = e.srcId !== identityOf(input, k.saddr) ||
      (e.dstId !== 0 && e.dstId !== identityOf(input, k.daddr));
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
    if (!input.revokeDenied) continue;
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
