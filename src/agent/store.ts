// The agent's model of the cluster, fed by a source: objects parsed into the engine's Model
// (a new snapshot per change), a generation counter per change, and whether the source has
// delivered its whole view at least once. Objects that do not parse are reported and left out.
import {
  applyObject,
  deleteObject,
  emptyModel,
  type Model,
  ObjectError,
  parseObject,
} from "../netpol/mod.ts";
import type { KubeKind, SourceSink } from "./source.ts";

export interface StoreEvents {
  changed(): void;
  problem(message: string): void;
}

export class ModelStore implements SourceSink {
  #model: Model = emptyModel();
  /** Bumped by every change the source delivers. */
  generation = 0;
  /** The source has listed everything once. */
  isSynced = false;

  constructor(readonly events: StoreEvents) {}

  get model(): Model {
    return this.#model;
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
    if (parsed.kind === "Other") return;
    this.#model = applyObject(this.#model, parsed);
    this.generation++;
    this.events.changed();
  }

  remove(kind: KubeKind, namespace: string | undefined, name: string): void {
    const ref = namespace === undefined ? { kind, name } : { kind, namespace, name };
    this.#model = deleteObject(this.#model, ref);
    this.generation++;
    this.events.changed();
  }

  synced(): void {
    if (!this.isSynced) this.generation++;
    this.isSynced = true;
    this.events.changed();
  }

  problem(message: string): void {
    this.events.problem(message);
  }
}
