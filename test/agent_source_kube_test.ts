// The agent's Kubernetes source (src/agent/source_kube.ts) against the fake API server: the
// initial sync, live changes, bookmarks, server-side watch ends, 410 Gone and the relist diff,
// an API server outage, both kubeconfig auth forms, in-cluster config, and clear errors for
// bad kubeconfigs.
import assert from "node:assert/strict";
import {
  type KubeKind,
  type KubeSource,
  type KubeSourceOptions,
  type SourceSink,
  startKubeSource,
} from "../src/agent/source_kube.ts";
import { KubeConfigError } from "../src/agent/kube_config.ts";
import { FakeApiServer, type Kind } from "./_fake_apiserver.ts";

type Obj = Record<string, unknown>;

const BACKOFF = { initialMs: 20, maxMs: 200 };
/** How long to wait for something that must happen. Generous: not a timing check. */
const PATIENCE_MS = 30_000;

function meta(o: Obj): { name: string; namespace?: string; resourceVersion?: string } {
  return o.metadata as { name: string; namespace?: string; resourceVersion?: string };
}

function keyOf(kind: string, namespace: string | undefined, name: string): string {
  return `${kind}/${namespace ?? ""}/${name}`;
}

type Call =
  | { op: "upsert"; key: string; obj: Obj }
  | { op: "remove"; key: string }
  | { op: "synced" }
  | { op: "problem"; message: string };

/** A sink that records every call and keeps the model the calls describe. */
class Recorder implements SourceSink {
  readonly calls: Call[] = [];
  readonly state = new Map<string, Obj>();

  upsert(obj: Obj): void {
    const m = meta(obj);
    const key = keyOf(String(obj.kind), m.namespace, m.name);
    this.state.set(key, structuredClone(obj));
    this.calls.push({ op: "upsert", key, obj: structuredClone(obj) });
  }

  remove(kind: KubeKind, namespace: string | undefined, name: string): void {
    const key = keyOf(kind, namespace, name);
    this.state.delete(key);
    this.calls.push({ op: "remove", key });
  }

  synced(): void {
    this.calls.push({ op: "synced" });
  }

  problem(message: string): void {
    this.calls.push({ op: "problem", message });
  }

  count(op: Call["op"]): number {
    return this.calls.filter((c) => c.op === op).length;
  }

  problems(): string[] {
    return this.calls.flatMap((c) => (c.op === "problem" ? [c.message] : []));
  }

