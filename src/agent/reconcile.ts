// Writes what the engine compiled into the maps: the difference between the entries wanted
// and the entries there (a shadow of them, read from the maps at start and kept by every
// write), in an order that never lets an allowed flow drop on the way (make before break):
//   1. new rules;  2. new and changed CIDRs;  3. new and changed isolation;
//   4. new and changed pod addresses;  5. pod addresses gone;  6. isolation gone;
//   7. CIDRs gone;  8. rules gone.
// Rules referring to a new identity exist before anything resolves to it, and an identity is
// isolated only once its rules are there; what goes away goes once nothing resolves to it.
// Node addresses (host_map) are added first and removed last. Rules go in per policy, all or
// nothing (rule_ledger.ts): a policy whose new rules do not fit keeps its old ones and waits.
import { type Compiled, type CompiledRule, ruleKeyId } from "../netpol/compile.ts";
import { IPCACHE_LOCAL, type RuleKey } from "../spec/bpf_layout.ts";
import type { AgentTables } from "../datapath/tables.ts";
import { formatCidr } from "../spec/ipv4.ts";
import { writeFileAtomic } from "../spec/atomic_file.ts";
import {
  parseEnforcedSnapshot,
  RuleLedger,
  type RuleStore,
  type WaitingPolicy,
} from "./rule_ledger.ts";
import { errorMessage } from "../spec/text.ts";

export interface Desired {
  compiled: Compiled;
  /** The node's IPv4 addresses. */
  hosts: ReadonlySet<number>;
  /** Addresses whose ipcache entries belong to a CNI attachment of this node: never removed
   * here (DEL does that), even when the source does not (yet) show their pod. */
  attached: ReadonlySet<number>;
}

interface Actual {
  ipcache: Map<number, { identity: number; flags: number }>;
  isolation: Map<number, number>;
  rules: Map<string, RuleKey>;
  cidrs: Map<string, { addr: number; prefix: number; identity: number }>;
  hosts: Set<number>;
}

export interface ReconcileResult {
  /** Entries written (added, changed, removed), and of them removed. */
  writes: number;
  removed: number;
  /** Entries the maps could not take (full), by map; rule_map's are in `waiting`. */
  failed: string[];
  /** The policies whose rules are not all in rule_map, first in line first. */
  waiting: WaitingPolicy[];
}

export class Reconciler {
  readonly #ipcache: AgentTables["ipcache"];
  readonly #isolation: AgentTables["isolation"];
  readonly #rules: AgentTables["rules"];
  readonly #cidrs: AgentTables["cidrs"];
  readonly #hosts: AgentTables["hosts"];
  #actual: Actual;
  /** The next apply compares every policy's rules with the maps (after a read of them). */
  #fullRules = true;
  readonly #ledger = new RuleLedger();
  readonly #ruleStore: RuleStore;
  /** Rule entries removed so far (through the ledger), for ReconcileResult.removed. */
  #rulesRemoved = 0;
  /** Where the ledger records which policy each rule entry is in the map for (kept across a
   * restart: rule_map's keys do not say). */
  readonly #ledgerFile: string | undefined;
  readonly #onLedgerFileError: (err: Error) => void;
  #lastLedgerError: string | undefined;

