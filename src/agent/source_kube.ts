// The policy agent's Kubernetes API source: lists and watches Pods, Namespaces, Nodes and
// NetworkPolicies (networking.k8s.io/v1) cluster-wide and hands the objects, plain JSON as the
// API gives them, to a sink.
//
// @kubernetes/client-node's ListWatch is the informer: it keeps the resourceVersion, re-watches
// from it when the server ends a watch, relists on 410 Gone (an HTTP 410 or an ERROR event with
// code 410) and diffs its cache against the new list, reporting deletes for objects that
// vanished meanwhile; KubeConfig holds the credentials. This module adds what they leave to
// their user:
// - the transport (kube_http.ts: Deno's fetch, as the library's undici misses dropped watch
//   connections under Deno), with allowWatchBookmarks=true on every watch;
// - retrying after errors with capped exponential backoff: ListWatch stops for good on any
//   error other than 410 (the server down, refused, 401/403);
// - lists kept raw (the generated API clients turn JSON into typed models, dropping unknown
//   fields), their items given back the kind and apiVersion a typed list leaves out;
// - the synced() signal, which ListWatch has no event for;
// - a stop() that leaves no request, timer or callback behind (ListWatch does not check for
//   stop after a list).
//
// Imported only by `agent run --kubeconfig/--in-cluster` (dynamically): the client library is
// large and must not load on the CNI path. Nothing of ours runs at import time (the client
// library's own module set-up reads an environment variable or two).
import {
  ADD,
  DELETE,
  ERROR,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  ListWatch,
  UPDATE,
  Watch,
} from "@kubernetes/client-node";
import { log } from "../log.ts";
import { KubeConfigError, loadInCluster, loadKubeconfig } from "./kube_config.ts";
import { getJson, streamWatch } from "./kube_http.ts";

export { KubeConfigError } from "./kube_config.ts";

import type { KubeKind, SourceSink } from "./source.ts";
import { errorMessage } from "../spec/text.ts";
export type { KubeKind, SourceSink } from "./source.ts";

export interface KubeSourceOptions {
  /** A kubeconfig file; its current context is used. */
  kubeconfig?: string;
  /** Use the pod's service account and KUBERNETES_SERVICE_HOST/PORT. */
  inCluster?: boolean;
  /** For tests: a prefix for the service account directory of inCluster. */
  inClusterRoot?: string;
  /** Delays between retries after errors: doubling from initialMs up to maxMs (default
   * 1 s to 30 s), each cut by up to a quarter at random so agents do not retry in step. Also
   * caps ListWatch's own delay between re-watches. For tests. */
  backoff?: { initialMs: number; maxMs: number };
}

export interface KubeSource {
  /** Stops watching; resolves once no request, timer or sink call is left. */
  stop(): Promise<void>;
}

interface KindInfo {
  kind: KubeKind;
  apiVersion: string;
  /** The cluster-wide collection. */
  path: string;
  plural: string;
}

const KINDS: readonly KindInfo[] = [
  { kind: "Namespace", apiVersion: "v1", path: "/api/v1/namespaces", plural: "namespaces" },
  { kind: "Pod", apiVersion: "v1", path: "/api/v1/pods", plural: "pods" },
  { kind: "Node", apiVersion: "v1", path: "/api/v1/nodes", plural: "nodes" },
  {
    kind: "NetworkPolicy",
    apiVersion: "networking.k8s.io/v1",
    path: "/apis/networking.k8s.io/v1/networkpolicies",
    plural: "networkpolicies",
  },
];

const DEFAULT_BACKOFF = { initialMs: 1000, maxMs: 30_000 };

/** kube-apiserver sends a bookmark about every minute to a watch that allows them: one silent
 * for 2.5 minutes is taken for a dead connection and re-opened from its resourceVersion. */
const WATCH_IDLE_MS = 150_000;

type Raw = KubernetesObject & Record<string, unknown>;

/** Starts watching. Rejects (with a KubeConfigError) only when the configuration is unusable;
 * an unreachable or refusing API server is reported through sink.problem() and retried. */