  /** Waits until `cond` holds; fails with `what` and the calls so far after PATIENCE_MS. */
  async until(what: string, cond: () => boolean): Promise<void> {
    const deadline = Date.now() + PATIENCE_MS;
    while (!cond()) {
      if (Date.now() > deadline) {
        const tail = this.calls.slice(-15).map((c) => JSON.stringify(c).slice(0, 300));
        assert.fail(`Gave up waiting for ${what}; last sink calls:\n${tail.join("\n")}`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

/** Every object the fake holds, keyed like the recorder's state. */
function fakeState(fake: FakeApiServer): Map<string, Obj> {
  const out = new Map<string, Obj>();
  for (const kind of ["Namespace", "Pod", "Node", "NetworkPolicy"] as const) {
    for (const o of fake.list(kind)) out.set(keyOf(kind, meta(o).namespace, meta(o).name), o);
  }
  return out;
}

function sameState(rec: Recorder, fake: FakeApiServer): boolean {
  try {
    assert.deepEqual(rec.state, fakeState(fake));
    return true;
  } catch {
    return false;
  }
}

function ns(name: string, labels: Record<string, string> = {}): Obj {
  return { kind: "Namespace", metadata: { name, labels } };
}

function pod(namespace: string, name: string, labels: Record<string, string>, ip: string): Obj {
  return {
    kind: "Pod",
    metadata: { name, namespace, labels },
    spec: {
      nodeName: "node-1",
      containers: [{ name: "c", image: "i", ports: [{ name: "http", containerPort: 80 }] }],
    },
    status: { phase: "Running", podIP: ip, podIPs: [{ ip }] },
  };
}

function policy(namespace: string, name: string, spec: Obj): Obj {
  return { kind: "NetworkPolicy", metadata: { name, namespace }, spec };
}

function node(name: string, podCIDR: string, ip: string): Obj {
  return {
    kind: "Node",
    metadata: { name },
    spec: { podCIDR, podCIDRs: [podCIDR] },
    status: { addresses: [{ type: "InternalIP", address: ip }] },
  };
}

/** A small cluster: two nodes, two namespaces, three pods, two policies. */
function seed(fake: FakeApiServer): void {
  fake.put(node("node-1", "10.13.0.0/24", "192.168.13.1"));
  fake.put(node("node-2", "10.13.1.0/24", "192.168.13.2"));
  fake.put(ns("x", { team: "a" }));
  fake.put(ns("y"));
  fake.put(pod("x", "a", { app: "a" }, "10.13.0.2"));
  fake.put(pod("x", "b", { app: "b" }, "10.13.0.3"));
  fake.put(pod("y", "c", { app: "c" }, "10.13.0.4"));
  fake.put(policy("x", "deny-all", { podSelector: {}, policyTypes: ["Ingress"] }));
  fake.put(policy("y", "allow-a", {
    podSelector: { matchLabels: { app: "c" } },
    ingress: [{ from: [{ podSelector: { matchLabels: { app: "a" } } }] }],
  }));
}

/** Starts a fake (seeded) and a source on it; runs `fn`; stops both whatever happens. */
async function withSource(
  opts: {
    auth?: "token" | "cert";
    embed?: boolean;
    tokenFile?: boolean;
    goneAs?: "event" | "status";
    seed?: boolean;
  },
  fn: (fake: FakeApiServer, rec: Recorder, source: KubeSource) => Promise<void>,
): Promise<void> {
  await using fake = await FakeApiServer.start(opts.goneAs ? { goneAs: opts.goneAs } : {});
  if (opts.seed ?? true) seed(fake);
  const kubeconfig = fake.writeKubeconfig({
    auth: opts.auth ?? "token",
    embed: opts.embed ?? true,
    tokenFile: opts.tokenFile ?? false,
  });
  const rec = new Recorder();
  const source = await startKubeSource({ kubeconfig, backoff: BACKOFF }, rec);
  try {
    await fn(fake, rec, source);
  } finally {
    await source.stop();
  }
}

function watchRvs(fake: FakeApiServer, kind: Kind): string[] {
  return fake.requestsFor(kind, "watch").map((r) => r.query.resourceVersion ?? "");
}

Deno.test("the initial sync delivers every object, then synced() once", async () => {
  await withSource({}, async (fake, rec) => {
    await rec.until("synced()", () => rec.count("synced") > 0);
    const firstSynced = rec.calls.findIndex((c) => c.op === "synced");
    // Every object came before synced(), as the API holds it, kind and apiVersion included
    // (a list's items have neither: the source puts them back).
    const before = new Map<string, Obj>();
    for (const c of rec.calls.slice(0, firstSynced)) {
      if (c.op === "upsert") before.set(c.key, c.obj);
    }
    assert.deepEqual(before, fakeState(fake));
    assert.equal(before.get("NetworkPolicy/y/allow-a")?.apiVersion, "networking.k8s.io/v1");
    assert.equal(before.get("Pod/x/a")?.kind, "Pod");
    assert.equal(rec.count("synced"), 1);
    assert.equal(rec.count("remove"), 0);
    assert.deepEqual(rec.problems(), []);
    // One cluster-wide list per kind, then a watch from the list's RV, with bookmarks.
    for (const kind of ["Namespace", "Pod", "Node", "NetworkPolicy"] as const) {
      assert.equal(fake.requestsFor(kind, "list").length, 1, kind);
      assert.equal(fake.requestsFor(kind, "list")[0]?.namespace, undefined);
      await rec.until(`a ${kind} watch`, () => fake.requestsFor(kind, "watch").length > 0);
      const w = fake.requestsFor(kind, "watch")[0];
      assert.equal(w?.query.resourceVersion, fake.resourceVersion);
      assert.equal(w?.query.allowWatchBookmarks, "true");
      assert.equal(w?.status, 200);
    }
  });
});

Deno.test("changes arrive: pod labels, namespace labels, policy update and delete, pod delete, nodes", async () => {
  await withSource({ auth: "cert", embed: false }, async (fake, rec) => {
    await rec.until("synced()", () => rec.count("synced") > 0);
    await rec.until("four watches", () => fake.openWatches === 4);
    const mark = rec.calls.length;
    fake.put(pod("x", "a", { app: "a", tier: "web" }, "10.13.0.2"));
    fake.put(ns("y", { team: "b" }));
    fake.put(policy("x", "deny-all", { podSelector: {}, policyTypes: ["Ingress", "Egress"] }));
    fake.delete("NetworkPolicy", "y", "allow-a");
    fake.delete("Pod", "x", "b");
    fake.put(pod("y", "d", { app: "d" }, "10.13.0.5"));
    fake.put(node("node-3", "10.13.2.0/24", "192.168.13.3"));
    fake.put(node("node-2", "10.13.4.0/24", "192.168.13.2"));
    fake.delete("Node", undefined, "node-1");
    await rec.until("the model to match the fake", () => sameState(rec, fake));
    const changes = rec.calls.slice(mark).map((
      c,
    ) => (c.op === "upsert" || c.op === "remove" ? `${c.op} ${c.key}` : c.op));
    // Per kind in the API's order (the kinds are separate watches).
    const of = (kind: string) => changes.filter((c) => c.split(" ")[1]?.startsWith(`${kind}/`));
    assert.deepEqual(of("Pod"), ["upsert Pod/x/a", "remove Pod/x/b", "upsert Pod/y/d"]);
    assert.deepEqual(of("Namespace"), ["upsert Namespace//y"]);
    assert.deepEqual(of("Node"), [
      "upsert Node//node-3",
      "upsert Node//node-2",
      "remove Node//node-1",
    ]);
    assert.deepEqual(
      (rec.state.get("Node//node-2")?.spec as Obj).podCIDRs,
      ["10.13.4.0/24"],
    );
    assert.deepEqual(of("NetworkPolicy"), [
      "upsert NetworkPolicy/x/deny-all",
      "remove NetworkPolicy/y/allow-a",
    ]);
    assert.deepEqual(
      (rec.state.get("Namespace//y")?.metadata as Obj).labels,
      { team: "b", "kubernetes.io/metadata.name": "y" },
    );
    assert.equal(rec.count("synced"), 1);
    assert.deepEqual(rec.problems(), []);
  });
});

Deno.test("bookmarks change nothing in the model and move the watch's resourceVersion", async () => {
  await withSource({}, async (fake, rec) => {
    await rec.until("synced()", () => rec.count("synced") > 0);
    await rec.until("four watches", () => fake.openWatches === 4);
    // A pod change moves the global RV; the namespace watch sees nothing of it...
    fake.put(pod("x", "a", { app: "a2" }, "10.13.0.2"));
    await rec.until("the pod change", () => sameState(rec, fake));
    const rv = fake.resourceVersion;
    const calls = rec.calls.length;
    // ...until a bookmark carries the RV to it.
    fake.bookmark();
    fake.bookmark();
    // The watches end (as on a server timeout): the namespace watch resumes at the bookmark.
    fake.closeWatches();
    await rec.until("the namespace re-watch", () => watchRvs(fake, "Namespace").length === 2);
    assert.equal(watchRvs(fake, "Namespace")[1], rv);
    assert.equal(rec.calls.length, calls, "a bookmark made sink calls");
    assert.equal(fake.requestsFor("Namespace", "list").length, 1);
  });
});

Deno.test("a watch ended by the server is re-opened from the last RV, without a relist", async () => {
  await withSource({ auth: "cert" }, async (fake, rec) => {
    await rec.until("synced()", () => rec.count("synced") > 0);
    await rec.until("four watches", () => fake.openWatches === 4);
    for (let round = 0; round < 3; round++) {
      const before = fake.requestsFor("Pod", "watch").length;
      fake.closeWatches();
      // Changes made while the source reconnects are replayed from its RV.
      const rvBefore = fake.resourceVersion;
      fake.put(pod("x", `p${round}`, { round: String(round) }, `10.13.1.${round + 1}`));
      await rec.until("the new pod", () => sameState(rec, fake));
      await rec.until("a pod re-watch", () => fake.requestsFor("Pod", "watch").length > before);
      assert.equal(fake.requestsFor("Pod", "watch")[before]?.query.resourceVersion, rvBefore);
    }
    for (const kind of ["Namespace", "Pod", "Node", "NetworkPolicy"] as const) {
      assert.equal(fake.requestsFor(kind, "list").length, 1, `${kind} was relisted`);
    }
    assert.equal(rec.count("synced"), 1);
    assert.deepEqual(rec.problems(), []);
  });
});

for (const goneAs of ["event", "status"] as const) {
  Deno.test(`410 Gone (as ${goneAs === "event" ? "an ERROR event" : "the HTTP status"}) makes it relist, and the diff removes what vanished meanwhile`, async () => {
    await withSource({ goneAs }, async (fake, rec) => {
      await rec.until("synced()", () => rec.count("synced") > 0);
      await rec.until("four watches", () => fake.openWatches === 4);
      // The source misses changes while the server is down, and the server forgets them.
      await fake.stop();
      fake.delete("Pod", "x", "b");
      fake.delete("NetworkPolicy", "x", "deny-all");
      fake.put(pod("y", "c", { app: "c", moved: "yes" }, "10.13.0.4"));
      fake.put(pod("y", "e", { app: "e" }, "10.13.0.6"));
      fake.put(ns("z"));
      fake.delete("Namespace", undefined, "z");
      fake.compact();
      const mark = rec.calls.length;
      await fake.restart();
      await rec.until("the model to match the fake", () => sameState(rec, fake));
      await rec.until("synced() after the relists", () => {
        return rec.calls.slice(mark).filter((c) => c.op === "synced").length > 0 &&
          ["Namespace", "Pod", "Node", "NetworkPolicy"].every((k) => {
            return fake.requestsFor(k as Kind, "list").length === 2;
          });
      });
      const after = rec.calls.slice(mark);
      const removes = after.flatMap((c) => (c.op === "remove" ? [c.key] : [])).sort();
      assert.deepEqual(removes, ["NetworkPolicy/x/deny-all", "Pod/x/b"]);
      const upserts = after.flatMap((c) => (c.op === "upsert" ? [c.key] : [])).sort();
      // Unchanged objects (same RV) are not delivered again; the namespace made and deleted
      // while away never shows.
      assert.deepEqual(upserts, ["Pod/y/c", "Pod/y/e"]);
      // The watches asked from the old RV and were refused with 410.
      const refused = fake.requests.filter((r) => r.verb === "watch" && r.kind === "Pod")
        .find((r) => goneAs === "status" ? r.status === 410 : false);
      if (goneAs === "status") assert.ok(refused, "no watch got HTTP 410");
      assert.equal(rec.state.has("Namespace//z"), false);
    });
  });
}

Deno.test("while the API server is down it backs off with problem(), then recovers without losing updates", async () => {
  await withSource({ auth: "cert", embed: false }, async (fake, rec) => {
    await rec.until("synced()", () => rec.count("synced") > 0);
    await rec.until("four watches", () => fake.openWatches === 4);
    await fake.stop();
    // Retries with growing delays, reported each time.
    await rec.until("five pod problems", () => {
      return rec.problems().filter((p) => p.startsWith("pods: ")).length >= 5;
    });
    const delays = rec.problems().filter((p) => p.startsWith("pods: ")).map((p) => {
      return Number(/retrying in (\d+) ms$/.exec(p)?.[1]);
    });
    assert.ok(delays.every((d) => d > 0 && d <= BACKOFF.maxMs), `delays ${delays}`);
    // Doubling with at most a quarter of jitter: each of the first three exceeds the previous.
    assert.ok(delays[0]! < delays[1]! && delays[1]! < delays[2]!, `delays ${delays}`);
    // Changes while down (history kept): replayed after the restart, no relist needed.
    fake.put(pod("x", "a", { app: "a", during: "outage" }, "10.13.0.2"));
    fake.delete("Pod", "y", "c");
    fake.put(ns("w"));
    fake.put(policy("w", "p", { podSelector: {} }));
    await fake.restart();
    await rec.until("the model to match the fake", () => sameState(rec, fake));
    for (const kind of ["Namespace", "Pod", "Node", "NetworkPolicy"] as const) {
      assert.equal(fake.requestsFor(kind, "list").length, 1, `${kind} was relisted`);
    }
    // And it keeps following.
    fake.put(pod("w", "late", { app: "late" }, "10.13.0.9"));
    await rec.until("a change after the recovery", () => sameState(rec, fake));
  });
});

Deno.test("a refused token is reported and retried; a fixed token file recovers it", async () => {
  await using fake = await FakeApiServer.start();
  seed(fake);
  const kubeconfig = fake.writeKubeconfig({ auth: "token", tokenFile: true });
  const tokenPath = `${fake.dir}/${
    JSON.parse(Deno.readTextFileSync(kubeconfig)).users[0].user.tokenFile
  }`;
  Deno.writeTextFileSync(tokenPath, "wrong-token\n");
  const rec = new Recorder();
  const source = await startKubeSource({ kubeconfig, backoff: BACKOFF }, rec);
  try {
    await rec.until("a 401 problem", () => rec.problems().some((p) => p.includes("HTTP 401")));
    assert.equal(rec.count("synced"), 0);
    assert.match(
      rec.problems()[0]!,
      /^(namespaces|pods|networkpolicies): GET \/api.*HTTP 401: Unauthorized; retrying in \d+ ms$/,
    );
    // The token file is read for every request (projected tokens rotate).
    Deno.writeTextFileSync(tokenPath, `${fake.token}\n`);
    await rec.until("synced()", () => rec.count("synced") > 0);
    assert.ok(sameState(rec, fake));
  } finally {
    await source.stop();
  }
});

for (
  const form of [
    { auth: "token", embed: true, tokenFile: false },
    { auth: "token", embed: false, tokenFile: true },
    { auth: "cert", embed: true, tokenFile: false },
    { auth: "cert", embed: false, tokenFile: false },
  ] as const
) {
  const name = form.auth === "cert"
    ? `client certificate (${form.embed ? "embedded data" : "files"})`
    : form.tokenFile
    ? "bearer token file"
    : "bearer token";
  Deno.test(`kubeconfig with ${name}: syncs and is seen as that auth`, async () => {
    await withSource(form, async (fake, rec) => {
      await rec.until("synced()", () => rec.count("synced") > 0);
      assert.ok(sameState(rec, fake));
      assert.ok(fake.requests.length > 0);
      assert.ok(fake.requests.every((r) => r.auth === form.auth), JSON.stringify(fake.requests));
    });
  });
}

Deno.test("in-cluster: the service account token and CA, KUBERNETES_SERVICE_HOST/PORT", async () => {
  await using fake = await FakeApiServer.start();
  seed(fake);
  const { root, env } = fake.writeInCluster();
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, Deno.env.get(k)]));
  const rec = new Recorder();
  let source: KubeSource | undefined;
  try {
    for (const [k, v] of Object.entries(env)) Deno.env.set(k, v);
    source = await startKubeSource({ inCluster: true, inClusterRoot: root, backoff: BACKOFF }, rec);
    await rec.until("synced()", () => rec.count("synced") > 0);
    assert.ok(sameState(rec, fake));
    assert.ok(fake.requests.every((r) => r.auth === "token"));
    Deno.env.delete("KUBERNETES_SERVICE_HOST");
    await assert.rejects(
      startKubeSource({ inCluster: true, inClusterRoot: root }, new Recorder()),
      (err: Error) => {
        assert.ok(err instanceof KubeConfigError);
        assert.equal(
          err.message,
          "In-cluster config: KUBERNETES_SERVICE_HOST is not set (not running in a pod?)",
        );
        return true;
      },
    );
    Deno.env.set("KUBERNETES_SERVICE_HOST", "127.0.0.1");
    Deno.removeSync(`${root}/var/run/secrets/kubernetes.io/serviceaccount/token`);
    await assert.rejects(
      startKubeSource({ inCluster: true, inClusterRoot: root }, new Recorder()),
      /^KubeConfigError: In-cluster config: cannot read the service account token ".*\/serviceaccount\/token": no such file$/,
    );
  } finally {
    await source?.stop();
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) Deno.env.delete(k);
      else Deno.env.set(k, v);
    }
  }
});

