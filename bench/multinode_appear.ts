// A Node appearing -> its pods reachable from this node (issue 17, benchmarks; goal <= 1 s,
// median of 20). Per routing mode, a two-node cluster (agents and plugin under nsenter,
// kubernetes mode, usePodCidr, one manifest directory both agents read, a pod per node). Each
// sample: node-2's Node object is taken out of the directory and the bench waits until node-1
// has removed its routes to node-2's pod CIDR (so the pod is unreachable); a prober in the pod
// on node-1 opens a TCP connection to the pod on node-2 every 5 ms (a closed port: a refusal
// is an answer); the Node object is written back (renamed into the directory) and the time to
// the first answer is taken.
// Run: deno run -A bench/multinode_appear.ts [--samples=N] [--modes=vxlan,native] [--out=FILE]
// (as root, after scripts/build.sh; ~1 min). Writes bench/results-multinode-appear.json.
import {
  cleanupAll,
  installSignalCleanup,
  loadAvg,
  log,
  median,
  numArg,
  onCleanup,
  p90,
  ROOT,
  sleep,
  textArg,
} from "./lib.ts";
import {
  addPod,
  manifestDir,
  type Mode,
  nodeObject,
  nsPath,
  ownRoutes,
  pingOk,
  podCidr,
  podManifest,
  startAgent,
  underlay,
  writeJson,
} from "./_multinode.ts";

const SAMPLES = numArg("samples", 20);
const MODES = (textArg("modes") ?? "vxlan,native").split(",") as Mode[];
const OUT = textArg("out") ?? `${ROOT}/bench/results-multinode-appear.json`;

// In the pod: a new TCP connection to a closed port of `to` every 5 ms, each with its own
// source port (a fresh flow: no state left from the unreachable time); the first answer
// (refused or accepted: either way the packet went there and back) prints its epoch ms.
const prober = (to: string) =>
  `setTimeout(() => Deno.exit(3), 10000);
console.log("ready");
const done = (t: number) => { console.log(String(t)); Deno.exit(0); };
await new Promise((r) => setTimeout(r, 0));
for (;;) {
  Deno.connect({ hostname: "${to}", port: 9 }).then((c) => { c.close(); done(performance.timeOrigin + performance.now()); },
    (e) => { if (e instanceof Deno.errors.ConnectionRefused) done(performance.timeOrigin + performance.now()); });
  await new Promise((r) => setTimeout(r, 5));
}`;

/** Time (ms) from `write()` to the first answer from `to`, probing every 5 ms. */
async function timeToReply(fromNs: string, to: string, write: () => void): Promise<number> {
  const p = new Deno.Command("nsenter", {
    args: [`--net=${nsPath(fromNs)}`, Deno.execPath(), "eval", "--quiet", prober(to)],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const kill = async () => {
    try {
      p.kill("SIGKILL");
    } catch {
      // gone
    }
    await p.status;
  };
  onCleanup("prober", kill);
  const lines = p.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  let t0 = NaN;
  try {
    for (;;) {
      const { value, done } = await lines.read();
      if (done) throw new Error(`no answer from ${to} within 10 s`);
      buf += value;
      const all = buf.split("\n");
      buf = all.pop()!;
      for (const line of all) {
        if (line === "ready") {
          await sleep(30); // a few unanswered probes first
          t0 = performance.timeOrigin + performance.now();
          write();
          continue;
        }
        if (Number.isNaN(t0)) continue;
        const at = Number(line);
        if (at < t0) throw new Error(`${to} answered before its Node was written`);
        return at - t0;
      }
    }
  } finally {
    await lines.cancel().catch(() => {});
    await kill();
  }
}

async function measure(mode: Mode): Promise<{ samples: number[]; routeGoneMs: number[] }> {
  const nodes = await underlay(`a${mode[0]}`, 2);
  const { dir, manifests } = manifestDir(`appear-${mode}`);
  writeJson(`${manifests}/cluster.json`, {
    apiVersion: "v1",
    kind: "List",
    items: [
      { apiVersion: "v1", kind: "Namespace", metadata: { name: "bench" } },
      podManifest("bench", "a", "node-1", { app: "a" }),
      podManifest("bench", "b", "node-2", { app: "b" }),
    ],
  });
  const nodesFile = `${manifests}/nodes.json`;
  const writeNodes = (list: number[]) =>
    writeJson(nodesFile, { apiVersion: "v1", kind: "List", items: list.map(nodeObject) });
  writeNodes([1, 2]);
  const agents = [];
  for (const n of nodes) agents.push(await startAgent(n, manifests, dir, mode));
  for (const a of agents) await a.status(60);
  const a = await addPod(agents[0]!, dir, "bench", "a");
  const b = await addPod(agents[1]!, dir, "bench", "b");
  // The status a kubelet would write: each node learns the other's pod address.
  writeJson(`${manifests}/cluster.json`, {
    apiVersion: "v1",
    kind: "List",
    items: [
      { apiVersion: "v1", kind: "Namespace", metadata: { name: "bench" } },
      podManifest("bench", "a", "node-1", { app: "a" }, a.ip),
      podManifest("bench", "b", "node-2", { app: "b" }, b.ip),
    ],
  });
  for (const ag of agents) await ag.status(60);
  if (!(await pingOk(a.ns, b.ip))) throw new Error(`${mode}: ${a.ip} does not reach ${b.ip}`);
  const samples: number[] = [];
  const routeGoneMs: number[] = [];
  const theirs = podCidr(2);
  for (let s = 0; s < SAMPLES; s++) {
    const t = performance.now();
    writeNodes([1]);
    while ((await ownRoutes(nodes[0]!.ns)).includes(theirs)) {
      if (performance.now() - t > 10_000) throw new Error(`${mode}: node-1 keeps its route`);
      await sleep(5);
    }
    routeGoneMs.push(performance.now() - t);
    samples.push(await timeToReply(a.ns, b.ip, () => writeNodes([1, 2])));
  }
  for (const ag of agents) await ag.stop();
  return { samples, routeGoneMs };
}

async function main(): Promise<void> {
  installSignalCleanup();
  const load0 = loadAvg();
  const results: Record<string, unknown> = { at: new Date().toISOString(), samples: SAMPLES };
  const rows: string[] = [];
  for (const mode of MODES) {
    const m = await measure(mode);
    results[mode] = {
      nodeWrittenToReplyMs: {
        median: median(m.samples),
        p90: p90(m.samples),
        max: Math.max(...m.samples),
        samples: m.samples,
      },
      nodeRemovedToRouteGoneMs: { median: median(m.routeGoneMs), samples: m.routeGoneMs },
    };
    log(`${mode}: ${m.samples.map((x) => x.toFixed(0)).join(" ")} ms`);
    rows.push(
      `| ${mode} | **${median(m.samples).toFixed(1)}** / ${p90(m.samples).toFixed(1)} / ${
        Math.max(...m.samples).toFixed(1)
      } ms | ${(median(m.samples) / 1000).toFixed(3)} | ${median(m.routeGoneMs).toFixed(1)} ms |`,
    );
  }
  results.loadAverage = { start: load0, end: loadAvg() };
  Deno.writeTextFileSync(OUT, JSON.stringify(results, null, 2) + "\n");
  console.log(
    `| mode | Node written -> first reply (median / p90 / max of ${SAMPLES}) | ratio to the 1 s goal | Node removed -> route gone (median) |
| --- | --- | --- | --- |
${rows.join("\n")}`,
  );
}

try {
  await main();
} finally {
  await cleanupAll();
}
