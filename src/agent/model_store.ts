// The agent's model of the cluster, fed by a source: objects parsed into the engine's Model
// (a snapshot: a Model handed out never changes), a generation counter per change, and whether
// the source has delivered its whole view at least once. Objects that do not parse are
// reported and left out.
//
// Writes go to a draft whose maps are copied once, on the first write after the last snapshot
// was handed out, and then changed in place: a source delivering N objects costs O(N), not the
// O(N²) of copying a map per object. A batch (begin/commit) is one change: readers see the
// model from before it until it commits, so a manifest file's objects appear together.
import { emptyModel, type Model, ObjectError, objectKey, parseObject } from "../netpol/mod.ts";
import type { KubeKind, SourceSink } from "./source.ts";

export interface StoreEvents {
  changed(): void;
  problem(message: string): void;
  /** Replaces the problems of one source (a file): an empty list clears them. */
  problems(source: string, messages: string[]): void;
}

type Maps = {
  -readonly [K in keyof Model]: Map<
    string,
    Model[K] extends ReadonlyMap<string, infer V> ? V : never
  >;
};

/** Where each kind is kept in the model. */
const STORE_MAP = {
  Namespace: "namespaces",
  Pod: "pods",
  NetworkPolicy: "policies",
  Node: "nodes",
} as const satisfies Record<KubeKind, keyof Model>;

export class ModelStore implements SourceSink {
  #published: Model = emptyModel();
  /** Changes not yet handed out; `owned` names the maps already copied for them. */
  #draft: { maps: Maps; owned: Set<keyof Model> } | undefined;
  #generation = 0;
  #batches = 0;
  #pending = 0;
  /** The source has listed everything once. */
  isSynced = false;

  constructor(readonly events: StoreEvents) {}

  /** Bumped by every change the source delivers (a batch counts once, at its commit). */
  get generation(): number {
    return this.#generation;
  }

  get model(): Model {
    if (this.#batches === 0) this.#publish();
    return this.#published;
  }

  #publish(): void {
    if (this.#draft === undefined) return;
    this.#published = this.#draft.maps;
    this.#draft = undefined;
  }

  #map<K extends keyof Model>(kind: K): Maps[K] {
    this.#draft ??= { maps: { ...this.#published } as Maps, owned: new Set() };
    const d = this.#draft;
    if (!d.owned.has(kind)) {
      d.maps[kind] = new Map(d.maps[kind]) as Maps[K];
      d.owned.add(kind);
    }
    return d.maps[kind];
  }

  #changed(): void {
    if (this.#batches > 0) {
      this.#pending++;
      return;
    }
    this.#generation++;
    this.events.changed();
  }

  upsert(obj: Record<string, unknown>): void {
    let parsed;
    try {
      parsed = parseObject(obj);
    } catch (err) {
      if (err instanceof ObjectError) {
        this.events.problem(err.message);
        return;
      }
      throw err;
    }
    switch (parsed.kind) {
      case "Other":
        return;
      case "Namespace":
        this.#map("namespaces").set(parsed.value.name, parsed.value);
        break;
      case "Node":
        this.#map("nodes").set(parsed.value.name, parsed.value);
        break;
      case "Pod":
        this.#map("pods").set(objectKey(parsed.value.namespace, parsed.value.name), parsed.value);
        break;
      case "NetworkPolicy":
        this.#map("policies").set(
          objectKey(parsed.value.namespace, parsed.value.name),
          parsed.value,
        );
        break;
    }
    this.#changed();
  }

  remove(kind: KubeKind, namespace: string | undefined, name: string): void {
    const map = STORE_MAP[kind];
    const key = kind === "Namespace" || kind === "Node"
      ? name
      : objectKey(namespace ?? "default", name);
    const current = this.#draft?.maps[map] ?? this.#published[map];
    if (!current.has(key)) return;
    this.#map(map).delete(key);
    this.#changed();
  }

  begin(): void {
    // Changes made before the batch are not part of it.
    if (this.#batches++ === 0) this.#publish();
  }

  commit(): void {
    if (this.#batches === 0 || --this.#batches > 0) return;
    if (this.#pending === 0) return;
    this.#pending = 0;
    this.#generation++;
    this.events.changed();
  }

  synced(): void {
    if (!this.isSynced) this.#generation++;
    this.isSynced = true;
    this.events.changed();
  }

  problem(message: string): void {
    this.events.problem(message);
  }

  problems(source: string, messages: string[]): void {
    this.events.problems(source, messages);
  }
}
