// Which version of each policy's rules rule_map holds, and the policies waiting for room in
// it. A policy's rules go in all or nothing: when its new rules do not all fit, the ones this
// attempt wrote are taken out again, its previous version (if any) stays whole (make before
// break holds when the map is full), and it waits in line. Waiting policies are admitted in
// the order they were first refused, and a policy that needs room may not pass one that
// waits, so slots freed for the first in line go to it. What it enforced is kept across a
// restart (snapshot(), adopt()): a policy whose update did not fit before still has its old
// rules in the map, and only this record says they are its own. Pure: the map is behind
// RuleStore.
import type { RuleKey } from "../spec/bpf_layout.ts";
import type { CompiledRule } from "../netpol/compile.ts";
import { errorMessage } from "../spec/text.ts";

/** rule_map as the ledger sees it: the entries it holds (the reconciler's shadow) and its
 * writes, which throw when the map refuses an entry. */
export interface RuleStore {
  entries(): ReadonlyMap<string, RuleKey>;
  readonly capacity: number;
  add(id: string, key: RuleKey): void;
  remove(id: string, key: RuleKey): void;
}

/** Rule id -> its entry, of one policy. */
export type PolicyRules = ReadonlyMap<string, CompiledRule>;

/** A policy whose rules are not all in the map. */
export interface WaitingPolicy {
  policy: string;
  /** Entries of its rules the map does not hold, and the map's free slots, when last tried. */
  needed: number;
  free: number;
  /** Why it is not in: the map's refusal, or the policies ahead of it in line. */
  reason: string;
  /** When it was first refused (ISO time), and its place in line (1 = next). */
  since: string;
  place: number;
  /** It has an older version whose rules the map still holds (an update that did not fit). */
  keepsPrevious: boolean;
}

interface Wait {
  needed: number;
  free: number;
  reason: string;
  since: string;
}

/** Policy -> the ids of the entries its enforced version holds, with the policy rules each is
 * in the map for (what the ledger records across a restart). */
export type EnforcedSnapshot = Record<string, [string, CompiledRule["sources"]][]>;

export interface LedgerPass {
  writes: number;
  /** Write errors other than the ones that made a policy wait (none expected). */
  failed: string[];
}

export class RuleLedger {
  /** The version of each policy's rules the map holds whole. */
  readonly #enforced = new Map<string, PolicyRules>();
  /** Rule id -> how many enforced versions hold it. */
  readonly #refs = new Map<string, number>();
  /** In the order they were first refused (a Map keeps the first insertion's place). */
  readonly #waiting = new Map<string, Wait>();
  /** Ids no enforced version holds any more: removed by sweep(). */
  #doomed = new Set<string>();
  #desired: ReadonlyMap<string, PolicyRules> = new Map();
  /** What a previous run enforced (adopt()), taken in by the next make(). */
  #adopted: EnforcedSnapshot | undefined;
  /** The enforced versions changed since they were last recorded(). */
  #changed = false;
  readonly #now: () => Date;

  constructor(now: () => Date = () => new Date()) {
    this.#now = now;
  }

