// The policy agent's core: a source fills the model store; every change (debounced) is
// compiled by the engine against this node's view (local_view.ts) and written by the
// reconciler, make before break. CNI ADD asks it for a pod's identity (it answers once the
// pod's entries are in the maps), DEL tells it an attachment is gone. Nothing here opens a
// socket or parses a command line (server.ts, run.ts do).
import type { RoutingStatus } from "./routing.ts";
import type { MasqueradeStatus } from "./masquerade.ts";
import {
  compile,
  CompileCache,
  type Compiled,
  evaluate,
  type FlowEnd,
  IdentityAllocator,
  labelSetKey,
  matches,
  type Model,
  objectKey,
  simulate,
} from "../netpol/mod.ts";
import type { Decision, Pod, Protocol } from "../netpol/model.ts";
import type { SimVerdict } from "../netpol/simulate.ts";
import { isCidrIdentity, isPodIdentity } from "../netpol/identity_alloc.ts";
import { IPPROTO } from "../spec/rule_key.ts";
import type { AddRequest, DelRequest, ExplainEnd, ExplainRequest } from "../spec/agent_wire.ts";
import { formatIpv4, parseIpv4 } from "../spec/ipv4.ts";
import { type Attachment, attachmentKey, localView } from "./local_view.ts";
import type { Reconciler, ReconcileResult } from "./reconcile.ts";
import { describeWait, type WaitingPolicy } from "./rule_ledger.ts";
import { ModelStore } from "./model_store.ts";
import type { AgentLog } from "../log.ts";
import type { DatapathEvent } from "../spec/bpf_layout.ts";
import type { FlowNames } from "./flow_record.ts";
import { FlowNamer } from "./flow_names.ts";
import type { FlowLogStats } from "./flow_log.ts";
import type { RevocationStatus, Revoker } from "./ct_revoke.ts";
import { changeMayEnd, rulesRemoved } from "../netpol/revoke_plan.ts";
import type { ReconcileEvent } from "./metrics.ts";
import { checkNodes, type NodeCheck } from "../netpol/node_check.ts";
import type { ClusterNode, NodeRouteState } from "../spec/node.ts";
import { type Cidr, formatCidr } from "../spec/ipv4.ts";

export interface AgentOptions {
  /** spec.nodeName of this node's pods (pods scheduled here are local even before ADD). */
  node: string;
  /** How long ADD waits for its pod to show up in the source. */
  addWaitMs: number;
  /** Coalesces bursts of changes into one reconcile. */
  debounceMs: number;
  log: AgentLog;
  /** The node's IPv4 addresses now. */
  hostAddresses(): Set<number>;
  /** Ends the tracked connections a reconcile's writes no longer allow (ct_revoke.ts). */
  revoker?: Pick<Revoker, "sweep" | "status">;
  /** Told of every reconcile (the metrics). */
  observe?: (e: ReconcileEvent) => void;
  /** The Service CIDRs no node's pod CIDR may overlap (the datapath's config). */
  serviceCidrs?: () => readonly Cidr[];
}

/** A node as `agent status` lists it. */
export interface NodeStatus {
  name: string;
  /** The pod CIDRs it may use (withheld ones left out). */
  podCidrs: string[];
  address: string | null;
  /** This node itself (its pod CIDR is what "usePodCidr" gives). */
  self: boolean;
  /** What the routing made of it; "routing not running" when nothing routes. */
  routing: NodeRouteState;
  /** What is wrong with its Node object (object and field). */
  problems: string[];
}

