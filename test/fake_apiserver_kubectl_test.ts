// The fake API server (test/_fake_apiserver.ts) checked with the real kubectl, an independent
// client built on client-go, so the fake is not only consistent with the source tested on it:
// discovery, raw and printed lists, single gets, watches with their event order, bookmarks
// and timeoutSeconds, the 410 answers, and both auth forms (plus a refused token). Needs
// kubectl on PATH (scripts/bootstrap.sh does not install it: Debian's is 1.20); without it
// these tests are ignored.
import assert from "node:assert/strict";
import { FakeApiServer, type KubeconfigOptions } from "./_fake_apiserver.ts";

type Obj = Record<string, unknown>;

const HAS_KUBECTL = (Deno.env.get("PATH") ?? "").split(":").some((dir) => {
  try {
    return Deno.statSync(`${dir || "."}/kubectl`).isFile;
  } catch {
    return false;
  }
});

function kubectlTest(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, ignore: !HAS_KUBECTL, fn });
}

const decoder = new TextDecoder();
/** How long to wait for kubectl to show something it must show. Not a timing check. */
const PATIENCE_MS = 30_000;

interface Kubectl {
  run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  ok(args: string[]): Promise<string>;
  spawn(args: string[]): Deno.ChildProcess;
}

/** A fake with a few objects, a kubeconfig for it, and kubectl bound to both (its discovery
 * cache in a temp dir of the fake's, removed with it). */
