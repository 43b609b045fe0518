// The pinned maps over raw bpf(2): one typed table (BpfTable, the Table of table.ts) bound to
// each map's codecs (tables.ts), the conntrack maps (ct_map, ct_est_map and the quotas they
// charge, read and swept together), and the per-CPU counters.
import {
  BPF_ANY,
  BPF_EXIST,
  BPF_NOEXIST,
  mapDelete,
  mapDeleteBatch,
  mapLookup,
  mapLookupBatch,
  mapNextKey,
  mapUpdate,
  mapUpdateBatch,
} from "../../ffi/bpf.ts";
import { possibleCpus } from "./cpus.ts";
import { Errno, SysError } from "../../ffi/errors.ts";
import {
  BPF_MAP_TYPE_LPM_TRIE,
  CIDR_MAP,
  CONFIG_MAP,
  CT_EST_MAP,
  CT_FLAGS,
  CT_MAP,
  CT_QUOTA_MAP,
  type CtEntry,
  type CtKey,
  type DatapathConfig,
  decodeConfig,
  decodeCtEntry,
  decodeCtKey,
  decodePolicyKey,
  decodeU32,
  encodeU32,
  HOST_MAP,
  IPCACHE_MAP,
  ISOLATION_MAP,
  type MapSpec,
  PAIR_STATS_MAP,
  RULE_MAP,
  type RuleKey,
  STAT_NAMES,
  STATS_MAP,
  STRUCTS,
  type VethInfo,
} from "../spec/bpf_layout.ts";
import { fullMessage, MapFullError, type Table, type TableSpec } from "./table.ts";
import {
  type AgentTables,
  type CidrKey,
  CIDRS,
  CONFIG,
  ENDPOINTS,
  HOSTS,
  IPCACHE,
  type IpcacheValue,
  ISOLATION,
  POLICIES,
  type Policy,
  RULES,
  VETHS,
} from "./tables.ts";

export { MapFullError };
export type { AgentTables, CidrKey, Endpoint, IpcacheValue, Policy } from "./tables.ts";

/** Turns a full map's errno into MapFullError. */
function wrapFull(err: unknown, spec: MapSpec): never {
  if (err instanceof SysError && (err.errno === Errno.E2BIG || err.errno === Errno.ENOSPC)) {
    throw new MapFullError(fullMessage(spec), { cause: err });
  }
  throw err;
}

/** Visits every entry with the batch API, falling back to key iteration on kernels
 * without batch ops for the map type. */
function readAll(
  fd: number,
  keySize: number,
  valueSize: number,
  max: number,
  each: (key: Uint8Array, at: number, value: Uint8Array, vat: number) => void,
): void {
  const chunk = Math.min(max, 4096);
  const keys = new Uint8Array(chunk * keySize);
  const values = new Uint8Array(chunk * valueSize);
  const token = new Uint8Array(keySize);
  const next = new Uint8Array(keySize);
  let inBatch: Uint8Array<ArrayBuffer> | null = null;
  try {
    for (;;) {
      const { count, done } = mapLookupBatch(fd, inBatch, next, keys, values, chunk);
      for (let i = 0; i < count; i++) each(keys, i * keySize, values, i * valueSize);
      if (done) return;
      token.set(next);
      inBatch = token;
    }
  } catch (err) {
    // Kernels without batch ops on hash maps: iterate key by key (nothing read yet).
    if (!(err instanceof SysError) || inBatch !== null) throw err;
    if (err.errno !== Errno.EINVAL && err.errno !== Errno.EOPNOTSUPP) throw err;
  }
  const key = new Uint8Array(keySize);
  const value = new Uint8Array(valueSize);
  let have = mapNextKey(fd, null, key);
  while (have) {
    if (mapLookup(fd, key, value)) each(key, 0, value, 0);
    have = mapNextKey(fd, key, next);
    key.set(next);
  }
}

/** Keys in a map, whatever their values: each takes one of its max_entries slots. */
export function countEntries(fd: number, spec: MapSpec): number {
  let n = 0;
  readAll(fd, spec.keySize, valueStride(spec), spec.maxEntries, () => n++);
  return n;
}