Deno.test("stop() closes every watch and calls the sink no more", async () => {
  await using fake = await FakeApiServer.start();
  seed(fake);
  const rec = new Recorder();
  const source = await startKubeSource({
    kubeconfig: fake.writeKubeconfig({ auth: "cert" }),
    backoff: BACKOFF,
  }, rec);
  await rec.until("synced()", () => rec.count("synced") > 0);
  await rec.until("four watches", () => fake.openWatches === 4);
  await source.stop();
  await source.stop();
  await rec.until("the fake to see the watches closed", () => fake.openWatches === 0);
  const calls = rec.calls.length;
  const requests = fake.requests.length;
  fake.put(pod("x", "after-stop", {}, "10.13.0.99"));
  fake.closeWatches();
  // Nothing would call the sink now; give the event loop a few turns to prove it.
  for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 5));
  assert.equal(rec.calls.length, calls);
  assert.equal(fake.requests.length, requests);
});

Deno.test("stop() while the API server is down cancels the pending retries", async () => {
  await withSource({}, async (fake, rec, source) => {
    await rec.until("synced()", () => rec.count("synced") > 0);
    await fake.stop();
    await rec.until("a problem", () => rec.problems().length > 0);
    await source.stop();
    // The test sanitizers fail the test if a timer or a request were left.
  });
});

