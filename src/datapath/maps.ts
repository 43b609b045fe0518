// Typed access to the pinned maps: endpoints (IPv4 -> identity) and policies
// ({src, dst} -> allow), with batch writes for bulk imports.
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
  decodePolicyKey,
  decodeU32,
  encodePolicyKey,
  encodeU32,
  ENDPOINT_MAP,
  type MapSpec,
  POLICY_ALLOW,
  POLICY_MAP,
  STAT_NAMES,
  STATS_MAP,
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

/** The map is full (E2BIG from the kernel). */
export class MapFullError extends Error {
  override name = "MapFullError";
}

function wrapFull(err: unknown, what: string, max: number): never {
  if (err instanceof SysError && err.errno === Errno.E2BIG) {
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
  readAll(fd, spec.keySize, spec.valueSize, spec.maxEntries, () => n++);
  return n;
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
  const value = new Uint8Array(STATS_MAP.valueSize * cpus);
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