  /** The maps it writes: agentTables() of a datapath (maps.ts), or fakes (table_fake.ts). */
  constructor(
    tables: AgentTables,
    opts: { ledgerFile?: string; onLedgerFileError?: (err: Error) => void } = {},
  ) {
    this.#ledgerFile = opts.ledgerFile;
    this.#onLedgerFileError = opts.onLedgerFileError ?? (() => {});
    if (this.#ledgerFile !== undefined) {
      const previous = readLedgerFile(this.#ledgerFile);
      if (previous !== undefined) this.#ledger.adopt(previous);
    }
    this.#ipcache = tables.ipcache;
    this.#isolation = tables.isolation;
    this.#rules = tables.rules;
    this.#cidrs = tables.cidrs;
    this.#hosts = tables.hosts;
    this.#actual = this.read();
    const rules = tables.rules;
    this.#ruleStore = {
      entries: () => this.#actual.rules,
      get capacity() {
        return rules.capacity;
      },
      add: (id, key) => (this.#rules.set(key, true), this.#actual.rules.set(id, key)),
      remove: (id, key) => {
        this.#rules.delete(key);
        this.#actual.rules.delete(id);
        this.#rulesRemoved++;
      },
    };
  }

  /** The maps' contents now (at start, and to repair drift). */
  read(): Actual {
    return {
      ipcache: new Map(this.#ipcache.list()),
      isolation: new Map(this.#isolation.list()),
      rules: new Map(this.#rules.list().map(([k]) => [ruleKeyId(k), k])),
      cidrs: new Map(
        this.#cidrs.list().map((
          [k, identity],
        ) => [formatCidr({ network: k.addr, prefix: k.prefix }), { ...k, identity }]),
      ),
      hosts: new Set(this.#hosts.list().map(([ip]) => ip)),
    };
  }

  /** Forgets the shadow and reads the maps again. */
  refresh(): void {
    this.#actual = this.read();
    this.#fullRules = true;
  }

  /** Addresses someone else removed from ipcache_map (CNI DEL): no longer in the shadow. */
  forgetAddresses(ips: Iterable<number>): void {
    for (const ip of ips) this.#actual.ipcache.delete(ip);
  }

  /** What the maps say each address's identity is (to seed identities after a restart). */
  actualIdentities(): ReadonlyMap<number, number> {
    return new Map([...this.#actual.ipcache].map(([ip, e]) => [ip, e.identity]));
  }

  actualHosts(): ReadonlySet<number> {
    return this.#actual.hosts;
  }

  actualCidrs(): ReadonlyMap<string, number> {
    return new Map([...this.#actual.cidrs].map(([k, e]) => [k, e.identity]));
  }

  apply(d: Desired): ReconcileResult {
    const a = this.#actual;
    const c = d.compiled;
    let writes = 0;
    let removed = 0;
    const rulesRemovedBefore = this.#rulesRemoved;
    const failed: string[] = [];
    const attempt = (what: string, fn: () => void, removal = false) => {
      try {
        fn();
        writes++;
        if (removal) removed++;
      } catch (err) {
        failed.push(`${what}: ${errorMessage(err)}`);
      }
    };
    // 0. Node addresses first.
    for (const ip of d.hosts) {
      if (!a.hosts.has(ip)) attempt("host_map", () => (this.#hosts.set(ip, true), a.hosts.add(ip)));
    }
    // 1. New rules, policy by policy (only the policies that changed, unless the shadow was
    // read again).
    const made = this.#ledger.make(this.#ruleStore, c.policyRules, this.#fullRules);
    this.#fullRules = false;
    writes += made.writes;
    failed.push(...made.failed);
    // 2. New and changed CIDRs.
    for (const [text, e] of c.cidrs) {
      if (a.cidrs.get(text)?.identity === e.identity) continue;
      attempt("cidr_map", () => {
        this.#cidrs.set({ addr: e.cidr.network, prefix: e.cidr.prefix }, e.identity);
        a.cidrs.set(text, { addr: e.cidr.network, prefix: e.cidr.prefix, identity: e.identity });
      });
    }
    // 3. New and changed isolation.
    for (const [id, flags] of c.isolation) {
      if (a.isolation.get(id) === flags) continue;
      attempt("isolation_map", () => (this.#isolation.set(id, flags), a.isolation.set(id, flags)));
    }
    // 4. New and changed pod addresses.
    for (const [ip, e] of c.ipcache) {
      const flags = e.local ? IPCACHE_LOCAL : 0;
      const have = a.ipcache.get(ip);
      if (have !== undefined && have.identity === e.identity && have.flags === flags) continue;
      attempt("ipcache_map", () => {
        this.#ipcache.set(ip, { identity: e.identity, flags });
        a.ipcache.set(ip, { identity: e.identity, flags });
      });
    }
    // 5. Pod addresses gone (not a local attachment's: DEL removes those).
    for (const ip of [...a.ipcache.keys()]) {
      if (c.ipcache.has(ip) || d.attached.has(ip)) continue;
      attempt("ipcache_map", () => (this.#ipcache.delete(ip), a.ipcache.delete(ip)), true);
    }
    // 6. Isolation gone.
    for (const id of [...a.isolation.keys()]) {
      if (!c.isolation.has(id)) {
        attempt(
          "isolation_map",
          () => (this.#isolation.delete(id), a.isolation.delete(id)),
          true,
        );
      }
    }
    // 7. CIDRs gone.
    for (const [text, e] of [...a.cidrs]) {
      if (!c.cidrs.has(text)) {
        attempt("cidr_map", () => (this.#cidrs.delete(e), a.cidrs.delete(text)), true);
      }
    }
    // 8. Rules gone (then the waiting policies' rules, in line, into the room that made),
    // then node addresses gone.
    const swept = this.#ledger.sweep(this.#ruleStore);
    writes += swept.writes;
    failed.push(...swept.failed);
    for (const ip of [...a.hosts]) {
      if (!d.hosts.has(ip)) {
        attempt("host_map", () => (this.#hosts.delete(ip), a.hosts.delete(ip)), true);
      }
    }
    removed += this.#rulesRemoved - rulesRemovedBefore;
    if (this.#ledgerFile !== undefined) this.#recordLedger(this.#ledgerFile);
    return { writes, removed, failed, waiting: this.#ledger.waiting() };
  }

  /** Not a refused map write: the maps are right, only a restart would lose track of an
   * update waiting for room (retried on the next pass). */
  #recordLedger(path: string): void {
    const enforced = this.#ledger.snapshot();
    if (enforced === undefined) return;
    try {
      Deno.mkdirSync(path.slice(0, path.lastIndexOf("/")) || "/", { recursive: true, mode: 0o700 });
      writeFileAtomic(path, JSON.stringify(enforced));
      this.#ledger.recorded();
    } catch (err) {
      // Not again until the next change: a read-only or full directory stays so.
      this.#ledger.recorded();
      const message = String(err);
      if (message !== this.#lastLedgerError) this.#onLedgerFileError(err as Error);
      this.#lastLedgerError = message;
    }
  }

  /** What the maps hold, as the engine's entries (for `policy explain` to judge a flow as the
   * datapath does): each rule entry with the rules of the policies it is written for. */
  actualEntries(): Compiled {
    const a = this.#actual;
    const sources = this.#ledger.sources();
    const rules = new Map<string, CompiledRule>();
    for (const [id, key] of a.rules) rules.set(id, { key, sources: sources.get(id) ?? [] });
    return {
      identities: new Map(),
      ipcache: new Map(
        [...a.ipcache].map(([ip, e]) => [ip, {
          identity: e.identity,
          local: (e.flags & IPCACHE_LOCAL) !== 0,
        }]),
      ),
      isolation: new Map(a.isolation),
      cidrs: new Map(
        [...a.cidrs].map(([text, e]) => [text, {
          cidr: { network: e.addr, prefix: e.prefix },
          identity: e.identity,
        }]),
      ),
      rules,
      policyRules: new Map(),
    };
  }

  counts(): { ipcache: number; isolation: number; rules: number; cidrs: number; hosts: number } {
    const a = this.#actual;
    return {
      ipcache: a.ipcache.size,
      isolation: a.isolation.size,
      rules: a.rules.size,
      cidrs: a.cidrs.size,
      hosts: a.hosts.size,
    };
  }
}

/** The ledger's record from a previous run; none when missing or not one (then every rule
 * entry no policy claims at start goes, as before there was a record). */
function readLedgerFile(path: string): ReturnType<typeof parseEnforcedSnapshot> {
  try {
    return parseEnforcedSnapshot(JSON.parse(Deno.readTextFileSync(path)));
  } catch {
    return undefined;
  }
}
