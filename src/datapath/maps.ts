// Typed access to the pinned maps: endpoints (IPv4 -> identity) and policies ({src, dst} ->
// allow) with batch writes for bulk imports, and the newer maps (veths, node addresses,
// configuration, kubernetes endpoints, CIDRs, rules, isolation, conntrack, pair counters).
import {
  BPF_ANY,
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
  CIDR_MAP,
  CONFIG_MAP,
  CT_EST_MAP,
  CT_MAP,
  CT_QUOTA_MAP,
  type CtEntry,
  type CtKey,
  type DatapathConfig,
  decodeCidrKey,
  decodeConfig,
  decodeCtEntry,
  decodeCtKey,
  decodeIpcacheEntry,
  decodePolicyKey,
  decodeRuleKey,
  decodeU32,
  decodeVethInfo,
  encodeCidrKey,
  encodeConfig,
  encodeIpcacheEntry,
  encodePolicyKey,
  encodeRuleKey,
  encodeU32,
  encodeVethInfo,
  ENDPOINT_MAP,
  HOST_MAP,
  IPCACHE_MAP,
  ISOLATION_MAP,
  type MapSpec,
  PAIR_STATS_MAP,
  POLICY_ALLOW,
  POLICY_MAP,
  RULE_MAP,
  type RuleKey,
  STAT_NAMES,
  STATS_MAP,
  STRUCTS,
  VETH_MAP,
  type VethInfo,
} from "./layout.ts";

export interface Endpoint {
  /** IPv4 address as a host-order u32. */
  ip: number;
  identity: number;
}

export interface Policy {
  src: number;
  dst: number;
}

/** The map is full (E2BIG from the kernel; ENOSPC from an LPM trie). */
export class MapFullError extends Error {
  override name = "MapFullError";
}

