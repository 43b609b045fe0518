// The agent's metrics (`/metrics`, README "Metrics and health"): what it counts as it runs
// (reconciles, enforcement delay, source events, CNI calls) and what it reads at scrape time
// (the datapath's counters and map fill, the model's sizes, the process). Every label value
// comes from a fixed set (map names, verdict reasons, CNI commands and codes, object kinds):
// no pod, address or policy names, so the series count does not grow with the cluster.
// Pure: the readers of the kernel and /proc are passed in.
import { type Labels, Registry } from "./prom.ts";
import { MAPS, STAT_NAMES, type StatName } from "../spec/bpf_layout.ts";

const SECONDS_BUCKETS = [
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
];

/** A stats_map counter (STAT_NAMES, bpf/ebpfcni.h) as a verdict and a reason: its name split
 * after the verdict, as `monitor` and `status` name it ("drop_ingress": drop, ingress; the
 * plain "allow" is a rule's). events_lost is no verdict. */
export function statLabels(name: StatName): Labels | undefined {
  if (name === "events_lost") return undefined;
  const m = name.match(/^(allow|drop|pass)(?:_(.+))?$/);
  return m ? { verdict: m[1]!, reason: m[2] ?? "rule" } : { verdict: "other", reason: name };
}

export interface MapFill {
  map: string;
  entries: number;
  capacity: number;
}

export interface ProcessFigures {
  cpuSeconds: number;
  residentBytes: number;
  virtualBytes?: number;
  heapBytes: number;
  openFds?: number;
  maxFds?: number;
  startTimeSeconds: number;
}

/** What the agent's core reports at scrape time. */
export interface ModelFigures {
  synced: boolean;
  pods: number;
  namespaces: number;
  policies: number;
  attachments: number;
  identities: { pod: number; cidr: number };
}

export interface MetricSources {
  /** The source kind, the `source` label of the enforcement delay ("kubernetes", "manifests"). */
  source: string;
  stats(): Partial<Record<StatName, bigint>>;
  maps(): MapFill[];
  model(): ModelFigures;
  process(): ProcessFigures;
}

/** Where a map entry's write or removal was refused, from the reconciler's failure text
 * ("rule_map: ..."): one of the map names, else "other". */
function mapOfFailure(text: string): string {
  const name = text.slice(0, text.indexOf(":"));
  return MAPS.some((m) => m.name === name) ? name : "other";
}

export class AgentMetrics {
  readonly registry = new Registry();
  readonly #r = this.registry;
  #sourceUp = false;

