// Cross-node traffic with ebpfcni against the same topology without it (issue 17,
// benchmarks): four two-node clusters side by side, each an underlay bridge with two node
// namespaces and a pod per node: ebpfcni in vxlan mode, ebpfcni in native mode (agents and
// plugin under nsenter, kubernetes mode, usePodCidr, masquerade on as by default, a
// NetworkPolicy isolating the server pod and allowing the client), and the baseline of each
// mode (a plain bridge, veth pods, kernel routes or a plain kernel vxlan device made with `ip`,
// no classifier). Per round, in an order that alternates, each cluster gets an iperf3 TCP run
// (pod on node 1 -> pod on node 2) and a TCP request/response run (1-byte echo, one connection,
// each round trip timed); per-round medians, then the median over rounds and the ratio
// ebpfcni / baseline.
// Run: deno run -A bench/multinode_traffic.ts [--rounds=N] [--seconds=S] [--rr=N] [--out=FILE]
// [--agent-flags="--no-masquerade"]
// (as root, after scripts/build.sh; ~2 min). Writes bench/results-multinode-traffic.json.
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
  run,
  textArg,
} from "./lib.ts";
import {
  addPod,
  baselineNodes,
  manifestDir,
  type Mode,
  nodeObject,
  nsPath,
  type Pod,
  podManifest,
  startAgent,
  tcpOk,
  underlay,
  writeJson,
} from "./_multinode.ts";

const ROUNDS = numArg("rounds", 6);
const SECONDS = numArg("seconds", 3);
const RR = numArg("rr", 3000);
const OUT = textArg("out") ?? `${ROOT}/bench/results-multinode-traffic.json`;
/** More flags for the agents (e.g. --no-masquerade: no nftables table, so no netfilter
 * conntrack in the nodes' namespaces, as in the baseline). */
const AGENT_FLAGS = textArg("agent-flags")?.split(" ").filter((f) => f !== "") ?? [];
const PORT = 5201;
const RR_PORT = 7007;

type Variant = `${"ebpfcni" | "baseline"}-${Mode}`;
interface Cluster {
  variant: Variant;
  client: Pod;
  server: Pod;
}

async function ebpfcniCluster(mode: Mode): Promise<Cluster> {
  const nodes = await underlay(`e${mode[0]}`, 2);
  const { dir, manifests } = manifestDir(`traffic-${mode}`);
  const labels = (role: string) => ({ app: "bench", role });
  const objects = [
    { apiVersion: "v1", kind: "Namespace", metadata: { name: "bench" } },
    nodeObject(1),
    nodeObject(2),
    {
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: { name: "server", namespace: "bench" },
      spec: {
        podSelector: { matchLabels: { role: "server" } },
        ingress: [{
          from: [{ podSelector: { matchLabels: { role: "client" } } }],
          ports: [{ port: PORT }, { port: RR_PORT }],
        }],
      },
    },
  ];
  const pods = [
    podManifest("bench", "client", "node-1", labels("client")),
    podManifest("bench", "server", "node-2", labels("server")),
  ];
  writeJson(`${manifests}/cluster.json`, { apiVersion: "v1", kind: "List", items: objects });
  writeJson(`${manifests}/pods.json`, { apiVersion: "v1", kind: "List", items: pods });
  const agents = [];
  for (const n of nodes) agents.push(await startAgent(n, manifests, dir, mode, AGENT_FLAGS));
  for (const a of agents) await a.status(60);
  const client = await addPod(agents[0]!, dir, "bench", "client");
  const server = await addPod(agents[1]!, dir, "bench", "server");
  // The status a kubelet would write: each node learns the other's pod address.
  writeJson(`${manifests}/pods.json`, {
    apiVersion: "v1",
    kind: "List",
    items: [
      podManifest("bench", "client", "node-1", labels("client"), client.ip),
      podManifest("bench", "server", "node-2", labels("server"), server.ip),
    ],
  });
  for (const a of agents) await a.status(60);
  return { variant: `ebpfcni-${mode}`, client, server };
}