Deno.test("stop() called from synced(), as the watches open, ends them at once", async () => {
  await using fake = await FakeApiServer.start();
  seed(fake);
  const rec = new Recorder();
  let stopping: Promise<void> | undefined;
  // Set once startKubeSource() returns, long before the lists are answered.
  const box: { source?: KubeSource } = {};
  const sink: SourceSink = {
    upsert: (o) => rec.upsert(o),
    remove: (k, n, name) => rec.remove(k, n, name),
    synced: () => {
      rec.synced();
      stopping = box.source?.stop();
    },
    problem: (m) => rec.problem(m),
  };
  const source = await startKubeSource({
    kubeconfig: fake.writeKubeconfig({ auth: "token" }),
    backoff: BACKOFF,
  }, sink);
  box.source = source;
  try {
    await rec.until("synced()", () => stopping !== undefined);
    // A watch opened in the same tick as the last list must be aborted too, not left to its
    // idle timeout (minutes).
    let stopped = false;
    stopping!.then(() => (stopped = true));
    await rec.until("stop() to resolve", () => stopped);
    await rec.until("the fake to see the watches closed", () => fake.openWatches === 0);
  } finally {
    await source.stop();
  }
});

Deno.test("stop() right after start, before the first list answered", async () => {
  await withSource({}, async (_fake, rec, source) => {
    await source.stop();
    assert.equal(rec.count("synced"), 0);
  });
});