export function startKubeSource(opts: KubeSourceOptions, sink: SourceSink): Promise<KubeSource> {
  try {
    const backoff = opts.backoff ?? DEFAULT_BACKOFF;
    if (
      !(backoff.initialMs > 0) || !(backoff.maxMs >= backoff.initialMs) ||
      !Number.isFinite(backoff.maxMs)
    ) {
      throw new RangeError(
        `Invalid backoff ${JSON.stringify(backoff)}: need 0 < initialMs <= maxMs`,
      );
    }
    let kc: KubeConfig;
    if (opts.inCluster && opts.kubeconfig !== undefined) {
      throw new KubeConfigError("Give either a kubeconfig or inCluster, not both");
    } else if (opts.inCluster) {
      kc = loadInCluster(opts.inClusterRoot);
    } else if (opts.kubeconfig !== undefined) {
      kc = loadKubeconfig(opts.kubeconfig);
    } else {
      throw new KubeConfigError("No API server configured: give a kubeconfig or inCluster");
    }
    const source = new Source(kc, sink, backoff);
    source.start();
    return Promise.resolve({ stop: () => source.stop() });
  } catch (err) {
    return Promise.reject(err);
  }
}

/** The text of an error and its causes, and the HTTP status when there is one. */
function describe(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let depth = 0; e !== undefined && e !== null && depth < 6; depth++) {
    let text = errorMessage(e);
    const code = (e as { statusCode?: unknown }).statusCode;
    if (typeof code === "number" && !text.includes(`HTTP ${code}`)) text = `HTTP ${code} ${text}`;
    if (text !== "" && !parts.includes(text)) parts.push(text);
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join(": ") || "unknown error";
}

class Backoff {
  #next: number;
  constructor(readonly initialMs: number, readonly maxMs: number) {
    this.#next = initialMs;
  }
  next(): number {
    const d = this.#next;
    this.#next = Math.min(this.maxMs, d * 2);
    return Math.max(1, Math.round(d * (1 - Math.random() * 0.25)));
  }
  reset(): void {
    this.#next = this.initialMs;
  }
}

class Source {
  stopped = false;
  readonly #watchers: KindWatcher[];
  readonly #sink: SourceSink;
  #announced = false;
  readonly #failing = new Set<string>();
  #healthSent: boolean | undefined;

  constructor(readonly kc: KubeConfig, sink: SourceSink, readonly backoff: typeof DEFAULT_BACKOFF) {
    this.#sink = sink;
    this.#watchers = KINDS.map((info) => new KindWatcher(this, info));
  }