async function baselineCluster(mode: Mode): Promise<Cluster> {
  const nodes = await underlay(`b${mode[0]}`, 2);
  const [client, server] = await baselineNodes(nodes, mode, `b${mode[0]}`);
  return { variant: `baseline-${mode}`, client: client!, server: server! };
}

// A 1-byte echo server and a client timing each round trip (µs), one TCP connection.
const RR_SERVER = `const l = Deno.listen({ hostname: "0.0.0.0", port: ${RR_PORT} });
console.log("ready");
for await (const c of l) {
  (async () => {
    c.setNoDelay(true);
    const b = new Uint8Array(1);
    try { for (;;) { const n = await c.read(b); if (n === null) break; await c.write(b); } } catch {}
    c.close();
  })();
}`;
const rrClient = (to: string, n: number) =>
  `setTimeout(() => Deno.exit(3), 60000);
const c = await Deno.connect({ hostname: "${to}", port: ${RR_PORT} });
c.setNoDelay(true);
const b = new Uint8Array(1);
const out: number[] = [];
for (let i = 0; i < ${n + 200}; i++) {
  const t = performance.now();
  await c.write(b);
  let got = 0;
  while (got < 1) { const r = await c.read(b); if (r === null) Deno.exit(4); got += r; }
  if (i >= 200) out.push(Math.round((performance.now() - t) * 1000));
}
c.close();
console.log(JSON.stringify(out));
Deno.exit(0);`;