Deno.test("a sink that throws does not stop the source", async () => {
  await using fake = await FakeApiServer.start();
  seed(fake);
  const rec = new Recorder();
  let thrown = 0;
  const sink: SourceSink = {
    upsert(obj) {
      rec.upsert(obj);
      if (meta(obj).name === "b") {
        thrown++;
        throw new Error("model bug");
      }
    },
    remove: (k, n, name) => rec.remove(k, n, name),
    synced: () => rec.synced(),
    problem: (m) => rec.problem(m),
  };
  const source = await startKubeSource({
    kubeconfig: fake.writeKubeconfig({ auth: "token" }),
    backoff: BACKOFF,
  }, sink);
  try {
    await rec.until("synced()", () => rec.count("synced") > 0);
    await rec.until("four watches", () => fake.openWatches === 4);
    fake.put(pod("x", "b", { app: "b", again: "1" }, "10.13.0.3"));
    fake.put(pod("x", "after", {}, "10.13.0.7"));
    await rec.until("the later pod", () => sameState(rec, fake));
    assert.equal(thrown, 2);
  } finally {
    await source.stop();
  }
});

// --- configuration errors ---

function kubeconfigText(fake: FakeApiServer, auth: "token" | "cert", embed = true): Obj {
  return JSON.parse(Deno.readTextFileSync(fake.writeKubeconfig({ auth, embed })));
}