  /** Writes the rules of every policy whose version changed (all of them when `full`: after
   * a read of the maps, to repair drift), first the waiting ones in their order, then the
   * others by name; forgets policies that are gone (their entries go in sweep()). */
  make(store: RuleStore, desired: ReadonlyMap<string, PolicyRules>, full: boolean): LedgerPass {
    this.#desired = desired;
    if (this.#adopted !== undefined) this.#takeAdopted(store);
    for (const [p, rules] of [...this.#enforced]) {
      if (!desired.has(p)) this.#release(p, rules);
    }
    for (const p of [...this.#waiting.keys()]) if (!desired.has(p)) this.#waiting.delete(p);
    const pending = [...this.#waiting.keys()];
    for (const p of [...desired.keys()].sort()) {
      if (this.#waiting.has(p)) continue;
      if (full || desired.get(p) !== this.#enforced.get(p)) pending.push(p);
    }
    if (full) { for (const id of store.entries().keys()) this.#doomed.add(id); }
    return this.#admit(store, pending);
  }

  /** Removes the entries no enforced version holds, then admits waiting policies into the
   * room that made, in line, until one does not fit (its rules' old versions then go too). */
  sweep(store: RuleStore): LedgerPass {
    const out: LedgerPass = { writes: 0, failed: [] };
    for (;;) {
      for (const id of this.#doomed) {
        if ((this.#refs.get(id) ?? 0) > 0) continue;
        const key = store.entries().get(id);
        if (key === undefined) continue;
        try {
          store.remove(id, key);
          out.writes++;
        } catch (err) {
          out.failed.push(`rule_map: ${errorMessage(err)}`);
        }
      }
      this.#doomed = new Set();
      const before = this.#waiting.size;
      if (before === 0) return out;
      const r = this.#admit(store, [...this.#waiting.keys()]);
      out.writes += r.writes;
      out.failed.push(...r.failed);
      if (this.#waiting.size === before) return out;
    }
  }

  /** Takes as enforced what a previous ledger's snapshot() recorded (before the first make()
   * of a new agent): the entries of it the map still holds are those policies' own, so an
   * update that did not fit before keeps its old rules, and a policy gone since loses them. */
  adopt(previous: EnforcedSnapshot): void {
    this.#adopted = previous;
  }

  /** What is enforced, when it changed since it was last recorded() (for adopt()). */
  snapshot(): EnforcedSnapshot | undefined {
    if (!this.#changed) return undefined;
    const out: EnforcedSnapshot = {};
    for (const [p, rules] of this.#enforced) {
      out[p] = [...rules].map(([id, r]) => [id, r.sources]);
    }
    return out;
  }

  /** The last snapshot() is kept. */
  recorded(): void {
    this.#changed = false;
  }

  /** The policies not enforced as written, first in line first. */
  waiting(): WaitingPolicy[] {
    return [...this.#waiting].map(([policy, w], i) => ({
      policy,
      ...w,
      place: i + 1,
      keepsPrevious: this.#enforced.has(policy),
    }));
  }

  /** Rule id -> the policy rules it is in the map for (enforced versions), for explain. */
  sources(): Map<string, CompiledRule["sources"]> {
    const out = new Map<string, CompiledRule["sources"]>();
    for (const rules of this.#enforced.values()) {
      for (const [id, r] of rules) {
        const have = out.get(id);
        if (have === undefined) out.set(id, [...r.sources]);
        else have.push(...r.sources);
      }
    }
    return out;
  }

  #takeAdopted(store: RuleStore): void {
    const previous = this.#adopted ?? {};
    this.#adopted = undefined;
    for (const [p, entries] of Object.entries(previous)) {
      if (this.#enforced.has(p) || !Array.isArray(entries)) continue;
      const rules = new Map<string, CompiledRule>();
      for (const [id, sources] of entries) {
        const key = store.entries().get(id);
        if (key !== undefined) rules.set(id, { key, sources });
      }
      if (rules.size === 0) continue;
      for (const id of rules.keys()) this.#refs.set(id, (this.#refs.get(id) ?? 0) + 1);
      this.#enforced.set(p, rules);
    }
  }

  /** Drops policy `p`'s enforced version: ids no other version holds go in sweep(). */
  #release(p: string, rules: PolicyRules): void {
    for (const id of rules.keys()) {
      const n = (this.#refs.get(id) ?? 0) - 1;
      if (n > 0) this.#refs.set(id, n);
      else {
        this.#refs.delete(id);
        this.#doomed.add(id);
      }
    }
    this.#enforced.delete(p);
    this.#changed = true;
  }

  #commit(p: string, rules: PolicyRules): void {
    const old = this.#enforced.get(p);
    this.#waiting.delete(p);
    if (old === rules) return;
    for (const id of rules.keys()) this.#refs.set(id, (this.#refs.get(id) ?? 0) + 1);
    if (old !== undefined) this.#release(p, old);
    this.#enforced.set(p, rules);
    this.#changed = true;
  }

  #admit(store: RuleStore, order: string[]): LedgerPass {
    const out: LedgerPass = { writes: 0, failed: [] };
    let ahead: string | undefined;
    for (const p of order) {
      const rules = this.#desired.get(p);
      if (rules === undefined) continue;
      const missing: [string, RuleKey][] = [];
      for (const [id, r] of rules) if (!store.entries().has(id)) missing.push([id, r.key]);
      if (missing.length === 0) {
        this.#commit(p, rules);
        continue;
      }
      const free = Math.max(0, store.capacity - store.entries().size);
      // An enforced version's own entries that drifted away are written back before anyone
      // in line: those slots were its own.
      if (ahead !== undefined && rules !== this.#enforced.get(p)) {
        this.#wait(p, missing.length, free, `waiting behind ${ahead}`);
        continue;
      }
      if (missing.length > free) {
        this.#wait(
          p,
          missing.length,
          free,
          `rule_map holds ${store.entries().size} of ${store.capacity} entries`,
        );
        ahead = p;
        continue;
      }
      const written: [string, RuleKey][] = [];
      let refused: Error | undefined;
      for (const [id, key] of missing) {
        try {
          store.add(id, key);
          written.push([id, key]);
        } catch (err) {
          refused = err as Error;
          break;
        }
      }
      out.writes += written.length;
      if (refused === undefined) {
        this.#commit(p, rules);
        continue;
      }
      // All or nothing: a policy half in would hold slots while it waits.
      for (const [id, key] of written) {
        try {
          store.remove(id, key);
          out.writes++;
        } catch (err) {
          out.failed.push(`rule_map: ${errorMessage(err)}`);
        }
      }
      const left = Math.max(0, store.capacity - store.entries().size);
      this.#wait(p, missing.length, left, refused.message);
      ahead = p;
    }
    return out;
  }

  #wait(p: string, needed: number, free: number, reason: string): void {
    const since = this.#waiting.get(p)?.since ?? this.#now().toISOString();
    this.#waiting.set(p, { needed, free, reason, since });
  }
}

/** A snapshot() read back (from JSON), or undefined when it is not one. */
export function parseEnforcedSnapshot(v: unknown): EnforcedSnapshot | undefined {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined;
  for (const entries of Object.values(v)) {
    if (!Array.isArray(entries)) return undefined;
    for (const e of entries) {
      if (!Array.isArray(e) || typeof e[0] !== "string" || !Array.isArray(e[1])) return undefined;
    }
  }
  return v as EnforcedSnapshot;
}

/** Why a policy is not enforced, in a few words (status, ADD's error). */
export function describeWait(w: WaitingPolicy): string {
  return `needs ${w.needed} more rule_map entr${
    w.needed === 1 ? "y" : "ies"
  }, ${w.free} free (${w.reason})${w.keepsPrevious ? "; its previous rules stay in force" : ""}`;
}