function spawnIn(ns: string, cmd: string, args: string[]): Deno.ChildProcess {
  return new Deno.Command("nsenter", {
    args: [`--net=${nsPath(ns)}`, cmd, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
}

async function startServers(c: Cluster): Promise<void> {
  const iperf = spawnIn(c.server.ns, "iperf3", ["-s", "-p", String(PORT)]);
  const rr = spawnIn(c.server.ns, Deno.execPath(), ["eval", "--quiet", RR_SERVER]);
  onCleanup(`servers of ${c.variant}`, async () => {
    for (const p of [iperf, rr]) {
      try {
        p.kill("SIGKILL");
      } catch {
        // gone
      }
      await p.status;
    }
  });
  const reader = rr.stdout.pipeThrough(new TextDecoderStream()).getReader();
  await reader.read(); // "ready"
  reader.releaseLock();
  if (!(await tcpOk(c.client.ns, c.server.ip, RR_PORT))) {
    throw new Error(`${c.variant}: ${c.client.ip} does not reach ${c.server.ip}`);
  }
}

async function throughput(c: Cluster): Promise<number> {
  for (let attempt = 0;; attempt++) {
    const r = await run("nsenter", [
      `--net=${nsPath(c.client.ns)}`,
      "iperf3",
      "-c",
      c.server.ip,
      "-p",
      String(PORT),
      "-t",
      String(SECONDS),
      "-J",
    ], { timeoutMs: (SECONDS + 20) * 1000 });
    if (r.code === 0) {
      const j = JSON.parse(r.stdout);
      return j.end.sum_received.bits_per_second / 1e9;
    }
    // The server is busy for a moment after the previous run ends.
    if (attempt >= 3) throw new Error(`iperf3 ${c.variant}: ${r.stdout.slice(0, 300)} ${r.stderr}`);
  }
}

async function roundTrips(c: Cluster): Promise<number[]> {
  const r = await run("nsenter", [
    `--net=${nsPath(c.client.ns)}`,
    Deno.execPath(),
    "eval",
    "--quiet",
    rrClient(c.server.ip, RR),
  ], { timeoutMs: 90_000 });
  if (r.code !== 0) {
    throw new Error(
      `round trips ${c.variant}: ${r.code} ${r.stderr} ${r.stdout.length} ${
        r.stdout.slice(0, 200)
      }`,
    );
  }
  return JSON.parse(r.stdout) as number[];
}

async function main(): Promise<void> {
  installSignalCleanup();
  const load0 = loadAvg();
  const t0 = performance.now();
  log("building four two-node clusters");
  const clusters = [
    await ebpfcniCluster("vxlan"),
    await baselineCluster("vxlan"),
    await ebpfcniCluster("native"),
    await baselineCluster("native"),
  ];
  for (const c of clusters) await startServers(c);
  const mtu = async (c: Cluster) =>
    JSON.parse(
      await run("ip", ["-n", c.client.ns, "-j", "link", "show", "dev", "eth0"]).then((r) =>
        r.stdout
      ),
    )[0].mtu as number;
  const mtus = Object.fromEntries(
    await Promise.all(clusters.map(async (c) => [c.variant, await mtu(c)])),
  );
  log(`pod MTUs: ${JSON.stringify(mtus)}`);
  const gbps: Record<string, number[]> = {};
  const rttRound: Record<string, { median: number; p90: number }[]> = {};
  for (const c of clusters) {
    gbps[c.variant] = [];
    rttRound[c.variant] = [];
  }
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? clusters : [...clusters].reverse();
    for (const c of order) gbps[c.variant]!.push(await throughput(c));
    for (const c of order) {
      const s = await roundTrips(c);
      rttRound[c.variant]!.push({ median: median(s), p90: p90(s) });
    }
    log(
      `round ${r + 1}/${ROUNDS}: ${
        clusters.map((c) =>
          `${c.variant} ${gbps[c.variant]!.at(-1)!.toFixed(2)} Gbit/s ${
            rttRound[c.variant]!.at(-1)!.median
          } us`
        ).join(", ")
      }`,
    );
  }
  const summary = Object.fromEntries(clusters.map((c) => [c.variant, {
    gbitPerSecond: { median: median(gbps[c.variant]!), rounds: gbps[c.variant] },
    rttUs: {
      median: median(rttRound[c.variant]!.map((x) => x.median)),
      p90: median(rttRound[c.variant]!.map((x) => x.p90)),
      rounds: rttRound[c.variant],
    },
  }]));
  const ratios = Object.fromEntries((["vxlan", "native"] as Mode[]).map((m) => {
    const e = summary[`ebpfcni-${m}`]!;
    const b = summary[`baseline-${m}`]!;
    // Both as "higher is better": baseline RTT / ebpfcni RTT.
    return [m, {
      throughput: e.gbitPerSecond.median / b.gbitPerSecond.median,
      rtt: b.rttUs.median / e.rttUs.median,
      rttP90: b.rttUs.p90 / e.rttUs.p90,
      // Per round, pairs measured next to each other.
      throughputPerRound: gbps[`ebpfcni-${m}`]!.map((x, i) => x / gbps[`baseline-${m}`]![i]!),
    }];
  }));
  const results = {
    at: new Date().toISOString(),
    agentFlags: AGENT_FLAGS,
    rounds: ROUNDS,
    iperfSeconds: SECONDS,
    roundTripsPerRound: RR,
    podMtu: mtus,
    loadAverage: { start: load0, end: loadAvg() },
    wallSeconds: (performance.now() - t0) / 1000,
    summary,
    ratios,
  };
  Deno.writeTextFileSync(OUT, JSON.stringify(results, null, 2) + "\n");
  const f = (x: number, d = 2) => x.toFixed(d);
  const rows = (["vxlan", "native"] as Mode[]).map((m) => {
    const e = summary[`ebpfcni-${m}`]!;
    const b = summary[`baseline-${m}`]!;
    return `| ${m} | ${f(e.gbitPerSecond.median)} | ${f(b.gbitPerSecond.median)} | **${
      f(ratios[m]!.throughput, 3)
    }** | ${e.rttUs.median} / ${e.rttUs.p90} | ${b.rttUs.median} / ${b.rttUs.p90} | **${
      f(ratios[m]!.rtt, 3)
    }** / ${f(ratios[m]!.rttP90, 3)} |`;
  });
  console.log(
    `| mode | ebpfcni Gbit/s | baseline Gbit/s | ratio (goal >= 0.95) | ebpfcni RTT median / p90 us | baseline RTT median / p90 us | ratio baseline/ebpfcni median / p90 |
| --- | --- | --- | --- | --- | --- | --- |
${rows.join("\n")}`,
  );
}

try {
  await main();
} finally {
  await cleanupAll();
}
