// Identities of kubernetes mode. A pod's is the original agent's label hash (its labels plus
// k8s:namespace=<ns>, sorted, SHA-1, first 4 bytes), so pods with the same labels in one
// namespace share one; a CIDR's is a hash of the prefix into a block of its own. Both stay out
// of the reserved values (0-255, and the top block holding host and world), and two different
// label sets (or prefixes) whose hashes meet are told apart, never merged: the later one is
// rehashed with a salt. Allocations can be seeded with what the maps hold, so an agent that
// restarts gives every pod the identity it had. Pure.
import { sha1 } from "../hash.ts";
import { labelHashInput } from "../spec/label_hash.ts";
import type { Labels } from "./model.ts";

/** Identities below this are reserved (1: a pod without identity information). */
export const FIRST_POD_IDENTITY = 256;
/** CIDR identities: [CIDR_FIRST, CIDR_LAST]. Above them, reserved (host, world...). */
export const CIDR_FIRST = 0xff000000;
export const CIDR_LAST = 0xfffeffff;

export function isPodIdentity(id: number): boolean {
  return Number.isInteger(id) && id >= FIRST_POD_IDENTITY && id < CIDR_FIRST;
}

export function isCidrIdentity(id: number): boolean {
  return Number.isInteger(id) && id >= CIDR_FIRST && id <= CIDR_LAST;
}

/** What a pod's identity is a function of: the hash input of the original agent. */
export function labelSetKey(namespace: string, labels: Labels): string {
  return labelHashInput({ ...labels }, namespace);
}

function hash32(text: string): number {
  const d = sha1(text);
  return new DataView(d.buffer, d.byteOffset, d.byteLength).getUint32(0, false);
}

/** The n-th candidate for `key`: the plain hash first (the original's), then salted ones. */
function candidate(key: string, salt: number, cidr: boolean): number {
  const h = hash32(salt === 0 ? key : `${key}#${salt}`);
  if (cidr) return CIDR_FIRST + (h % (CIDR_LAST - CIDR_FIRST + 1));
  return h;
}

export interface Allocation {
  identity: number;
  /** The key had to be salted: its plain hash was taken or reserved. */
  salted: boolean;
}

/** Gives each key (a label set, or a CIDR) an identity of its kind, consistently. */
export class IdentityAllocator {
  readonly #byKey = new Map<string, Allocation>();
  readonly #byId = new Map<number, string>();

  constructor(readonly kind: "pod" | "cidr") {}

  #valid(id: number): boolean {
    return this.kind === "pod" ? isPodIdentity(id) : isCidrIdentity(id);
  }

  /** Takes `id` for `key` if it is free and of this kind (a seed from the maps). */
  seed(key: string, id: number): boolean {
    if (this.#byKey.has(key) || !this.#valid(id) || this.#byId.has(id)) return false;
    this.#byKey.set(key, { identity: id, salted: false });
    this.#byId.set(id, key);
    return true;
  }

  assign(key: string): number {
    const have = this.#byKey.get(key);
    if (have) return have.identity;
    for (let salt = 0;; salt++) {
      const id = candidate(key, salt, this.kind === "cidr");
      if (!this.#valid(id) || this.#byId.has(id)) continue;
      this.#byKey.set(key, { identity: id, salted: salt > 0 });
      this.#byId.set(id, key);
      return id;
    }
  }

  get(key: string): Allocation | undefined {
    return this.#byKey.get(key);
  }

  keyOf(id: number): string | undefined {
    return this.#byId.get(id);
  }

  /** Forgets every key not in `live` (so their identities can be reused much later). */
  retain(live: ReadonlySet<string>): void {
    for (const [key, a] of this.#byKey) {
      if (live.has(key)) continue;
      this.#byKey.delete(key);
      this.#byId.delete(a.identity);
    }
  }

  /** Keys whose identity is not their plain hash (collisions resolved). */
  salted(): string[] {
    return [...this.#byKey].filter(([, a]) => a.salted).map(([k]) => k);
  }
}