function wrapFull(err: unknown, what: string, max: number): never {
  if (err instanceof SysError && (err.errno === Errno.E2BIG || err.errno === Errno.ENOSPC)) {
    throw new MapFullError(`${what} is full (${max} entries)`, { cause: err });
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

/** Writes `value` at `key`, turning a full map into MapFullError. */
function put(
  fd: number,
  spec: MapSpec,
  key: Uint8Array<ArrayBuffer>,
  value: Uint8Array<ArrayBuffer>,
) {
  try {
    mapUpdate(fd, key, value, BPF_ANY);
  } catch (err) {
    wrapFull(err, spec.name, spec.maxEntries);
  }
}

export class EndpointMap {
  // Reused for single-entry calls: they run in loops (CLI, benchmarks), and an allocation
  // per call costs about as much as the FFI call itself.
  readonly #key = new Uint8Array(4);
  readonly #value = new Uint8Array(4);

  constructor(readonly fd: number) {}

  get(ip: number): number | undefined {
    return mapLookup(this.fd, encodeU32(ip, this.#key), this.#value)
      ? decodeU32(this.#value)
      : undefined;
  }

  /** Insert or replace. */
  set(ip: number, identity: number): void {
    try {
      mapUpdate(this.fd, encodeU32(ip, this.#key), encodeU32(identity, this.#value), BPF_ANY);
    } catch (err) {
      wrapFull(err, "endpoint_map", ENDPOINT_MAP.maxEntries);
    }
  }

  /** Insert only; false when the address is already registered. */
  add(ip: number, identity: number): boolean {
    try {
      mapUpdate(this.fd, encodeU32(ip, this.#key), encodeU32(identity, this.#value), BPF_NOEXIST);
      return true;
    } catch (err) {
      if (err instanceof SysError && err.exists) return false;
      wrapFull(err, "endpoint_map", ENDPOINT_MAP.maxEntries);
    }
  }

  delete(ip: number): boolean {
    return mapDelete(this.fd, encodeU32(ip, this.#key));
  }

  list(): Endpoint[] {
    const out: Endpoint[] = [];
    readAll(this.fd, 4, 4, ENDPOINT_MAP.maxEntries, (k, at, v, vat) => {
      out.push({ ip: decodeU32(k, at), identity: decodeU32(v, vat) });
    });
    return out;
  }

  setMany(entries: readonly Endpoint[]): void {
    const keys = new Uint8Array(entries.length * 4);
    const values = new Uint8Array(entries.length * 4);
    entries.forEach((e, i) => {
      encodeU32(e.ip, keys, i * 4);
      encodeU32(e.identity, values, i * 4);
    });
    try {
      if (entries.length) mapUpdateBatch(this.fd, keys, values, entries.length);
    } catch (err) {
      wrapFull(err, "endpoint_map", ENDPOINT_MAP.maxEntries);
    }
  }
}

export class PolicyMap {
  constructor(readonly fd: number) {}

  allowed(src: number, dst: number): boolean {
    const v = new Uint8Array(1);
    return mapLookup(this.fd, encodePolicyKey(src, dst), v) && v[0] === POLICY_ALLOW;
  }

  allow(src: number, dst: number): void {
    try {
      mapUpdate(this.fd, encodePolicyKey(src, dst), new Uint8Array([POLICY_ALLOW]), BPF_ANY);
    } catch (err) {
      wrapFull(err, "policy_map", POLICY_MAP.maxEntries);
    }
  }

  /** Removes the allow entry; false when there was none. */
  deny(src: number, dst: number): boolean {
    return mapDelete(this.fd, encodePolicyKey(src, dst));
  }

  /** Every entry whose action is allow. */
  list(): Policy[] {
    const out: Policy[] = [];
    readAll(this.fd, 8, 1, POLICY_MAP.maxEntries, (k, at, v, vat) => {
      if (v[vat] === POLICY_ALLOW) out.push(decodePolicyKey(k, at));
    });
    return out;
  }

  allowMany(entries: readonly Policy[]): void {
    const keys = new Uint8Array(entries.length * 8);
    const values = new Uint8Array(entries.length).fill(POLICY_ALLOW);
    entries.forEach((p, i) => encodePolicyKey(p.src, p.dst, keys, i * 8));
    try {
      if (entries.length) mapUpdateBatch(this.fd, keys, values, entries.length);
    } catch (err) {
      wrapFull(err, "policy_map", POLICY_MAP.maxEntries);
    }
  }

  denyMany(entries: readonly Policy[]): void {
    const keys = new Uint8Array(entries.length * 8);
    entries.forEach((p, i) => encodePolicyKey(p.src, p.dst, keys, i * 8));
    if (entries.length) mapDeleteBatch(this.fd, keys, entries.length);
  }
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
  readonly #key = encodeU32(0);
  constructor(readonly fd: number) {}

  get(): DatapathConfig {
    const v = new Uint8Array(CONFIG_MAP.valueSize);
    mapLookup(this.fd, this.#key, v);
    return decodeConfig(v);
  }

  set(c: DatapathConfig): void {
    mapUpdate(this.fd, this.#key, encodeConfig(c), BPF_ANY);
  }
}

/** veth_map: host veth ifindex -> the pod's addresses. */
export class VethMap {
  constructor(readonly fd: number) {}

  get(ifindex: number): VethInfo | undefined {
    const v = new Uint8Array(VETH_MAP.valueSize);
    return mapLookup(this.fd, encodeU32(ifindex), v) ? decodeVethInfo(v) : undefined;
  }

  set(ifindex: number, info: VethInfo): void {
    put(this.fd, VETH_MAP, encodeU32(ifindex), encodeVethInfo(info));
  }

  delete(ifindex: number): boolean {
    return mapDelete(this.fd, encodeU32(ifindex));
  }

  list(): { ifindex: number; info: VethInfo }[] {
    const out: { ifindex: number; info: VethInfo }[] = [];
    readAll(this.fd, 4, VETH_MAP.valueSize, VETH_MAP.maxEntries, (k, at, v, vat) => {
      out.push({ ifindex: decodeU32(k, at), info: decodeVethInfo(v, vat) });
    });
    return out;
  }
}

/** host_map: the node's addresses (the reserved identity "host"). */
export class HostMap {
  constructor(readonly fd: number) {}

  add(ip: number): void {
    put(this.fd, HOST_MAP, encodeU32(ip), encodeU32(1));
  }

  delete(ip: number): boolean {
    return mapDelete(this.fd, encodeU32(ip));
  }

  has(ip: number): boolean {
    return mapLookup(this.fd, encodeU32(ip), new Uint8Array(4));
  }

  list(): number[] {
    const out: number[] = [];
    readAll(this.fd, 4, 4, HOST_MAP.maxEntries, (k, at) => out.push(decodeU32(k, at)));
    return out;
  }
}

export interface IpcacheEntry {
  ip: number;
  identity: number;
  flags: number;
}

/** ipcache_map (kubernetes mode): every pod's address -> identity, local and remote. */
export class IpcacheMap {
  constructor(readonly fd: number) {}

  get(ip: number): { identity: number; flags: number } | undefined {
    const v = new Uint8Array(8);
    return mapLookup(this.fd, encodeU32(ip), v) ? decodeIpcacheEntry(v) : undefined;
  }

  set(ip: number, identity: number, flags: number): void {
    put(this.fd, IPCACHE_MAP, encodeU32(ip), encodeIpcacheEntry(identity, flags));
  }

  delete(ip: number): boolean {
    return mapDelete(this.fd, encodeU32(ip));
  }

  list(): IpcacheEntry[] {
    const out: IpcacheEntry[] = [];
    readAll(this.fd, 4, 8, IPCACHE_MAP.maxEntries, (k, at, v, vat) => {
      out.push({ ip: decodeU32(k, at), ...decodeIpcacheEntry(v, vat) });
    });
    return out;
  }
}

export interface CidrEntry {
  addr: number;
  prefix: number;
  identity: number;
}

/** cidr_map: prefixes -> identities, longest match wins. */
export class CidrMap {
  constructor(readonly fd: number) {}

  get(addr: number, prefix: number): number | undefined {
    const v = new Uint8Array(4);
    return mapLookup(this.fd, encodeCidrKey(addr, prefix), v) ? decodeU32(v) : undefined;
  }

  set(addr: number, prefix: number, identity: number): void {
    put(this.fd, CIDR_MAP, encodeCidrKey(addr, prefix), encodeU32(identity));
  }

  delete(addr: number, prefix: number): boolean {
    return mapDelete(this.fd, encodeCidrKey(addr, prefix));
  }

  list(): CidrEntry[] {
    const value = new Uint8Array(4);
    return keysOf(this.fd, STRUCTS.cidr_key.size).flatMap((k) =>
      mapLookup(this.fd, k, value) ? [{ ...decodeCidrKey(k), identity: decodeU32(value) }] : []
    );
  }
}

/** rule_map: L4 rules as prefixes of {subject, peer, dir, proto, port}. */
export class RuleMap {
  constructor(readonly fd: number) {}

  has(k: RuleKey): boolean {
    return mapLookup(this.fd, encodeRuleKey(k), new Uint8Array(4));
  }

  add(k: RuleKey): void {
    put(this.fd, RULE_MAP, encodeRuleKey(k), encodeU32(1));
  }

  delete(k: RuleKey): boolean {
    return mapDelete(this.fd, encodeRuleKey(k));
  }

  list(): RuleKey[] {
    return keysOf(this.fd, STRUCTS.rule_key.size).map((k) => decodeRuleKey(k));
  }
}

/** isolation_map (kubernetes mode): identity -> directions its policies isolate. */
export class IsolationMap {
  constructor(readonly fd: number) {}

  set(identity: number, flags: number): void {
    put(this.fd, ISOLATION_MAP, encodeU32(identity), encodeU32(flags));
  }

  delete(identity: number): boolean {
    return mapDelete(this.fd, encodeU32(identity));
  }

  list(): { identity: number; flags: number }[] {
    const out: { identity: number; flags: number }[] = [];
    readAll(this.fd, 4, 4, ISOLATION_MAP.maxEntries, (k, at, v, vat) => {
      out.push({ identity: decodeU32(k, at), flags: decodeU32(v, vat) });
    });
    return out;
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

/** Tracked connections: ct_map (the LRU of new ones) and ct_est_map (established ones, each
 * charged to its initiator in ct_quota_map). The maps of a pin directory older than
 * ct_est_map are -1: only ct_map is read. */
export class CtMap {
  readonly #one = new Uint8Array(STRUCTS.ct_key.size);

  constructor(readonly fd: number, readonly estFd = -1, readonly quotaFd = -1) {}

  /** All three of the datapath's maps (those it has). */
  static of(dp: { maps: ReadonlyMap<string, number> }): CtMap {
    const fd = dp.maps.get(CT_MAP.name);
    if (fd === undefined) throw new Error(`No ${CT_MAP.name} is pinned`);
    return new CtMap(fd, dp.maps.get(CT_EST_MAP.name) ?? -1, dp.maps.get(CT_QUOTA_MAP.name) ?? -1);
  }

  list(): CtRow[] {
    const out = this.#read(this.fd, CT_MAP, false);
    return this.estFd < 0 ? out : out.concat(this.#read(this.estFd, CT_EST_MAP, true));
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

  /** Forgets one connection (a key from list()), wherever it is; false when it was gone. */
  delete(raw: Uint8Array): boolean {
    this.#one.set(raw.subarray(0, this.#one.length));
    let found = mapDelete(this.fd, this.#one);
    if (this.estFd >= 0 && mapDelete(this.estFd, this.#one)) {
      found = true;
      this.#uncharge(decodeCtKey(this.#one).saddr);
    }
    return found;
  }

  /** Removes every entry; returns how many there were. */
  flush(): number {
    const rows = this.list();
    for (const r of rows) this.delete(r.raw);
    if (this.quotaFd >= 0) this.#recount([]);
    return rows.length;
  }

  /** Removes the established entries past their deadline (`nowNs`: CLOCK_MONOTONIC, the
   * datapath's clock) and sets each initiator's count in ct_quota_map to what it holds: the
   * datapath drops an expired entry only when it meets it again, and until then it would
   * hold its initiator's slot. ct_map needs no sweep (it is an LRU). Returns how many were
   * removed. */
  sweep(nowNs: bigint): number {
    if (this.estFd < 0) return 0;
    let removed = 0;
    const held: CtRow[] = [];
    for (const r of this.#read(this.estFd, CT_EST_MAP, true)) {
      if (r.entry.expires >= nowNs) held.push(r);
      else if (mapDelete(this.estFd, r.raw)) removed++;
    }
    if (this.quotaFd >= 0) this.#recount(held);
    return removed;
  }

  /** The datapath adds and takes atomically; this read-modify-write may lose a racing
   * change, which the next sweep repairs. */
  #uncharge(owner: number): void {
    if (this.quotaFd < 0) return;
    const key = encodeU32(owner);
    const v = new Uint8Array(4);
    if (!mapLookup(this.quotaFd, key, v)) return;
    const n = decodeU32(v);
    if (n > 0) mapUpdate(this.quotaFd, key, encodeU32(n - 1), BPF_ANY);
  }

  #recount(held: readonly CtRow[]): void {
    const counts = new Map<number, number>();
    for (const r of held) counts.set(r.key.saddr, (counts.get(r.key.saddr) ?? 0) + 1);
    const owners: number[] = [];
    readAll(this.quotaFd, 4, 4, CT_QUOTA_MAP.maxEntries, (k, at) => owners.push(decodeU32(k, at)));
    for (const owner of owners) {
      if (!counts.has(owner)) mapDelete(this.quotaFd, encodeU32(owner));
    }
    for (const [owner, n] of counts) {
      put(this.quotaFd, CT_QUOTA_MAP, encodeU32(owner), encodeU32(n));
    }
  }

  /** ct_quota_map: initiator address -> its entries in ct_est_map. */
  quotas(): { ip: number; count: number }[] {
    const out: { ip: number; count: number }[] = [];
    if (this.quotaFd < 0) return out;
    readAll(this.quotaFd, 4, 4, CT_QUOTA_MAP.maxEntries, (k, at, v, vat) => {
      out.push({ ip: decodeU32(k, at), count: decodeU32(v, vat) });
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
    if (this.estFd < 0) return;
    for (const k of keys) {
      this.#one.set(k.subarray(0, size));
      if (mapDelete(this.estFd, this.#one)) this.#uncharge(decodeCtKey(this.#one).saddr);
    }
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