async function startFails(opts: KubeSourceOptions, expected: RegExp | string): Promise<void> {
  await assert.rejects(startKubeSource(opts, new Recorder()), (err: Error) => {
    assert.ok(err instanceof KubeConfigError, `${err.name}: ${err.message}`);
    if (typeof expected === "string") assert.equal(err.message, expected);
    else assert.match(err.message, expected);
    return true;
  });
}

Deno.test("a bad kubeconfig is refused with the file and the field at fault", async () => {
  await using fake = await FakeApiServer.start();
  const dir = fake.dir;
  const write = (name: string, content: string | Obj) => {
    const path = `${dir}/${name}`;
    Deno.writeTextFileSync(path, typeof content === "string" ? content : JSON.stringify(content));
    return path;
  };
  const missing = `${dir}/no-such-kubeconfig`;
  await startFails({ kubeconfig: missing }, `Cannot read kubeconfig "${missing}": no such file`);

  const notYaml = write("not-yaml", "clusters: [\n  - {");
  await startFails({ kubeconfig: notYaml }, new RegExp(`^Cannot parse kubeconfig "${notYaml}": `));

  const cases: [string, (k: Obj) => void, string][] = [
    ["no-context", (k) => delete k["current-context"], "current-context: not set"],
    [
      "wrong-context",
      (k) => (k["current-context"] = "prod"),
      `contexts: no entry named "prod" (named by current-context)`,
    ],
    [
      "wrong-cluster",
      (k) => ((k.contexts as Obj[])[0]!.context = { cluster: "other", user: "tester" }),
      `clusters: no entry named "other" (named by contexts[0].context.cluster)`,
    ],
    [
      "http-server",
      (k) => ((k.clusters as Obj[])[0]!.cluster = { server: "http://127.0.0.1:8080" }),
      `clusters[0].cluster.server: "http://127.0.0.1:8080" is not an https URL`,
    ],
    [
      "bad-ca-data",
      (k) => (((k.clusters as Obj[])[0]!.cluster as Obj)["certificate-authority-data"] = "%%%"),
      "clusters[0].cluster.certificate-authority-data: not base64",
    ],
    [
      "ca-not-pem",
      (k) => (((k.clusters as Obj[])[0]!.cluster as Obj)["certificate-authority-data"] = btoa("x")),
      "clusters[0].cluster.certificate-authority-data: not base64 of PEM",
    ],
    [
      "skip-verify",
      (k) => (((k.clusters as Obj[])[0]!.cluster as Obj)["insecure-skip-tls-verify"] = true),
      `clusters[0].cluster.insecure-skip-tls-verify: not supported (give the CA instead)`,
    ],
    [
      "no-user",
      (k) => (k.users = []),
      `users: no entry named "tester" (named by contexts[0].context.user)`,
    ],
  ];
  for (const [name, change, field] of cases) {
    const k = kubeconfigText(fake, "token");
    change(k);
    const path = write(name, k);
    await startFails({ kubeconfig: path }, `Invalid kubeconfig "${path}": ${field}`);
  }

  const certCases: [string, (u: Obj) => void, string][] = [
    [
      "cert-file-missing",
      (u) => (u["client-certificate"] = "gone.crt"),
      `users[0].user.client-certificate: cannot read "${dir}/gone.crt": no such file`,
    ],
    [
      "no-key",
      (u) => delete u["client-key"],
      `users[0].user: a client certificate without "client-key" or "client-key-data"`,
    ],
    [
      "both-key-forms",
      (u) => (u["client-key-data"] = btoa("-----BEGIN PRIVATE KEY-----\n")),
      `users[0].user: both "client-key" and "client-key-data" are set`,
    ],
    [
      "token-file-missing",
      (u) => {
        delete u["client-certificate"];
        delete u["client-key"];
        u.tokenFile = "/nonexistent/token";
      },
      `users[0].user.tokenFile: cannot read "/nonexistent/token": no such file`,
    ],
  ];
  for (const [name, change, field] of certCases) {
    const k = kubeconfigText(fake, "cert", false);
    change((k.users as Obj[])[0]!.user as Obj);
    const path = write(name, k);
    await startFails({ kubeconfig: path }, `Invalid kubeconfig "${path}": ${field}`);
  }

  await startFails({}, "No API server configured: give a kubeconfig or inCluster");
  await startFails(
    { kubeconfig: fake.writeKubeconfig({ auth: "token" }), inCluster: true },
    "Give either a kubeconfig or inCluster, not both",
  );
  // Nothing was asked of the server.
  assert.deepEqual(fake.requests, []);
});
