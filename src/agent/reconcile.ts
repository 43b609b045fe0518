// Writes what the engine compiled into the maps: the difference between the entries wanted
// and the entries there (a shadow of them, read from the maps at start and kept by every
// write), in an order that never lets an allowed flow drop on the way (make before break):
//   1. new rules;  2. new and changed CIDRs;  3. new and changed isolation;
//   4. new and changed pod addresses;  5. pod addresses gone;  6. isolation gone;
//   7. CIDRs gone;  8. rules gone.
// Rules referring to a new identity exist before anything resolves to it, and an identity is
// isolated only once its rules are there; what goes away goes once nothing resolves to it.
// Node addresses (host_map) are added first and removed last.
import { type Compiled, ruleKeyId } from "../netpol/compile.ts";
import type { Datapath } from "../datapath/loader.ts";
import {
  CIDR_MAP,
  HOST_MAP,
  IPCACHE_LOCAL,
  IPCACHE_MAP,
  ISOLATION_MAP,
  RULE_MAP,
  type RuleKey,
} from "../datapath/layout.ts";
import { CidrMap, HostMap, IpcacheMap, IsolationMap, RuleMap } from "../datapath/maps.ts";
import { formatCidr } from "../spec/ipv4.ts";

export interface Desired {
  compiled: Compiled;
  /** The node's IPv4 addresses. */
  hosts: ReadonlySet<number>;
  /** Addresses whose ipcache entries belong to a CNI attachment of this node: never removed
   * here (DEL does that), even when the source does not (yet) show their pod. */
  attached: ReadonlySet<number>;
  /** The rule ids that changed since the last apply (CompileCache.takeChanges()): only they
   * are compared, unless the shadow was read again since (then every rule is). */
  ruleChanges?: ReadonlySet<string>;
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
  /** Entries the maps could not take (full), by map. */
  failed: string[];
}

/** The entries of `m` whose keys are in `ids`. */
function* pick<V>(m: ReadonlyMap<string, V>, ids: ReadonlySet<string>): Iterable<[string, V]> {
  for (const id of ids) {
    const v = m.get(id);
    if (v !== undefined) yield [id, v];
  }
}

export class Reconciler {
  readonly #ipcache: IpcacheMap;
  readonly #isolation: IsolationMap;
  readonly #rules: RuleMap;
  readonly #cidrs: CidrMap;
  readonly #hosts: HostMap;
  #actual: Actual;
  /** The next apply compares every rule (after a read of the maps, or a failed write). */
  #fullRules = true;

  constructor(dp: Datapath) {
    this.#ipcache = new IpcacheMap(dp.fd(IPCACHE_MAP));
    this.#isolation = new IsolationMap(dp.fd(ISOLATION_MAP));
    this.#rules = new RuleMap(dp.fd(RULE_MAP));
    this.#cidrs = new CidrMap(dp.fd(CIDR_MAP));
    this.#hosts = new HostMap(dp.fd(HOST_MAP));
    this.#actual = this.read();
  }

  /** The maps' contents now (at start, and to repair drift). */
  read(): Actual {
    return {
      ipcache: new Map(
        this.#ipcache.list().map((e) => [e.ip, { identity: e.identity, flags: e.flags }]),
      ),
      isolation: new Map(this.#isolation.list().map((e) => [e.identity, e.flags])),
      rules: new Map(this.#rules.list().map((k) => [ruleKeyId(k), k])),
      cidrs: new Map(
        this.#cidrs.list().map((e) => [formatCidr({ network: e.addr, prefix: e.prefix }), e]),
      ),
      hosts: new Set(this.#hosts.list()),
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
    const failed: string[] = [];
    const attempt = (what: string, fn: () => void, removal = false) => {
      try {
        fn();
        writes++;
        if (removal) removed++;
      } catch (err) {
        failed.push(`${what}: ${(err as Error).message}`);
      }
    };
    // 0. Node addresses first.
    for (const ip of d.hosts) {
      if (!a.hosts.has(ip)) attempt("host_map", () => (this.#hosts.add(ip), a.hosts.add(ip)));
    }
    // Which rules to compare: those that changed, or all.
    const full = this.#fullRules || d.ruleChanges === undefined;
    const ruleIds = full ? undefined : d.ruleChanges!;
    const failedBefore = failed.length;
    // 1. New rules.
    for (const [id, r] of ruleIds === undefined ? c.rules : pick(c.rules, ruleIds)) {
      if (!a.rules.has(id)) {
        attempt("rule_map", () => (this.#rules.add(r.key), a.rules.set(id, r.key)));
      }
    }
    // 2. New and changed CIDRs.
    for (const [text, e] of c.cidrs) {
      if (a.cidrs.get(text)?.identity === e.identity) continue;
      attempt("cidr_map", () => {
        this.#cidrs.set(e.cidr.network, e.cidr.prefix, e.identity);
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
        this.#ipcache.set(ip, e.identity, flags);
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
        attempt(
          "cidr_map",
          () => (this.#cidrs.delete(e.addr, e.prefix), a.cidrs.delete(text)),
          true,
        );
      }
    }
    // 8. Rules gone, then node addresses gone.
    for (const [id, k] of ruleIds === undefined ? [...a.rules] : [...pick(a.rules, ruleIds)]) {
      if (!c.rules.has(id)) {
        attempt("rule_map", () => (this.#rules.delete(k), a.rules.delete(id)), true);
      }
    }
    // A refused write is retried by the next apply, which then compares everything.
    this.#fullRules = failed.length > failedBefore;
    for (const ip of [...a.hosts]) {
      if (!d.hosts.has(ip)) {
        attempt("host_map", () => (this.#hosts.delete(ip), a.hosts.delete(ip)), true);
      }
    }
    return { writes, removed, failed };
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
