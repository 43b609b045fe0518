// Typed access to the pinned maps: endpoints (IPv4 -> identity) and policies ({src, dst} ->
// allow) with batch writes for bulk imports, and the newer maps (veths, node addresses,
// configuration, kubernetes endpoints, CIDRs, rules, isolation, conntrack, pair counters).
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
  CIDR_MAP,
  CONFIG_MAP,
  CT_EST_MAP,
  CT_FLAGS,
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