  start(): void {
    for (const w of this.#watchers) w.start();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all(this.#watchers.map((w) => w.stop()));
  }

  /** A list of some kind has been applied: synced() when every kind has listed and none is
   * relisting. */
  listed(): void {
    if (!this.#watchers.every((w) => w.listedOnce && !w.listing)) return;
    if (!this.#announced) log.info("Kubernetes source: initial lists complete");
    this.#announced = true;
    this.deliver("synced", () => this.#sink.synced());
  }

  problem(message: string): void {
    this.deliver("problem", () => this.#sink.problem(message));
  }

  /** A kind reached the API server (a list or watch answered) or failed: the source is up
   * while no kind is failing. */
  health(plural: string, up: boolean): void {
    const was = this.#failing.size === 0;
    if (up) this.#failing.delete(plural);
    else this.#failing.add(plural);
    const now = this.#failing.size === 0;
    if (now !== was || this.#healthSent !== now) {
      this.#healthSent = now;
      this.deliver("health", () => this.#sink.health?.(now));
    }
  }

  request(plural: string, what: "list" | "watch", again: boolean): void {
    this.deliver("request", () => this.#sink.request?.(plural, what, again));
  }

  upsert(obj: Raw): void {
    this.deliver("upsert", () => this.#sink.upsert(obj));
  }

  remove(kind: KubeKind, namespace: string | undefined, name: string): void {
    this.deliver("remove", () => this.#sink.remove(kind, namespace, name));
  }

  /** Calls the sink unless stopped. A throwing sink must not break the watch machinery (inside
   * a watch callback ListWatch would swallow the error and skip the resourceVersion). */
  deliver(what: string, fn: () => void): void {
    if (this.stopped) return;
    try {
      fn();
    } catch (err) {
      log.error(`Kubernetes source: the sink's ${what}() failed: ${describe(err)}`);
    }
  }
}

/** ListWatch's Watch, on kube_http.ts. */
class SourceWatch extends Watch {
  constructor(kc: KubeConfig, private readonly owner: KindWatcher) {
    super(kc);
  }

  override watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    // deno-lint-ignore no-explicit-any
    callback: (phase: string, apiObj: any, watchObj?: any) => void,
    // deno-lint-ignore no-explicit-any
    done: (err: any) => void,
  ): Promise<AbortController> {
    return Promise.resolve(this.owner.openWatch(path, queryParams, callback, done));
  }
}

function nameOf(obj: KubernetesObject): { namespace: string | undefined; name: string } {
  return { namespace: obj.metadata?.namespace ?? undefined, name: obj.metadata?.name ?? "" };
}

/** One kind's ListWatch, its retries and its list requests. */
class KindWatcher {
  /** A list has been applied at least once. */
  listedOnce = false;
  /** A list is due or under way (the first one, or a relist after 410) and not applied yet;
   * a failed list stays due. */
  listing = false;
  readonly #source: Source;
  readonly #info: KindInfo;
  readonly #lw: ListWatch<Raw>;
  readonly #backoff: Backoff;
  #retry: ReturnType<typeof setTimeout> | undefined;
  /** Work in flight, awaited by stop(). */
  readonly #pending = new Set<Promise<unknown>>();
  /** The requests (lists and watches) under way. */
  readonly #aborts = new Set<AbortController>();
  /** Ends pending delays early (on stop). */
  readonly #wakers = new Set<() => void>();
  #lists = 0;
  #watches = 0;

  constructor(source: Source, info: KindInfo) {
    this.#source = source;
    this.#info = info;
    this.#backoff = new Backoff(source.backoff.initialMs, source.backoff.maxMs);
    this.#lw = new ListWatch<Raw>(
      info.path,
      new SourceWatch(source.kc, this),
      () => this.#track(this.#list()),
      false,
      undefined,
      undefined,
      { delayFn: (ms) => this.#delay(ms) },
    );
    this.#lw.on(ADD, (o) => source.upsert(o));
    this.#lw.on(UPDATE, (o) => source.upsert(o));
    this.#lw.on(DELETE, (o) => {
      const { namespace, name } = nameOf(o);
      source.remove(info.kind, namespace, name);
    });
    this.#lw.on(ERROR, (err) => this.#failed(err));
  }

  start(): void {
    this.#track(this.#lw.start());
  }

  async stop(): Promise<void> {
    if (this.#retry !== undefined) clearTimeout(this.#retry);
    this.#retry = undefined;
    for (const wake of [...this.#wakers]) wake();
    await this.#lw.stop();
    for (const c of this.#aborts) c.abort();
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }

  /** Called by SourceWatch for every watch ListWatch opens. The request runs in the
   * background: ListWatch holds the controller at once, so stop() aborts a watch that is still
   * connecting too. `done` is called once: null when the server ended the stream, else the
   * error (an HTTP status in `statusCode`, a TimeoutError when the watch went silent). */
  openWatch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    // deno-lint-ignore no-explicit-any
    callback: (phase: string, obj: any, raw?: any) => void,
    // deno-lint-ignore no-explicit-any
    done: (err: any) => void,
  ): AbortController {
    // ListWatch opens the watch right after applying a list (or after its delay, which
    // #delay() reports).
    this.#listApplied();
    const controller = new AbortController();
    if (this.#source.stopped) {
      controller.abort();
      return controller;
    }
    const query = new URLSearchParams({ watch: "true" });
    for (const [k, v] of Object.entries(queryParams)) if (v !== undefined) query.set(k, String(v));
    query.set("allowWatchBookmarks", "true");
    const plural = this.#info.plural;
    this.#source.request(plural, "watch", this.#watches++ > 0);
    let connected = false;
    const onEvent = (ev: { type?: unknown; object?: unknown }) => {
      if (this.#source.stopped) return;
      // deno-lint-ignore no-explicit-any
      const obj = ev.object as any;
      if (ev.type === "ERROR") {
        const code = obj?.code;
        if (code === 410) {
          log.info(`Kubernetes source: ${plural}: watch history expired (410), relisting`);
        } else {
          this.#source.problem(
            `${plural}: watch error${code === undefined ? "" : ` ${code}`}: ${
              obj?.message ?? JSON.stringify(obj)
            }`,
          );
        }
      } else if (typeof obj === "object" && obj !== null) {
        if (!connected) this.#backoff.reset();
        connected = true;
        obj.kind ??= this.#info.kind;
        obj.apiVersion ??= this.#info.apiVersion;
      }
      callback(String(ev.type), obj, ev);
    };
    // Aborted by stop() too: ListWatch learns of the controller only a tick later.
    this.#aborts.add(controller);
    const run = streamWatch(this.#source.kc, {
      path: `${path}?${query}`,
      signal: controller.signal,
      idleMs: WATCH_IDLE_MS,
      onEvent,
      // A watch that opens reaches the server, events or not (health() ignores repeats).
      onOpen: () => this.#source.health(plural, true),
      onJunk: (line) => log.warn(`Kubernetes source: ${plural}: skipped a watch line: ${line}`),
    });
    // ListWatch's done handler is async (it relists and re-watches): keep its promise too.
    // deno-lint-ignore no-explicit-any
    const finish = (err: any) => {
      this.#track(Promise.resolve().then(() => done(err))).catch((e) => {
        log.error(`Kubernetes source: ${plural}: ${describe(e)}`);
      });
    };
    this.#track(run).finally(() => this.#aborts.delete(controller)).then(
      () => finish(null),
      (err) => {
        if (err?.statusCode === 410) log.info(`Kubernetes source: ${plural}: 410 Gone, relisting`);
        finish(err);
      },
    );
    return controller;
  }

  #listApplied(): void {
    if (!this.listing) return;
    this.listing = false;
    this.listedOnce = true;
    this.#source.listed();
  }

  #track<T>(p: Promise<T>): Promise<T> {
    this.#pending.add(p);
    const forget = () => this.#pending.delete(p);
    p.then(forget, forget);
    return p;
  }

  #delay(ms: number): Promise<void> {
    this.#listApplied();
    if (this.#source.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.#wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, Math.min(ms, this.#backoff.maxMs));
      this.#wakers.add(wake);
    });
  }

  #failed(err: unknown): void {
    if (this.#source.stopped) return;
    this.#source.health(this.#info.plural, false);
    const delay = this.#backoff.next();
    this.#source.problem(`${this.#info.plural}: ${describe(err)}; retrying in ${delay} ms`);
    if (this.#retry !== undefined) clearTimeout(this.#retry);
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      if (!this.#source.stopped) this.start();
    }, delay);
  }

  /** The full list, raw JSON. */
  async #list(): Promise<KubernetesListObject<Raw>> {
    this.listing = true;
    this.#source.request(this.#info.plural, "list", this.#lists++ > 0);
    const abort = new AbortController();
    this.#aborts.add(abort);
    try {
      const body = await getJson(this.#source.kc, this.#info.path, abort.signal);
      const list = this.#parseList(body, `list ${this.#info.plural}`);
      this.#backoff.reset();
      this.#source.health(this.#info.plural, true);
      return list;
    } finally {
      this.#aborts.delete(abort);
    }
  }

  #parseList(list: unknown, what: string): KubernetesListObject<Raw> {
    const l = list as { metadata?: { resourceVersion?: unknown }; items?: unknown };
    const rv = l.metadata?.resourceVersion;
    if (typeof rv !== "string" || rv === "" || !Array.isArray(l.items)) {
      throw new Error(`${what}: the answer has no metadata.resourceVersion or items`);
    }
    const items: Raw[] = [];
    for (const item of l.items) {
      const name = (item as Raw | null)?.metadata?.name;
      if (typeof name !== "string" || name === "") {
        this.#source.problem(`${what}: skipped an item without metadata.name`);
        continue;
      }
      // A typed list's items carry no kind and apiVersion; the sink needs them.
      items.push({ kind: this.#info.kind, apiVersion: this.#info.apiVersion, ...(item as Raw) });
    }
    return { metadata: { resourceVersion: rv }, items };
  }
}
