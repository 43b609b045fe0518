// An in-memory Table for unit tests: entries kept as the kernel keeps them (encoded by the
// map's codecs, so two keys are one entry exactly when their bytes are), a capacity that
// refuses a new key as a full map does (MapFullError), and every write appended to a log
// shared by the tables of one test, so a test can assert the order of writes across maps.
import { encodeOne, fullMessage, MapFullError, type Table, type TableSpec } from "./table.ts";

/** One write that changed a table (deletes of absent keys and refused writes are not). */
export interface Write {
  map: string;
  op: "set" | "delete";
  key: unknown;
  value?: unknown;
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

export class FakeTable<K, V> implements Table<K, V> {
  readonly #entries = new Map<string, { key: Uint8Array; value: Uint8Array }>();
  /** Slots a new key may take; the map's max_entries unless the test says otherwise. */
  capacity: number;

  constructor(
    readonly spec: TableSpec<K, V>,
    readonly log: Write[] = [],
    capacity?: number,
  ) {
    this.capacity = capacity ?? spec.map.maxEntries;
  }

  get name(): string {
    return this.spec.map.name;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(key: K): V | undefined {
    const e = this.#entries.get(hex(encodeOne(this.spec.key, key)));
    return e === undefined ? undefined : this.spec.value.decode(e.value, 0);
  }

  set(key: K, value: V): void {
    const k = encodeOne(this.spec.key, key);
    const id = hex(k);
    if (!this.#entries.has(id) && this.#entries.size >= this.capacity) {
      throw new MapFullError(fullMessage({ ...this.spec.map, maxEntries: this.capacity }));
    }
    this.#entries.set(id, { key: k, value: encodeOne(this.spec.value, value) });
    this.log.push({ map: this.name, op: "set", key, value });
  }

  add(key: K, value: V): boolean {
    if (this.#entries.has(hex(encodeOne(this.spec.key, key)))) return false;
    this.set(key, value);
    return true;
  }

  delete(key: K): boolean {
    if (!this.#entries.delete(hex(encodeOne(this.spec.key, key)))) return false;
    this.log.push({ map: this.name, op: "delete", key });
    return true;
  }

  list(): [K, V][] {
    return [...this.#entries.values()].map((
      e,
    ) => [this.spec.key.decode(e.key, 0), this.spec.value.decode(e.value, 0)]);
  }

  setMany(entries: readonly (readonly [K, V])[]): void {
    for (const [k, v] of entries) this.set(k, v);
  }

  deleteMany(keys: readonly K[]): void {
    for (const k of keys) this.delete(k);
  }
}