  // Datapath (read at scrape time from what the kernel counts).
  readonly packets = this.#r.counter({
    name: "ebpfcni_datapath_packets_total",
    help: "Packets the tc programs judged, by verdict and reason (stats_map, summed over CPUs).",
    labels: ["verdict", "reason"],
  });
  readonly drops = this.#r.counter({
    name: "ebpfcni_datapath_drops_total",
    help: "Packets the tc programs dropped, by reason (stats_map, summed over CPUs).",
    labels: ["reason"],
  });
  readonly eventsLost = this.#r.counter({
    name: "ebpfcni_datapath_events_lost_total",
    help: "Monitor events not delivered (over the rate limit or the ring full).",
  });
  readonly mapEntries = this.#r.gauge({
    name: "ebpfcni_map_entries",
    help: "Entries in each pinned hash, LRU and LPM map.",
    labels: ["map"],
  });
  readonly mapCapacity = this.#r.gauge({
    name: "ebpfcni_map_capacity",
    help: "Entries each pinned hash, LRU and LPM map can hold (max_entries).",
    labels: ["map"],
  });
  readonly mapFill = this.#r.gauge({
    name: "ebpfcni_map_fill_ratio",
    help: "Entries over capacity of each pinned hash, LRU and LPM map (0 to 1).",
    labels: ["map"],
  });

  // Agent.
  readonly enforceDelay = this.#r.histogram({
    name: "ebpfcni_policy_enforce_delay_seconds",
    help: "From a change the source delivered to the reconcile that wrote it into the maps.",
    labels: ["source"],
    buckets: SECONDS_BUCKETS,
  });
  readonly reconcileRuns = this.#r.counter({
    name: "ebpfcni_reconcile_runs_total",
    help: "Reconciles run (after changes, ADD and DEL, and the periodic resync).",
  });
  readonly reconcileDuration = this.#r.histogram({
    name: "ebpfcni_reconcile_duration_seconds",
    help: "Time a reconcile took: compile and map writes.",
    buckets: SECONDS_BUCKETS,
  });
  readonly written = this.#r.counter({
    name: "ebpfcni_map_entries_written_total",
    help: "Map entries the reconciler added or changed.",
  });
  readonly removed = this.#r.counter({
    name: "ebpfcni_map_entries_removed_total",
    help: "Map entries the reconciler removed.",
  });
  readonly refused = this.#r.counter({
    name: "ebpfcni_map_writes_refused_total",
    help: "Map writes the kernel refused (a full map), by map; each is retried.",
    labels: ["map"],
  });
  readonly retries = this.#r.counter({
    name: "ebpfcni_reconcile_retries_total",
    help: "Reconciles that retried entries a previous reconcile could not write.",
  });
  readonly watchRestarts = this.#r.counter({
    name: "ebpfcni_source_watch_restarts_total",
    help: "Kubernetes API watches opened again after the first, by resource.",
    labels: ["resource"],
  });
  readonly relists = this.#r.counter({
    name: "ebpfcni_source_relists_total",
    help: "Kubernetes API lists after the first (a 410 or a retry after an error), by resource.",
    labels: ["resource"],
  });
  readonly sourceErrors = this.#r.counter({
    name: "ebpfcni_source_errors_total",
    help: "Times the source lost its API server or directory (each is retried).",
  });
  readonly synced = this.#r.gauge({
    name: "ebpfcni_source_synced",
    help: "1 once the source has delivered its whole view (initial list done), else 0.",
  });
  readonly up = this.#r.gauge({
    name: "ebpfcni_source_up",
    help: "1 while the source reaches its API server or directory, 0 while it retries.",
  });
  readonly objects = this.#r.gauge({
    name: "ebpfcni_objects",
    help: "Objects the agent holds, by kind (attachment: pods attached on this node).",
    labels: ["kind"],
  });
  readonly identities = this.#r.gauge({
    name: "ebpfcni_identities",
    help: "Identities in use by the compiled policy, by kind (pod label sets, CIDRs).",
    labels: ["kind"],
  });

  // CNI calls and requests the agent served.
  readonly cniCalls = this.#r.counter({
    name: "ebpfcni_cni_calls_total",
    help: "CNI calls handed over by the plugin, by command and result code " +
      '("declined": the plugin ran it).',
    labels: ["command", "code"],
  });
  readonly cniDuration = this.#r.histogram({
    name: "ebpfcni_cni_call_duration_seconds",
    help: "Time the agent took to serve a CNI call, by command and result code.",
    labels: ["command", "code"],
    buckets: SECONDS_BUCKETS,
  });
  readonly requests = this.#r.counter({
    name: "ebpfcni_agent_requests_total",
    help: "Requests on the agent's socket, by operation and result (ok, error).",
    labels: ["op", "result"],
  });

  // Process.
  readonly cpu = this.#r.counter({
    name: "process_cpu_seconds_total",
    help: "Total user and system CPU time spent in seconds.",
  });
  readonly rss = this.#r.gauge({
    name: "process_resident_memory_bytes",
    help: "Resident memory size in bytes.",
  });
  readonly vsz = this.#r.gauge({
    name: "process_virtual_memory_bytes",
    help: "Virtual memory size in bytes.",
  });
  readonly heap = this.#r.gauge({
    name: "process_heap_bytes",
    help: "JavaScript heap in use, bytes.",
  });
  readonly fds = this.#r.gauge({
    name: "process_open_fds",
    help: "Number of open file descriptors.",
  });
  readonly maxFds = this.#r.gauge({
    name: "process_max_fds",
    help: "Maximum number of open file descriptors.",
  });
  readonly startTime = this.#r.gauge({
    name: "process_start_time_seconds",
    help: "Start time of the process since unix epoch in seconds.",
  });

  constructor(readonly sources: MetricSources) {
    this.up.set({}, 0);
    this.synced.set({}, 0);
    this.#r.collect(() => this.#collectDatapath());
    this.#r.collect(() => this.#collectModel());
    this.#r.collect(() => this.#collectProcess());
  }

  #collectDatapath(): void {
    const stats = this.sources.stats();
    const drops: Record<string, number> = {};
    for (const name of STAT_NAMES) {
      const labels = statLabels(name);
      if (labels === undefined) continue;
      const v = Number(stats[name] ?? 0n);
      this.packets.set(labels, v);
      if (labels.verdict === "drop") drops[labels.reason!] = v;
    }
    for (const [reason, v] of Object.entries(drops)) this.drops.set({ reason }, v);
    this.eventsLost.set({}, Number(stats.events_lost ?? 0n));
    for (const m of this.sources.maps()) {
      this.mapEntries.set({ map: m.map }, m.entries);
      this.mapCapacity.set({ map: m.map }, m.capacity);
      this.mapFill.set({ map: m.map }, m.capacity > 0 ? m.entries / m.capacity : 0);
    }
  }

  #collectModel(): void {
    const m = this.sources.model();
    this.synced.set({}, m.synced ? 1 : 0);
    this.up.set({}, this.#sourceUp ? 1 : 0);
    this.objects.set({ kind: "pod" }, m.pods);
    this.objects.set({ kind: "namespace" }, m.namespaces);
    this.objects.set({ kind: "networkpolicy" }, m.policies);
    this.objects.set({ kind: "attachment" }, m.attachments);
    this.identities.set({ kind: "pod" }, m.identities.pod);
    this.identities.set({ kind: "cidr" }, m.identities.cidr);
  }

  #collectProcess(): void {
    const p = this.sources.process();
    this.cpu.set({}, p.cpuSeconds);
    this.rss.set({}, p.residentBytes);
    this.heap.set({}, p.heapBytes);
    this.startTime.set({}, p.startTimeSeconds);
    if (p.virtualBytes !== undefined) this.vsz.set({}, p.virtualBytes);
    if (p.openFds !== undefined) this.fds.set({}, p.openFds);
    if (p.maxFds !== undefined) this.maxFds.set({}, p.maxFds);
  }

  /** A reconcile finished (Agent's observer). */
  reconciled(e: ReconcileEvent): void {
    this.reconcileRuns.inc();
    this.reconcileDuration.observe({}, e.ms / 1000);
    this.written.inc({}, e.writes - e.removed);
    this.removed.inc({}, e.removed);
    if (e.retry) this.retries.inc();
    for (const f of e.failed) this.refused.inc({ map: mapOfFailure(f) });
    if (e.enforcedAfterMs !== undefined) {
      this.enforceDelay.observe({ source: this.sources.source }, e.enforcedAfterMs / 1000);
    }
  }

  /** The source reached its API server or directory (true) or lost it (false). */
  sourceHealth(up: boolean): void {
    if (this.#sourceUp && !up) this.sourceErrors.inc();
    this.#sourceUp = up;
    this.up.set({}, up ? 1 : 0);
  }

  get sourceUp(): boolean {
    return this.#sourceUp;
  }

  /** The Kubernetes source opened a list or a watch (`again`: not the first of its kind). */
  sourceRequest(resource: string, what: "list" | "watch", again: boolean): void {
    if (!again) return;
    (what === "list" ? this.relists : this.watchRestarts).inc({ resource });
  }

  cniCall(command: string, code: string, ms: number): void {
    this.cniCalls.inc({ command, code });
    this.cniDuration.observe({ command, code }, ms / 1000);
  }

  request(op: string, ok: boolean): void {
    this.requests.inc({ op, result: ok ? "ok" : "error" });
  }

  render(errors?: (err: unknown) => void): string {
    return this.registry.render(errors);
  }
}

/** What the agent's core reports after each reconcile. */
export interface ReconcileEvent {
  ms: number;
  /** Entries written (added, changed and removed) and, of them, removed. */
  writes: number;
  removed: number;
  /** The writes the maps refused ("map_name: why"). */
  failed: readonly string[];
  /** The previous reconcile left refused writes: this one retried them. */
  retry: boolean;
  /** Since the oldest change this reconcile wrote (none when it wrote no new change, or
   * when the maps still refuse some of it). */
  enforcedAfterMs: number | undefined;
}