async function withKubectl(
  auth: KubeconfigOptions,
  fn: (fake: FakeApiServer, kubectl: Kubectl) => Promise<void>,
  fakeOpts: { goneAs?: "event" | "status" } = {},
): Promise<void> {
  await using fake = await FakeApiServer.start(fakeOpts);
  fake.put({ kind: "Namespace", metadata: { name: "x", labels: { team: "a" } } });
  fake.put({ kind: "Namespace", metadata: { name: "y" } });
  fake.put({
    kind: "Node",
    metadata: { name: "n1" },
    spec: { podCIDR: "10.244.1.0/24", podCIDRs: ["10.244.1.0/24"] },
    status: { addresses: [{ type: "InternalIP", address: "192.168.1.1" }] },
  });
  fake.put({
    kind: "Pod",
    metadata: { name: "a", namespace: "x", labels: { app: "a" } },
    spec: { containers: [{ name: "c", image: "i", ports: [{ name: "http", containerPort: 80 }] }] },
    status: { podIP: "10.13.0.2", podIPs: [{ ip: "10.13.0.2" }] },
  });
  fake.put({
    kind: "Pod",
    metadata: { name: "b", namespace: "y" },
    status: { podIP: "10.13.0.3" },
  });
  fake.put({
    kind: "NetworkPolicy",
    metadata: { name: "deny-all", namespace: "x" },
    spec: { podSelector: {}, policyTypes: ["Ingress"] },
  });
  const config = fake.writeKubeconfig(auth);
  const cacheDir = `${fake.dir}/kubectl-cache`;
  const base = ["--kubeconfig", config, "--cache-dir", cacheDir, "--request-timeout", "20s"];
  const command = (args: string[], stdout: "piped" | "null" = "piped") => {
    return new Deno.Command("kubectl", {
      args: [...base, ...args],
      stdin: "null",
      stdout,
      stderr: "piped",
      env: { HOME: fake.dir, KUBECONFIG: "" },
    });
  };
  const kubectl: Kubectl = {
    async run(args) {
      const out = await command(args).output();
      return {
        code: out.code,
        stdout: decoder.decode(out.stdout),
        stderr: decoder.decode(out.stderr),
      };
    },
    async ok(args) {
      const r = await kubectl.run(args);
      assert.equal(r.code, 0, `kubectl ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
      return r.stdout;
    },
    spawn(args) {
      return command(args).spawn();
    },
  };
  await fn(fake, kubectl);
}

/** The values of a stream of concatenated JSON documents (kubectl -o json -w prints one
 * pretty-printed document per event); an incomplete last one is left out. */
function jsonStream(text: string): Obj[] {
  const out: Obj[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (ch === "\\") i++;
      else if (ch === '"') inString = false;
      continue;
    }
    if (ch === '"') inString = true;
    else if (ch === "{") {
      if (depth++ === 0) start = i;
    } else if (ch === "}" && --depth === 0) {
      out.push(JSON.parse(text.slice(start, i + 1)));
    }
  }
  return out;
}

/** Collects a long-running kubectl's stdout while `fn` runs; kills it afterwards. */
async function withWatch(
  kubectl: Kubectl,
  args: string[],
  fn: (seen: () => Obj[], stderr: () => string) => Promise<void>,
): Promise<void> {
  const child = kubectl.spawn(args);
  let out = "";
  let err = "";
  const pump = async (s: ReadableStream<Uint8Array>, add: (t: string) => void) => {
    for await (const t of s.pipeThrough(new TextDecoderStream())) add(t);
  };
  const reading = Promise.all([
    pump(child.stdout, (t) => (out += t)),
    pump(child.stderr, (t) => (err += t)),
  ]);
  try {
    await fn(() => jsonStream(out), () => err);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await child.status;
    await reading;
  }
}

async function until(what: string, cond: () => boolean, detail: () => string): Promise<void> {
  const deadline = Date.now() + PATIENCE_MS;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`Gave up waiting for ${what}: ${detail()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function stripTypeMeta(o: Obj): Obj {
  const { kind: _k, apiVersion: _a, ...rest } = o;
  return rest;
}

kubectlTest("kubectl get --raw /api/v1/pods is the fake's list", async () => {
  await withKubectl({ auth: "cert", embed: false }, async (fake, kubectl) => {
    const raw = JSON.parse(await kubectl.ok(["get", "--raw", "/api/v1/pods"]));
    assert.deepEqual(raw, {
      kind: "PodList",
      apiVersion: "v1",
      metadata: { resourceVersion: fake.resourceVersion },
      items: fake.list("Pod").map(stripTypeMeta),
    });
    const nsPods = JSON.parse(await kubectl.ok(["get", "--raw", "/api/v1/namespaces/x/pods"]));
    assert.deepEqual(nsPods.items.map((p: Obj) => (p.metadata as Obj).name), ["a"]);
    const version = JSON.parse(await kubectl.ok(["version", "-o", "json"]));
    assert.equal(version.serverVersion.gitVersion, "v1.32.0-fake");
    assert.ok(fake.requests.every((r) => r.auth === "cert"));
  });
});

kubectlTest(
  "kubectl get pods/networkpolicies/namespaces/nodes -A: discovery, JSON and tables",
  async () => {
    await withKubectl({ auth: "token" }, async (fake, kubectl) => {
      const pods = JSON.parse(await kubectl.ok(["get", "pods", "-A", "-o", "json"]));
      // kubectl puts kind and apiVersion back on the items.
      assert.deepEqual(pods.items, fake.list("Pod"));
      const pols = JSON.parse(await kubectl.ok(["get", "networkpolicies", "-A", "-o", "json"]));
      assert.deepEqual(pols.items, fake.list("NetworkPolicy"));
      const table = await kubectl.ok(["get", "networkpolicies", "-A"]);
      assert.match(table, /^NAMESPACE\s+NAME\s+AGE\n/);
      assert.match(table, /\nx\s+deny-all\s+\d+s\n$/);
      assert.equal(
        await kubectl.ok(["get", "netpol", "-n", "x", "-o", "name"]),
        "networkpolicy.networking.k8s.io/deny-all\n",
      );
      assert.equal(
        await kubectl.ok(["get", "ns", "-o", "name"]),
        "namespace/x\nnamespace/y\n",
      );
      const nodes = JSON.parse(await kubectl.ok(["get", "nodes", "-o", "json"]));
      assert.deepEqual(nodes.items, fake.list("Node"));
      assert.equal(await kubectl.ok(["get", "no", "-o", "name"]), "node/n1\n");
      const n1 = JSON.parse(await kubectl.ok(["get", "node", "n1", "-o", "json"]));
      assert.deepEqual(n1.spec.podCIDRs, ["10.244.1.0/24"]);
      const x = JSON.parse(await kubectl.ok(["get", "namespace", "x", "-o", "json"]));
      assert.deepEqual(x.metadata.labels, { team: "a", "kubernetes.io/metadata.name": "x" });
      const a = JSON.parse(await kubectl.ok(["get", "pod", "a", "-n", "x", "-o", "json"]));
      assert.deepEqual(a, fake.get("Pod", "x", "a"));
      const missing = await kubectl.run(["get", "pod", "nope", "-n", "x"]);
      assert.notEqual(missing.code, 0);
      assert.match(missing.stderr, /NotFound.*"nope" not found/);
      // Discovery went through the legacy endpoints the fake serves.
      const paths = new Set(fake.requests.map((r) => r.path));
      for (const p of ["/api", "/apis", "/api/v1", "/apis/networking.k8s.io/v1"]) {
        assert.ok(paths.has(p), `kubectl did not ask ${p}`);
      }
    });
  },
);

kubectlTest(
  "kubectl get pods -A -w sees the fake's ADDED, MODIFIED and DELETED in order",
  async () => {
    await withKubectl({ auth: "token", tokenFile: true }, async (fake, kubectl) => {
      const args = ["get", "pods", "-A", "-w", "--output-watch-events", "-o", "json"];
      await withWatch(kubectl, args, async (seen, stderr) => {
        // First the current pods, as ADDED.
        await until("the initial pods", () => seen().length >= 2, stderr);
        await until("kubectl's watch", () => fake.openWatches === 1, stderr);
        const listRv = Number(fake.resourceVersion);
        fake.put({ kind: "Pod", metadata: { name: "a", namespace: "x", labels: { app: "a2" } } });
        fake.put({ kind: "Pod", metadata: { name: "c", namespace: "y" } });
        fake.bookmark();
        fake.delete("Pod", "x", "a");
        fake.put({ kind: "Pod", metadata: { name: "c", namespace: "y", labels: { v: "2" } } });
        fake.delete("Pod", "y", "b");
        await until("every event", () => seen().length >= 7, stderr);
        const events = seen().map((e) => {
          const m = (e.object as Obj).metadata as Obj;
          return `${e.type} ${m.namespace}/${m.name} ${m.resourceVersion}`;
        });
        assert.deepEqual(events, [
          `ADDED x/a ${listRv - 2}`,
          `ADDED y/b ${listRv - 1}`,
          `MODIFIED x/a ${listRv + 1}`,
          `ADDED y/c ${listRv + 2}`,
          `DELETED x/a ${listRv + 3}`,
          `MODIFIED y/c ${listRv + 4}`,
          `DELETED y/b ${listRv + 5}`,
        ]);
        // The watch came from the list's RV.
        const w = fake.requestsFor("Pod", "watch")[0];
        assert.equal(w?.query.resourceVersion, String(listRv));
        assert.equal(w?.auth, "token");
      });
    });
  },
);

kubectlTest(
  "kubectl follows bookmarks, timeoutSeconds and the ERROR event of a compacted RV",
  async () => {
    await withKubectl({ auth: "cert" }, async (fake, kubectl) => {
      const rv = fake.resourceVersion;
      const path = (q: string) => `/api/v1/namespaces?watch=true&resourceVersion=${q}`;
      await withWatch(
        kubectl,
        ["get", "--raw", `${path(rv)}&allowWatchBookmarks=true`],
        async (seen, stderr) => {
          await until("the watch", () => fake.openWatches === 1, stderr);
          fake.put({ kind: "Namespace", metadata: { name: "z" } });
          fake.put({ kind: "Pod", metadata: { name: "p", namespace: "z" } });
          fake.bookmark();
          await until("two events", () => seen().length >= 2, stderr);
          assert.deepEqual(seen().map((e) => e.type), ["ADDED", "BOOKMARK"]);
          assert.deepEqual(seen()[1]!.object, {
            kind: "Namespace",
            apiVersion: "v1",
            metadata: { resourceVersion: fake.resourceVersion },
          });
        },
      );
      // timeoutSeconds ends the stream server-side, so get --raw returns by itself.
      const ended = await kubectl.ok([
        "get",
        "--raw",
        `${path(fake.resourceVersion)}&timeoutSeconds=1`,
      ]);
      assert.equal(ended, "");
      assert.equal(fake.openWatches, 0);
      // A watch from before compact() gets the ERROR event the API server sends, then the end.
      fake.compact();
      const gone = await kubectl.ok(["get", "--raw", path(rv)]);
      const [event] = jsonStream(gone);
      assert.equal(event?.type, "ERROR");
      assert.deepEqual(event?.object, {
        kind: "Status",
        apiVersion: "v1",
        metadata: {},
        status: "Failure",
        message: `too old resource version: ${rv} (${fake.resourceVersion})`,
        reason: "Expired",
        code: 410,
      });
    });
  },
);

kubectlTest("kubectl reads the fake's HTTP 410 Gone as a Status", async () => {
  await withKubectl({ auth: "token" }, async (fake, kubectl) => {
    const rv = fake.resourceVersion;
    fake.put({ kind: "Namespace", metadata: { name: "z" } });
    fake.compact();
    const r = await kubectl.run([
      "get",
      "--raw",
      `/api/v1/namespaces?watch=true&resourceVersion=${rv}`,
    ]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Error from server \(Expired\): too old resource version/);
  }, { goneAs: "status" });
});

kubectlTest("kubectl with a wrong token is refused with 401", async () => {
  await withKubectl({ auth: "token" }, async (fake, kubectl) => {
    const good = fake.writeKubeconfig({ auth: "token", name: "good" });
    const bad = `${fake.dir}/bad`;
    Deno.writeTextFileSync(bad, Deno.readTextFileSync(good).replace(fake.token, "wrong"));
    const r = await kubectl.run(["--kubeconfig", bad, "get", "--raw", "/api/v1/pods"]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Unauthorized/);
    assert.ok(fake.requests.some((q) => q.status === 401 && q.auth === "none"));
  });
});