export interface AgentStatus {
  synced: boolean;
  /** Changes the source delivered so far, and the one the maps reflect. */
  generation: number;
  appliedGeneration: number;
  node: string;
  attachments: number;
  pods: number;
  namespaces: number;
  policies: number;
  entries: ReturnType<Reconciler["counts"]>;
  lastReconcile: { at: string; ms: number; writes: number; failed: number } | null;
  /** Entries the maps refused at the last reconcile (full maps). */
  failed: string[];
  /** Policies whose rules are not all in rule_map (full): not enforced as written. Their
   * pods are isolated (fail closed) and what an older version allowed stays allowed. */
  notEnforced: NotEnforced[];
  /** Tracked connections ended by reconciles. */
  revocation?: RevocationStatus;
  /** The source's problems (at most MAX_PROBLEMS): those of its files now (a file's go when
   * it is fixed or removed), then the latest others (bad objects, API errors). */
  problems: string[];
  /** Problems left out of `problems` by its cap (older ones of the others included). */
  problemsNotShown: number;
  /** The cluster's nodes, by name. */
  nodes: NodeStatus[];
  /** CNI calls handed over by plugin processes (added by the server): run here, by command,
   * and declined (run by the process). */
  cni?: { handled: Record<string, number>; declined: number; lastMs: Record<string, number> };
  /** The flow log's counters (added by the process, with --flow-log). */
  flowLog?: FlowLogStats;
  /** Where `/metrics`, `/healthz` and `/readyz` are served (added by the server), or null. */
  metricsAddress?: string | null;
  /** The node's routing (src/agent/routing.ts), when it runs. */
  routing?: RoutingStatus;
  /** The masquerade's state (added by the process), or null with --no-masquerade. */
  masquerade?: MasqueradeStatus | null;
}

/** A policy not enforced as written (rule_map full), with the pods it selects. */
export interface NotEnforced extends WaitingPolicy {
  /** The pods it selects (at most MAX_LISTED), and how many in all. */
  pods: string[];
  podCount: number;
}

export interface Explanation {
  flow: { from: string; to: string; protocol: Protocol; port: number };
  /** What the maps do with it: the datapath's verdict when both ends have an address, else
   * the engine's. */
  allowed: boolean;
  /** The policies deciding it (isolating either end) that are not enforced as written. */
  notEnforced: NotEnforced[];
  /** The engine's verdict (NetworkPolicy's semantics). */
  decision: Decision;
  /** What the entries in the maps give for it (the datapath's lookups), when both ends have
   * an address. */
  datapath: SimVerdict | null;
}

export class AgentError extends Error {
  override name = "AgentError";
}

const MAX_PROBLEMS = 20;
const MAX_LISTED = 20;

export class Agent {
  readonly store: ModelStore;
  readonly #rec: Reconciler;
  readonly #opts: AgentOptions;
  readonly #pods = new IdentityAllocator("pod");
  readonly #cidrs = new IdentityAllocator("cidr");
  readonly #cache = new CompileCache();
  readonly #attachments = new Map<string, Attachment>();
  #compiled: Compiled | undefined;
  /** The model the maps were last written from (what the datapath enforces). */
  #enforced: Model | undefined;
  readonly #namer = new FlowNamer();
  #hosts = new Set<number>();
  #seeded = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #waiters = new Set<() => void>();
  #applied = -1;
  #last: AgentStatus["lastReconcile"] = null;
  #failed: string[] = [];
  #waiting: WaitingPolicy[] = [];
  /** Problems with no file to clear them: the latest, and how many older ones fell off. */
  #problems: string[] = [];
  #problemsDropped = 0;
  /** Each file's problems now, by path. */
  #fileProblems = new Map<string, string[]>();
  #stopped = false;
  /** When the oldest change not yet in the maps arrived (performance.now()). */
  #pendingSince: number | undefined;
  /** The nodes as last checked, from which model snapshot, and who wants to know of changes. */
  #nodes: NodeCheck = { nodes: new Map(), problems: new Map() };
  #nodesFrom: ReadonlyMap<string, ClusterNode> | undefined;
  #nodesKey = "";
  #servicesKey = "";
  readonly #nodeListeners = new Set<() => void>();
  #routeState: ((name: string) => NodeRouteState | undefined) | undefined;