const PERCPU_TYPES = new Set([5, 6, 10]); // PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH

/** The bytes one entry's value takes in a lookup: per-CPU maps hold a slot per possible CPU,
 * each rounded up to 8 bytes. */
export function valueStride(spec: MapSpec): number {
  if (!PERCPU_TYPES.has(spec.type)) return spec.valueSize;
  return Math.ceil(spec.valueSize / 8) * 8 * possibleCpus();
}

/** Every key of a map (get_next_key, for maps without batch lookups such as LPM tries). */
function keysOf(fd: number, keySize: number): Uint8Array<ArrayBuffer>[] {
  const out: Uint8Array<ArrayBuffer>[] = [];
  let key: Uint8Array<ArrayBuffer> | null = null;
  for (;;) {
    const next = new Uint8Array(keySize);
    if (!mapNextKey(fd, key, next)) return out;
    out.push(next);
    key = next;
  }
}

/** A pinned map as a typed table over raw bpf(2): keys and values through the spec's codecs,
 * a full map as MapFullError, lists and bulk writes with the batch ops where the map type has
 * them (an LPM trie has none: key by key). */
export class BpfTable<K, V> implements Table<K, V> {
  // Reused for single-entry calls: they run in loops (CLI, benchmarks), and an allocation
  // per call costs about as much as the FFI call itself.
  readonly #key: Uint8Array<ArrayBuffer>;
  readonly #value: Uint8Array<ArrayBuffer>;
  readonly #batch: boolean;

  constructor(readonly spec: TableSpec<K, V>, readonly fd: number) {
    this.#key = new Uint8Array(spec.key.size);
    this.#value = new Uint8Array(spec.value.size);
    this.#batch = spec.map.type !== BPF_MAP_TYPE_LPM_TRIE;
  }

  get capacity(): number {
    return this.spec.map.maxEntries;
  }

