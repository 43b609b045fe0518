// A typed map: what the agent, the CNI plugin and the CLI read and write the pinned maps
// through (as cilium/ebpf's Map with its marshalers), whether the bpf(2)-backed one (maps.ts)
// or the in-memory one of the unit tests (table_fake.ts). Keys and values go through codecs of
// the struct layouts (tables.ts). No FFI here: the unit tests import this without permissions.
import type { MapSpec } from "../spec/bpf_layout.ts";

/** One side of a map's entries (key or value) as bytes: `size` bytes at `at`. */
export interface Codec<T> {
  readonly size: number;
  encode(v: T, out: Uint8Array<ArrayBuffer>, at: number): void;
  decode(b: Uint8Array, at: number): T;
}

/** A map's layout and the codecs of its keys and values. */
export interface TableSpec<K, V> {
  readonly map: MapSpec;
  readonly key: Codec<K>;
  readonly value: Codec<V>;
}

export interface Table<K, V> {
  readonly spec: TableSpec<K, V>;
  /** How many keys it can hold (max_entries). */
  readonly capacity: number;
  get(key: K): V | undefined;
  /** Insert or replace; MapFullError when a new key does not fit. */
  set(key: K, value: V): void;
  /** Insert only; false when the key is there already. */
  add(key: K, value: V): boolean;
  /** False when the key was not there. */
  delete(key: K): boolean;
  /** Every entry. */
  list(): [K, V][];
  /** Insert or replace many at once (one syscall per chunk where the map type allows). */
  setMany(entries: readonly (readonly [K, V])[]): void;
  deleteMany(keys: readonly K[]): void;
}

/** The map is full (E2BIG from the kernel; ENOSPC from an LPM trie). */
export class MapFullError extends Error {
  override name = "MapFullError";
}

/** The message both tables give for a full map. */
export function fullMessage(spec: MapSpec): string {
  return `${spec.name} is full (${spec.maxEntries} entries)`;
}

/** Encodes one value into a buffer of its own. */
export function encodeOne<T>(codec: Codec<T>, v: T): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(codec.size);
  codec.encode(v, out, 0);
  return out;
}