  constructor(rec: Reconciler, attachments: Attachment[], opts: AgentOptions) {
    this.#rec = rec;
    this.#opts = opts;
    for (const a of attachments) this.#attachments.set(attachmentKey(a), a);
    this.store = new ModelStore({
      changed: () => {
        this.#pendingSince ??= performance.now();
        this.#schedule();
        for (const w of [...this.#waiters]) w();
      },
      problem: (message) => {
        opts.log.warn(message);
        this.#problems.push(message);
        if (this.#problems.length > MAX_PROBLEMS) {
          this.#problems.shift();
          this.#problemsDropped++;
        }
      },
      problems: (source, messages) => {
        const had = new Set(this.#fileProblems.get(source) ?? []);
        for (const m of messages) if (!had.has(m)) opts.log.warn(m);
        if (messages.length === 0) this.#fileProblems.delete(source);
        else this.#fileProblems.set(source, [...messages]);
      },
    });
    this.#hosts = opts.hostAddresses();
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      try {
        this.reconcile();
      } catch (err) {
        this.#opts.log.error("reconcile failed", { error: String(err) });
      }
    }, this.#opts.debounceMs);
  }

  /** Gives every pod and CIDR the identity the maps hold for it (after a restart), before
   * the first compile, so restarting changes no entry. */
  #seed(model: Model): void {
    const actual = this.#rec.actualIdentities();
    const pods = [...model.pods.values()].sort((a, b) =>
      objectKey(a.namespace, a.name) < objectKey(b.namespace, b.name) ? -1 : 1
    );
    for (const pod of pods) {
      if (pod.hostNetwork) continue;
      for (const ip of pod.ips) {
        const id = actual.get(ip);
        if (id !== undefined && isPodIdentity(id)) {
          this.#pods.seed(labelSetKey(pod.namespace, pod.labels), id);
          break;
        }
      }
    }
    for (const [text, id] of [...this.#rec.actualCidrs()].sort()) {
      if (isCidrIdentity(id)) this.#cidrs.seed(text, id);
    }
    this.#seeded = true;
  }

  /** Compiles the model and writes the difference; a no-op until the source has synced (an
   * empty model would remove every entry of a restarted agent). */
  reconcile(opts: { hosts?: "add" | "exact" } = {}): void {
    if (!this.store.isSynced || this.#stopped) return;
    const started = performance.now();
    const generation = this.store.generation;
    const view = localView(this.store.model, this.#attachments.values(), this.#opts.node);
    if (!this.#seeded) this.#seed(view.model);
    const compiled = compile(view.model, {
      pods: this.#pods,
      cidrs: this.#cidrs,
      isLocal: view.isLocal,
      cache: this.#cache,
    });
    // Node addresses: added when seen; removed only by a resync's exact pass (a bridge
    // address the CNI plugin just added and registered must not be taken back by a
    // reconcile that read the addresses a moment before).
    const now = this.#opts.hostAddresses();
    const hosts = opts.hosts === "exact" ? now : new Set([...now, ...this.#rec.actualHosts()]);
    const ruleChanges = rulesRemoved(this.#compiled, compiled);
    const hostsBefore = new Set(this.#rec.actualHosts());
    let r = this.#rec.apply({ compiled, hosts, attached: view.attached });
    if (opts.hosts === "exact") {
      // Anything that appeared while the pass ran goes back at once.
      const again = this.#opts.hostAddresses();
      if ([...again].some((ip) => !now.has(ip))) {
        const r2 = this.#rec.apply({ compiled, hosts: again, attached: view.attached });
        r = {
          writes: r.writes + r2.writes,
          removed: r.removed + r2.removed,
          failed: [...r.failed, ...r2.failed],
          waiting: r2.waiting,
        };
      }
    }
    // Within the reconcile (before --wait-synced can answer): a change, or the periodic pass
    // (which also catches a connection recorded by a packet judged while the writes ran).
    const hostsAfter = this.#rec.actualHosts();
    if (
      opts.hosts === "exact" ||
      (r.writes > 0 &&
        changeMayEnd(this.#compiled, compiled, ruleChanges, {
          before: hostsBefore,
          after: hostsAfter,
        }))
    ) this.#revoke(compiled);
    const ended = performance.now();
    const ms = ended - started;
    this.#observe(r, ms, ended);
    this.#hosts = hosts;
    this.#compiled = compiled;
    this.#enforced = view.model;
    this.#applied = generation;
    this.#failed = r.failed;
    this.#reportWaiting(r.waiting);
    this.#last = { at: new Date().toISOString(), ms, writes: r.writes, failed: r.failed.length };
    this.#checkNodes();
    if (r.failed.length > 0) {
      this.#opts.log.error("some entries could not be written", {
        failed: r.failed.slice(0, 10),
        count: r.failed.length,
      });
    }
    if (r.writes > 0) {
      this.#opts.log.info("reconciled", {
        generation,
        writes: r.writes,
        ms: Math.round(ms * 100) / 100,
        ...this.#rec.counts(),
      });
    }
    for (const w of [...this.#waiters]) w();
  }

  /** Checks the Node objects again when they changed; logs new problems and tells the
   * listeners when the nodes others see changed. */
  #checkNodes(): void {
    const from = this.store.model.nodes;
    const services = this.#opts.serviceCidrs?.() ?? [];
    const servicesKey = services.map(formatCidr).join(",");
    if (from === this.#nodesFrom && servicesKey === this.#servicesKey) return;
    const before = this.#nodes;
    const now = checkNodes(from, services);
    this.#nodesFrom = from;
    this.#servicesKey = servicesKey;
    this.#nodes = now;
    const seen = new Set([...before.problems.values()].flat());
    for (const p of [...now.problems.values()].flat()) {
      if (!seen.has(p)) this.#opts.log.warn(p);
    }
    const key = JSON.stringify([...now.nodes.values()]);
    if (key === this.#nodesKey) return;
    this.#nodesKey = key;
    for (const cb of [...this.#nodeListeners]) {
      try {
        cb();
      } catch (err) {
        this.#opts.log.error("node change listener failed", { error: String(err) });
      }
    }
  }

  /** The cluster's nodes (once the source has synced), checked: a pod CIDR two nodes claim
   * or that overlaps a Service CIDR is left out of their podCidrs. */
  nodes(): ReadonlyMap<string, ClusterNode> {
    return this.#nodes.nodes;
  }

  /** Calls `cb` after a reconcile whenever nodes() changed (not for the same nodes again);
   * returns how to stop. */
  onNodes(cb: () => void): () => void {
    this.#nodeListeners.add(cb);
    return () => this.#nodeListeners.delete(cb);
  }

  /** Where `agent status` reads each node's routing state (the routing reconciler). */
  setRouteState(provider: ((name: string) => NodeRouteState | undefined) | undefined): void {
    this.#routeState = provider;
  }

  /** This node's pod CIDR ("subnet": "usePodCidr"): waits for the source's first sync, then
   * answers from this node's Node object. */
  async podCidr(): Promise<Cidr> {
    if (!(await this.#waitFor(() => this.store.isSynced, this.#opts.addWaitMs))) {
      throw new AgentError(
        `the agent's source has not synced yet (waited ${this.#opts.addWaitMs} ms)`,
      );
    }
    if (this.#last === null) this.reconcile();
    this.#checkNodes();
    const name = this.#opts.node;
    const node = this.#nodes.nodes.get(name);
    if (node === undefined) {
      throw new AgentError(
        `node ${JSON.stringify(name)} is not known to the agent's source (no Node object)`,
      );
    }
    const cidr = node.podCidrs[0];
    if (cidr === undefined) {
      const why = this.#nodes.problems.get(name)?.find((p) => p.includes("spec.podCIDRs"));
      throw new AgentError(why ?? `Node ${JSON.stringify(name)} has no pod CIDR`);
    }
    return cidr;
  }

  #nodeStatus(): NodeStatus[] {
    return [...this.#nodes.nodes.values()].map((n) => {
      const self = n.name === this.#opts.node;
      const routing: NodeRouteState = this.#routeState?.(n.name) ??
        (self
          ? { routed: true, via: "this node" }
          : { routed: false, reason: "routing not running" });
      return {
        name: n.name,
        podCidrs: n.podCidrs.map(formatCidr),
        address: n.address === undefined ? null : formatIpv4(n.address),
        self,
        routing,
        problems: this.#nodes.problems.get(n.name) ?? [],
      };
    });
  }

  /** Logs the policies that started or stopped waiting for room in rule_map. */
  #reportWaiting(now: WaitingPolicy[]): void {
    const before = new Set(this.#waiting.map((w) => w.policy));
    const after = new Set(now.map((w) => w.policy));
    for (const w of now) {
      if (before.has(w.policy)) continue;
      this.#opts.log.error("policy not enforced as written: its rules do not fit in rule_map", {
        policy: w.policy,
        needed: w.needed,
        free: w.free,
        reason: w.reason,
        keepsPrevious: w.keepsPrevious,
      });
    }
    for (const p of before) {
      if (!after.has(p) && this.store.model.policies.has(p)) {
        this.#opts.log.info("policy enforced: its rules are in rule_map", { policy: p });
      }
    }
    this.#waiting = now;
  }

  #selects(policyKey: string, pod: Pod): boolean {
    const policy = this.store.model.policies.get(policyKey);
    return policy !== undefined && !pod.hostNetwork && pod.namespace === policy.namespace &&
      matches(policy.podSelector, pod.labels);
  }

  /** The waiting policies with the pods they select. */
  #notEnforced(only?: ReadonlySet<string>): NotEnforced[] {
    const m = this.store.model;
    return this.#waiting.filter((w) => only === undefined || only.has(w.policy)).map((w) => {
      const pods = [...m.pods].filter(([, pod]) => this.#selects(w.policy, pod)).map(([k]) => k)
        .sort();
      return { ...w, pods: pods.slice(0, MAX_LISTED), podCount: pods.length };
    });
  }

  #revoke(compiled: Compiled): void {
    const revoker = this.#opts.revoker;
    if (revoker === undefined) return;
    try {
      // What the maps hold now, as the datapath sees it.
      const addresses = this.#rec.actualIdentities();
      revoker.sweep({ compiled, addresses, hosts: new Set(this.#rec.actualHosts()) });
    } catch (err) {
      this.#opts.log.error("cannot end tracked connections", { error: String(err) });
    }
  }

  #observe(r: ReconcileResult, ms: number, ended: number): void {
    const first = this.#last === null;
    // A policy waiting for room in rule_map is not enforced yet either.
    const whole = r.failed.length === 0 && r.waiting.length === 0;
    const enforced = whole && this.#pendingSince !== undefined;
    // The first reconcile writes the initial sync, not a change: no delay for it.
    const enforcedAfterMs = enforced && !first ? ended - this.#pendingSince! : undefined;
    if (whole) this.#pendingSince = undefined;
    const retry = this.#failed.length > 0;
    this.#opts.observe?.({
      ms,
      writes: r.writes,
      removed: r.removed,
      failed: r.failed,
      retry,
      enforcedAfterMs,
    });
  }

  /** The periodic pass: reads the maps again (repairing anything changed behind the agent's
   * back), and the node's addresses exactly. */
  resync(): void {
    this.#rec.refresh();
    this.reconcile({ hosts: "exact" });
  }

  #waitFor(ready: () => boolean, ms: number): Promise<boolean> {
    if (ready()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve(ok);
      };
      const check = () => {
        if (ready()) done(true);
      };
      const timer = setTimeout(() => done(ready()), ms);
      this.#waiters.add(check);
    });
  }

  /** CNI ADD: records the attachment, waits for the pod, writes its entries; its identity. */
  async add(req: AddRequest): Promise<number> {
    const key = objectKey(req.namespace, req.name);
    const a: Attachment = {
      containerId: req.containerId,
      ifname: req.ifname,
      namespace: req.namespace,
      name: req.name,
      ips: req.ips.map(parseIpv4),
    };
    const ak = attachmentKey(a);
    const known = () => this.store.isSynced && this.store.model.pods.has(key);
    if (!known()) this.#opts.log.debug("ADD waits for its pod in the source", { pod: key });
    if (!(await this.#waitFor(known, this.#opts.addWaitMs))) {
      throw new AgentError(
        this.store.isSynced
          ? `pod ${key} is not known to the agent's source (waited ${this.#opts.addWaitMs} ms)`
          : `the agent's source has not synced yet (waited ${this.#opts.addWaitMs} ms)`,
      );
    }
    const pod = this.store.model.pods.get(key)!;
    if (pod.hostNetwork) throw new AgentError(`pod ${key} uses the host network`);
    this.#attachments.set(ak, a);
    this.reconcile();
    const identity = this.#compiled?.identities.get(key);
    const missing = a.ips.filter((ip) => this.#compiled?.ipcache.get(ip)?.identity !== identity);
    // Its policies' rules must be in too: a pod started under a policy not enforced as written
    // would run isolated without the flows that policy allows.
    const unenforced = this.#waiting.find((w) => this.#selects(w.policy, pod));
    if (
      identity === undefined || missing.length > 0 || this.#failed.length > 0 ||
      unenforced !== undefined
    ) {
      this.#attachments.delete(ak);
      this.#schedule();
      const why = this.#failed.length > 0
        ? `the maps refused entries: ${this.#failed[0]}`
        : unenforced !== undefined
        ? `policy ${unenforced.policy} that selects it is not enforced: ${describeWait(unenforced)}`
        : `no identity for its addresses ${missing.map(formatIpv4).join(", ")}`;
      throw new AgentError(`pod ${key}: ${why}`);
    }
    this.#opts.log.info("pod attached", {
      pod: key,
      containerId: req.containerId,
      ifname: req.ifname,
      ips: req.ips,
      identity,
    });
    return identity;
  }

  /** An ADD whose caller went away while it waited here: its attachment goes, and with it the
   * entries written for it (unlike a DEL's, which removed them itself, and which may have come
   * and gone already). */
  abandon(req: AddRequest): void {
    if (!this.#attachments.delete(attachmentKey(req))) return;
    this.reconcile();
    this.#opts.log.info("pod attachment abandoned: its ADD's caller is gone", {
      containerId: req.containerId,
      ifname: req.ifname,
      ips: req.ips,
    });
  }

  /** CNI DEL: forgets the attachment. DEL removed its addresses' entries already: the shadow
   * forgets them too, so whatever still needs them (the source showing the address for
   * another pod) is written back. */
  del(req: DelRequest): void {
    const ak = attachmentKey(req);
    const had = this.#attachments.delete(ak);
    this.#rec.forgetAddresses(req.ips.map(parseIpv4));
    this.reconcile();
    if (had) {
      this.#opts.log.info("pod detached", {
        containerId: req.containerId,
        ifname: req.ifname,
        ips: req.ips,
      });
    }
  }

  status(): AgentStatus {
    const m = this.store.model;
    return {
      synced: this.store.isSynced,
      generation: this.store.generation,
      appliedGeneration: this.#applied,
      node: this.#opts.node,
      attachments: this.#attachments.size,
      pods: m.pods.size,
      namespaces: m.namespaces.size,
      policies: m.policies.size,
      entries: this.#rec.counts(),
      lastReconcile: this.#last,
      failed: this.#failed.slice(0, 10),
      notEnforced: this.#notEnforced(),
      nodes: this.#nodeStatus(),
      ...(this.#opts.revoker ? { revocation: this.#opts.revoker.status() } : {}),
      ...this.#problemList(),
    };
  }

  #problemList(): Pick<AgentStatus, "problems" | "problemsNotShown"> {
    const files = [...this.#fileProblems].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const all = [...files.flatMap(([, m]) => m), ...this.#problems];
    return {
      problems: all.slice(0, MAX_PROBLEMS),
      problemsNotShown: Math.max(0, all.length - MAX_PROBLEMS) + this.#problemsDropped,
    };
  }

  /** Identities the last compile uses: pod label sets and CIDRs. */
  identityCounts(): { pod: number; cidr: number } {
    const c = this.#compiled;
    return { pod: c ? new Set(c.identities.values()).size : 0, cidr: c?.cidrs.size ?? 0 };
  }

  /** Why a flow is allowed or not, by the engine and by the compiled entries. */
  explain(req: ExplainRequest): Explanation {
    if (!this.store.isSynced) throw new AgentError("the agent's source has not synced yet");
    const view = localView(this.store.model, this.#attachments.values(), this.#opts.node);
    const end = (e: ExplainEnd): { flow: FlowEnd; ip: number | undefined; text: string } => {
      if ("ip" in e) {
        const ip = parseIpv4(e.ip);
        if (this.#hosts.has(ip)) return { flow: { kind: "node" }, ip, text: `${e.ip} (node)` };
        return { flow: { kind: "ip", ip }, ip, text: e.ip };
      }
      const key = objectKey(e.namespace, e.name);
      const pod: Pod | undefined = view.model.pods.get(key);
      if (pod === undefined) throw new AgentError(`pod ${key} is not known to the agent`);
      return {
        flow: { kind: "pod", namespace: e.namespace, name: e.name },
        ip: pod.ips[0],
        text: key,
      };
    };
    const from = end(req.from);
    const to = end(req.to);
    const decision = evaluate(view.model, {
      src: from.flow,
      dst: to.flow,
      protocol: req.protocol,
      port: req.port,
    });
    // Judged on what the maps hold (not on what was compiled): a policy whose rules did not
    // fit, a reconcile not done yet, show as the datapath has them.
    const datapath = from.ip !== undefined && to.ip !== undefined
      ? simulate(this.#rec.actualEntries(), {
        src: from.ip,
        dst: to.ip,
        proto: IPPROTO[req.protocol.toLowerCase() as "tcp" | "udp" | "sctp"],
        port: req.port,
      }, this.#hosts)
      : null;
    const deciding = new Set([...decision.egress.isolatedBy, ...decision.ingress.isolatedBy]);
    // A direction this node's maps do not judge (a remote pod's: its own node does) is the
    // engine's.
    const elsewhere = (d: "egress" | "ingress") =>
      datapath === null || datapath.hook === "node" || datapath[d].applies ||
      decision[d].allowed;
    return {
      flow: { from: from.text, to: to.text, protocol: req.protocol, port: req.port },
      allowed: datapath === null
        ? decision.allowed
        : datapath.allowed && elsewhere("egress") && elsewhere("ingress"),
      notEnforced: this.#notEnforced(deciding),
      decision,
      datapath,
    };
  }

  /** Pod and policy names for a datapath event (flow_names.ts); none before the first
   * reconcile. */
  flowNames(e: DatapathEvent): FlowNames {
    return this.#enforced === undefined ? {} : this.#namer.names(this.#enforced, this.#hosts, e);
  }

  /** Resolves once the maps reflect every change delivered so far (or after `ms`). */
  settled(ms: number): Promise<boolean> {
    const ready = () => this.store.isSynced && this.#applied === this.store.generation;
    if (!ready()) this.#schedule();
    return this.#waitFor(ready, ms).then((ok) => ok || (this.reconcile(), ready()));
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    for (const w of [...this.#waiters]) w();
  }
}