  get(key: K): V | undefined {
    this.spec.key.encode(key, this.#key, 0);
    return mapLookup(this.fd, this.#key, this.#value)
      ? this.spec.value.decode(this.#value, 0)
      : undefined;
  }

  set(key: K, value: V): void {
    this.#write(key, value, BPF_ANY);
  }

  add(key: K, value: V): boolean {
    try {
      this.#write(key, value, BPF_NOEXIST);
      return true;
    } catch (err) {
      if (err instanceof SysError && err.exists) return false;
      throw err;
    }
  }

  #write(key: K, value: V, flags: bigint): void {
    this.spec.key.encode(key, this.#key, 0);
    this.spec.value.encode(value, this.#value, 0);
    try {
      mapUpdate(this.fd, this.#key, this.#value, flags);
    } catch (err) {
      if (err instanceof SysError && err.exists) throw err;
      wrapFull(err, this.spec.map);
    }
  }

  delete(key: K): boolean {
    this.spec.key.encode(key, this.#key, 0);
    return mapDelete(this.fd, this.#key);
  }

  list(): [K, V][] {
    const { key: kc, value: vc } = this.spec;
    if (!this.#batch) {
      const value = new Uint8Array(vc.size);
      return keysOf(this.fd, kc.size).flatMap((k): [K, V][] =>
        mapLookup(this.fd, k, value) ? [[kc.decode(k, 0), vc.decode(value, 0)]] : []
      );
    }
    const out: [K, V][] = [];
    readAll(this.fd, kc.size, vc.size, this.spec.map.maxEntries, (k, at, v, vat) => {
      out.push([kc.decode(k, at), vc.decode(v, vat)]);
    });
    return out;
  }

  setMany(entries: readonly (readonly [K, V])[]): void {
    if (entries.length === 0) return;
    if (!this.#batch) {
      for (const [k, v] of entries) this.set(k, v);
      return;
    }
    const { key: kc, value: vc } = this.spec;
    const keys = new Uint8Array(entries.length * kc.size);
    const values = new Uint8Array(entries.length * vc.size);
    entries.forEach(([k, v], i) => {
      kc.encode(k, keys, i * kc.size);
      vc.encode(v, values, i * vc.size);
    });
    try {
      mapUpdateBatch(this.fd, keys, values, entries.length);
    } catch (err) {
      wrapFull(err, this.spec.map);
    }
  }

  deleteMany(keys: readonly K[]): void {
    if (keys.length === 0) return;
    if (!this.#batch) {
      for (const k of keys) this.delete(k);
      return;
    }
    const kc = this.spec.key;
    const bytes = new Uint8Array(keys.length * kc.size);
    keys.forEach((k, i) => kc.encode(k, bytes, i * kc.size));
    mapDeleteBatch(this.fd, bytes, keys.length);
  }
}

// Each map by name, bound to its codecs (tables.ts).
export class EndpointMap extends BpfTable<number, number> {
  constructor(fd: number) {
    super(ENDPOINTS, fd);
  }
}

/** policy_map: {src, dst} -> allowed (entries whose action is not allow are listed false),
 * with identity mode's words for its operations. */
export class PolicyMap extends BpfTable<Policy, boolean> {
  constructor(fd: number) {
    super(POLICIES, fd);
  }

  allowed(src: number, dst: number): boolean {
    return this.get({ src, dst }) === true;
  }

  allow(src: number, dst: number): void {
    this.set({ src, dst }, true);
  }

  /** Removes the allow entry; false when there was none. */
  deny(src: number, dst: number): boolean {
    return this.delete({ src, dst });
  }

  /** Every pair whose action is allow. */
  pairs(): Policy[] {
    return this.list().filter(([, allowed]) => allowed).map(([p]) => p);
  }

  allowMany(pairs: readonly Policy[]): void {
    this.setMany(pairs.map((p) => [p, true]));
  }
}

/** veth_map: host veth ifindex -> the pod's addresses. */
export class VethMap extends BpfTable<number, VethInfo> {
  constructor(fd: number) {
    super(VETHS, fd);
  }
}

/** host_map: the node's addresses (the reserved identity "host"). */
export class HostMap extends BpfTable<number, true> {
  constructor(fd: number) {
    super(HOSTS, fd);
  }
}

/** ipcache_map (kubernetes mode): every pod's address -> identity, local and remote. */
export class IpcacheMap extends BpfTable<number, IpcacheValue> {
  constructor(fd: number) {
    super(IPCACHE, fd);
  }
}

/** cidr_map: prefixes -> identities, longest match wins. */
export class CidrMap extends BpfTable<CidrKey, number> {
  constructor(fd: number) {
    super(CIDRS, fd);
  }
}

/** rule_map: L4 rules as prefixes of {subject, peer, dir, proto, port}. */
export class RuleMap extends BpfTable<RuleKey, true> {
  constructor(fd: number) {
    super(RULES, fd);
  }
}

/** isolation_map (kubernetes mode): identity -> directions its policies isolate. */
export class IsolationMap extends BpfTable<number, number> {
  constructor(fd: number) {
    super(ISOLATION, fd);
  }
}

/** The maps the policy agent writes, of a loaded datapath. */
export function agentTables(dp: { fd(spec: MapSpec): number }): AgentTables {
  return {
    ipcache: new IpcacheMap(dp.fd(IPCACHE_MAP)),
    isolation: new IsolationMap(dp.fd(ISOLATION_MAP)),
    rules: new RuleMap(dp.fd(RULE_MAP)),
    cidrs: new CidrMap(dp.fd(CIDR_MAP)),
    hosts: new HostMap(dp.fd(HOST_MAP)),
  };
}

/** Verdict counters summed over CPUs. */
export function readStats(fd: number): Record<(typeof STAT_NAMES)[number], bigint> {
  const cpus = possibleCpus();
  const value = new Uint8Array(valueStride(STATS_MAP));
  const out = {} as Record<(typeof STAT_NAMES)[number], bigint>;
  STAT_NAMES.forEach((name, i) => {
    let sum = 0n;
    if (mapLookup(fd, encodeU32(i), value)) {
      const v = new DataView(value.buffer);
      for (let c = 0; c < cpus; c++) sum += v.getBigUint64(c * 8, true);
    }
    out[name] = sum;
  });
  return out;
}

/** config_map[0]: the pin directory's mode and settings. */
export class ConfigMap {
  readonly #table: BpfTable<number, DatapathConfig>;

  constructor(readonly fd: number) {
    this.#table = new BpfTable(CONFIG, fd);
  }

  /** An array map always holds its slot: zeros until written. */
  get(): DatapathConfig {
    return this.#table.get(0) ?? decodeConfig(new Uint8Array(CONFIG_MAP.valueSize));
  }

  set(c: DatapathConfig): void {
    this.#table.set(0, c);
  }
}

/** One tracked connection; `established` when it is in ct_est_map. */
export interface CtRow {
  key: CtKey;
  entry: CtEntry;
  /** The key's bytes, for delete(). */
  raw: Uint8Array<ArrayBuffer>;
  established: boolean;
}

/** The local pod address whose share an established entry takes (the datapath's ct_owner). */
export function ctOwner(key: CtKey, entry: CtEntry): number {
  return entry.flags & CT_FLAGS.chargedDst ? key.daddr : key.saddr;
}

/** Tracked connections: ct_map (the LRU of new ones) and ct_est_map (established ones, each
 * charged to a local pod's address in ct_quota_map). The maps of a pin directory older than
 * ct_est_map are -1: only ct_map is read.
 *
 * Shares are given back by delta (read, subtract, write), never recounted from a snapshot:
 * a recount would overwrite the slots the datapath took meanwhile. The read-modify-write
 * itself may lose a racing datapath change; counts are signed and the datapath reads one
 * below zero as zero, so the error is a slot or two either way, never a blocked share. */
export class CtMap {
  readonly #one = new Uint8Array(STRUCTS.ct_key.size);
  readonly #entry = new Uint8Array(CT_EST_MAP.valueSize);

  constructor(readonly fd: number, readonly estFd = -1, readonly quotaFd = -1) {}

  /** All three of the datapath's maps (those it has). */
  static of(dp: { maps: ReadonlyMap<string, number> }): CtMap {
    const fd = dp.maps.get(CT_MAP.name);
    if (fd === undefined) throw new Error(`No ${CT_MAP.name} is pinned`);
    return new CtMap(fd, dp.maps.get(CT_EST_MAP.name) ?? -1, dp.maps.get(CT_QUOTA_MAP.name) ?? -1);
  }

  /** Each connection once. A connection moving between the maps while they are read is in
   * the new one before it leaves the old, so reading ct_est_map before and after ct_map
   * finds it; where both hold it, ct_est_map's copy is the one that counts. */
  list(): CtRow[] {
    if (this.estFd < 0) return this.#read(this.fd, CT_MAP, false);
    const rows = new Map<string, CtRow>();
    const add = (r: CtRow) => {
      const id = r.raw.join(",");
      if (r.established || !rows.has(id)) rows.set(id, r);
    };
    this.#read(this.estFd, CT_EST_MAP, true).forEach(add);
    this.#read(this.fd, CT_MAP, false).forEach(add);
    this.#read(this.estFd, CT_EST_MAP, true).forEach(add);
    return [...rows.values()];
  }

  #read(fd: number, spec: MapSpec, established: boolean): CtRow[] {
    const out: CtRow[] = [];
    const ks = STRUCTS.ct_key.size;
    readAll(fd, ks, spec.valueSize, spec.maxEntries, (k, at, v, vat) => {
      out.push({
        key: decodeCtKey(k, at),
        entry: decodeCtEntry(v, vat),
        raw: k.slice(at, at + ks) as Uint8Array<ArrayBuffer>,
        established,
      });
    });
    return out;
  }

  /** Forgets one connection (a key from list()), wherever it is, giving back its slot; false
   * when it was gone. ct_map is tried again last: a closing connection moves there from
   * ct_est_map (written there first), maybe between the first two deletes. */
  delete(raw: Uint8Array): boolean {
    this.#one.set(raw.subarray(0, this.#one.length));
    let found = mapDelete(this.fd, this.#one);
    if (this.estFd >= 0) {
      const owner = mapLookup(this.estFd, this.#one, this.#entry)
        ? ctOwner(decodeCtKey(this.#one), decodeCtEntry(this.#entry))
        : undefined;
      if (mapDelete(this.estFd, this.#one)) {
        found = true;
        if (owner !== undefined) this.#giveBack(new Map([[owner, 1]]));
      }
      found = mapDelete(this.fd, this.#one) || found;
    }
    return found;
  }

  /** Forgets every connection that names `addr` at either end (a pod's address leaving
   * the node, or reused): returns how many there were. */
  deleteByAddr(addr: number): number {
    let n = 0;
    for (const r of this.list()) {
      if ((r.key.saddr === addr || r.key.daddr === addr) && this.delete(r.raw)) n++;
    }
    return n;
  }

  /** Removes every entry; returns how many there were. */
  flush(): number {
    let n = 0;
    for (const r of this.list()) if (this.delete(r.raw)) n++;
    return n;
  }

  /** Removes the established entries past their deadline (`nowNs`: CLOCK_MONOTONIC, the
   * datapath's clock) and gives their slots back: the datapath drops an expired entry only
   * when it meets it again, and until then it would hold its owner's slot. ct_map needs no
   * sweep (it is an LRU). Returns how many were removed. */
  sweep(nowNs: bigint): number {
    if (this.estFd < 0) return 0;
    const freed = new Map<number, number>();
    let removed = 0;
    for (const r of this.#read(this.estFd, CT_EST_MAP, true)) {
      if (r.entry.expires >= nowNs || !mapDelete(this.estFd, r.raw)) continue;
      removed++;
      const owner = ctOwner(r.key, r.entry);
      freed.set(owner, (freed.get(owner) ?? 0) + 1);
    }
    this.#giveBack(freed);
    return removed;
  }

  /** Subtracts each owner's freed slots; a count left at zero or below goes, as the
   * datapath does it. */
  #giveBack(freed: ReadonlyMap<number, number>): void {
    if (this.quotaFd < 0) return;
    const v = new Uint8Array(4);
    for (const [owner, d] of freed) {
      const key = encodeU32(owner);
      if (!mapLookup(this.quotaFd, key, v)) continue;
      const n = new DataView(v.buffer).getInt32(0, true) - d;
      if (n <= 0) {
        mapDelete(this.quotaFd, key);
        continue;
      }
      try {
        mapUpdate(this.quotaFd, key, encodeU32(n), BPF_EXIST);
      } catch (err) {
        // The datapath gave its last slot back meanwhile and removed the key.
        if (!(err instanceof SysError && err.errno === Errno.ENOENT)) throw err;
      }
    }
  }

  /** ct_quota_map: local pod address -> its entries in ct_est_map (below zero reads as 0). */
  quotas(): { ip: number; count: number }[] {
    const out: { ip: number; count: number }[] = [];
    if (this.quotaFd < 0) return out;
    readAll(this.quotaFd, 4, 4, CT_QUOTA_MAP.maxEntries, (k, at, v, vat) => {
      const n = new DataView(v.buffer, v.byteOffset).getInt32(vat, true);
      out.push({ ip: decodeU32(k, at), count: Math.max(0, n) });
    });
    return out;
  }

  /** Removes the entries at `keys` (raw keys, as list() gives them) from both maps; one the
   * datapath evicted, moved or expired meanwhile is no error. */
  deleteMany(keys: readonly Uint8Array[]): void {
    const size = STRUCTS.ct_key.size;
    const packed = new Uint8Array(keys.length * size);
    keys.forEach((k, i) => packed.set(k.subarray(0, size), i * size));
    for (let at = 0; at < keys.length; at += 4096) {
      const n = Math.min(4096, keys.length - at);
      const chunk = packed.slice(at * size, (at + n) * size);
      try {
        mapDeleteBatch(this.fd, chunk, n);
      } catch (err) {
        // An entry gone meanwhile stops the batch where it is: delete the rest one by one.
        if (!(err instanceof SysError && err.notFound)) throw err;
        for (let i = 0; i < n; i++) mapDelete(this.fd, chunk.slice(i * size, (i + 1) * size));
      }
    }
    // Established ones give their owner's slot back (and ct_map is tried again, in case one
    // moved back meanwhile).
    if (this.estFd >= 0) { for (const k of keys) this.delete(k); }
  }
}

export interface PairStats {
  src: number;
  dst: number;
  packets: bigint;
  bytes: bigint;
}

/** pair_stats_map: packets and bytes per {src, dst}, summed over CPUs. */
export function readPairStats(fd: number): PairStats[] {
  const cpus = possibleCpus();
  const stride = valueStride(PAIR_STATS_MAP) / cpus;
  const out: PairStats[] = [];
  readAll(fd, 8, valueStride(PAIR_STATS_MAP), PAIR_STATS_MAP.maxEntries, (k, at, v, vat) => {
    const view = new DataView(v.buffer, v.byteOffset);
    let packets = 0n;
    let bytes = 0n;
    for (let c = 0; c < cpus; c++) {
      packets += view.getBigUint64(vat + c * stride, true);
      bytes += view.getBigUint64(vat + c * stride + 8, true);
    }
    out.push({ ...decodePolicyKey(k, at), packets, bytes });
  });
  return out;
}

/** What a pass over every tracked connection judges (revocation, DEL): the key and the
 * identities and flags it was recorded with, without the counters (decoding those costs
 * more than reading the map). */
export interface CtJudged {
  key: CtKey;
  entry: Pick<CtEntry, "srcId" | "dstId" | "flags">;
}

/** Every entry of the ct map at `fd`, as CtJudged. */
export function scanCt(fd: number): CtJudged[] {
  const out: CtJudged[] = [];
  const f = STRUCTS.ct_key.fields;
  const e = STRUCTS.ct_entry.fields;
  // One view per buffer: readAll() reuses its buffers from batch to batch.
  let kb: Uint8Array | undefined, kv: DataView | undefined;
  let vb: Uint8Array | undefined, vv: DataView | undefined;
  readAll(fd, STRUCTS.ct_key.size, CT_MAP.valueSize, CT_MAP.maxEntries, (k, at, v, vat) => {
    if (k !== kb) (kb = k, kv = new DataView(k.buffer, k.byteOffset, k.byteLength));
    if (v !== vb) (vb = v, vv = new DataView(v.buffer, v.byteOffset, v.byteLength));
    out.push({
      key: {
        saddr: kv!.getUint32(at + f.saddr, true),
        daddr: kv!.getUint32(at + f.daddr, true),
        sport: kv!.getUint16(at + f.sport, true),
        dport: kv!.getUint16(at + f.dport, true),
        proto: kv!.getUint8(at + f.proto),
      },
      entry: {
        srcId: vv!.getUint32(vat + e.src_id, true),
        dstId: vv!.getUint32(vat + e.dst_id, true),
        flags: vv!.getUint32(vat + e.flags, true),
      },
    });
  });
  return out;
}

/** The ct_key bytes of `k` (decodeCtKey()'s inverse), to delete an entry by. */
export function encodeCtKey(k: CtKey, out = new Uint8Array(STRUCTS.ct_key.size), at = 0) {
  const v = new DataView(out.buffer, out.byteOffset);
  const f = STRUCTS.ct_key.fields;
  v.setUint32(at + f.saddr, k.saddr, true);
  v.setUint32(at + f.daddr, k.daddr, true);
  v.setUint16(at + f.sport, k.sport, true);
  v.setUint16(at + f.dport, k.dport, true);
  v.setUint8(at + f.proto, k.proto);
  return out;
}
