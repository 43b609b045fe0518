// The policy agent at cluster scale (issue "Policy agent", benchmarks): a manifest directory of
// 1,000 pods in 50 namespaces with 200 NetworkPolicies (pod and namespace selectors, ports,
// port ranges, named ports, ipBlocks with excepts, egress), served by `ebpfcni agent run`.
// Measures, in one run:
//   - start-up: from the process start to `agent status --wait-synced` (all entries written);
//   - change -> enforced: a policy file rewritten with a new port, to the new rule_map entry
//     being there (the bench polls the map itself, ~µs per lookup), and back; the original
//     agent polled every 5 s (its reference figure);
//   - the agent's RSS (VmRSS and its peak VmHWM) at that size;
//   - what serving metrics costs: change -> enforced and the reconcile's time with /metrics
//     served and fetched every second, beside a second agent with none, both taking in the
//     same changes;
//   - CNI ADD latency in kubernetes mode, handed to this agent (with this model) and run in
//     the process (asking the agent for the identity), beside identity mode, alternating call
//     by call, with the agent's own time for the ADDs it ran; DEL (always in the process);
//   - 32 ADDs at once, handed to the agent and run in their processes: wall time and
//     machine-wide CPU per pod;
//   - the least a CNI call handed to the agent would cost: a fresh process asking the agent
//     (`agent status`) beside the start-up floor.
// Run: deno run -A bench/agent.ts [--rounds=N] [--pods=N] [--adds=N] [--out=FILE]
// [--save-manifests=FILE] (as root, after
// scripts/build.sh). Prints a table on stdout, writes bench/results-agent.json.
import {
  BINARY,
  cleanupAll,
  cpuTicks,
  installSignalCleanup,
  log,
  median,
  numArg,
  onCleanup,
  p90,
  pinDir,
  ROOT,
  run,
  spawnAgent,
  tempDir,
  textArg,
  TICK_MS,
} from "./lib.ts";
import { readLauncher, warm } from "./launcher.ts";
import { openPinnedMaps } from "../src/datapath/loader.ts";
import { RuleMap } from "../src/datapath/maps.ts";
import { DIR_INGRESS, RULE_MAP, type RuleKey } from "../src/spec/bpf_layout.ts";
import { IPPROTO, ruleKeys } from "../src/spec/rule_key.ts";
import { IdentityAllocator, labelSetKey } from "../src/netpol/identity_alloc.ts";
import { IDENTITY_ANY } from "../src/spec/bpf_layout.ts";

const ROUNDS = numArg("rounds", 30);
const NAMESPACES = 50;
const PODS = numArg("pods", 1000);
const POLICIES_PER_NS = 4;
const ADDS = numArg("adds", 20);
const PARALLEL = numArg("parallel", 32);
const PARALLEL_REPS = numArg("parallel-reps", 3);
const OUT = textArg("out") ??
  `${ROOT}/bench/results-agent.json`;

type Obj = Record<string, unknown>;

function ns(i: number): Obj {
  return {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name: `ns-${i}`, labels: { team: `t${i % 5}` } },
  };
}

function pod(i: number, j: number, node: string, ip?: string, extra: Obj = {}): Obj {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: `p-${j}`,
      namespace: `ns-${i}`,
      labels: { app: `a${j % 5}`, role: `r${j % 2}`, ...extra },
    },
    spec: {
      nodeName: node,
      containers: [{
        name: "c",
        image: "i",
        ports: [{ name: "http", containerPort: 80 + (j % 3) }, {
          name: "dns",
          containerPort: 53,
          protocol: "UDP",
        }],
      }],
    },
    status: ip === undefined
      ? { phase: "Pending" }
      : { phase: "Running", podIP: ip, podIPs: [{ ip }] },
  };
}

function policy(i: number, k: number): Obj {
  const meta = { name: `pol-${k}`, namespace: `ns-${i}` };
  const base = { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: meta };
  switch (k) {
    case 0:
      return {
        ...base,
        spec: {
          podSelector: { matchLabels: { app: "a0" } },
          ingress: [{
            from: [{ podSelector: { matchLabels: { role: "r1" } } }],
            ports: [{ port: 80 }],
          }],
        },
      };
    case 1:
      return {
        ...base,
        spec: {
          podSelector: { matchLabels: { app: "a1" } },
          ingress: [{
            from: [{ namespaceSelector: { matchLabels: { team: `t${i % 5}` } } }],
            ports: [{ port: 8080, endPort: 8090 }],
          }],
        },
      };
    case 2:
      return {
        ...base,
        spec: {
          podSelector: {},
          policyTypes: ["Egress"],
          egress: [
            { to: [{ ipBlock: { cidr: "10.64.0.0/16", except: [`10.64.${i}.0/24`] } }] },
            {
              to: [{
                namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "ns-0" } },
              }],
              ports: [{ port: "dns", protocol: "UDP" }],
            },
          ],
        },
      };
    default:
      return {
        ...base,
        spec: {
          podSelector: { matchExpressions: [{ key: "role", operator: "In", values: ["r0"] }] },
          ingress: [{
            from: [{
              podSelector: { matchLabels: { app: "a2" } },
              namespaceSelector: { matchLabels: { team: "t1" } },
            }],
            ports: [{ port: "http" }],
          }],
        },
      };
  }
}

/** The policy whose changes are timed: ingress to the target pod on one port, from anyone. */
function target(port: number): Obj {
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: "bench-target", namespace: "ns-0" },
    spec: {
      podSelector: { matchLabels: { app: "bench-target" } },
      ingress: [{ ports: [{ port }] }],
    },
  };
}

function writeJson(path: string, o: unknown): void {
  const tmp = `${path.replace(/[^/]+$/, "")}.tmp-${crypto.randomUUID()}`;
  Deno.writeTextFileSync(tmp, JSON.stringify(o));
  Deno.renameSync(tmp, path);
}

function rssKiB(pid: number): { rss: number; hwm: number } {
  const s = Deno.readTextFileSync(`/proc/${pid}/status`);
  const get = (k: string) => Number(s.match(new RegExp(`${k}:\\s+(\\d+)`))?.[1] ?? NaN);
  return { rss: get("VmRSS"), hwm: get("VmHWM") };
}

async function lastAgentMs(socket: string): Promise<Record<string, number>> {
  const st = await cliStatus(socket);
  return ((st.cni as { lastMs?: Record<string, number> } | undefined)?.lastMs) ?? {};
}

async function cliStatus(socket: string, wait?: number): Promise<Obj> {
  const extra = wait === undefined ? [] : ["--wait-synced", String(wait)];
  const r = await run(BINARY, ["agent", "status", "--json", "--socket", socket, ...extra]);
  if (r.code !== 0) throw new Error(`agent status: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

async function main(): Promise<void> {
  installSignalCleanup();
  const dir = tempDir("agent");
  const manifests = `${dir}/manifests`;
  Deno.mkdirSync(manifests);
  const pins = pinDir("agent");
  const socket = `${dir}/agent.sock`;
  const node = "bench-node";
  // The cluster: pods scheduled on this node (status IPs: a node holds rules only for its own
  // pods, so this is the node the figures are about), the target pod, and the pods ADD attaches.
  const perNs = Math.ceil(PODS / NAMESPACES);
  const objects: Obj[] = [];
  for (let i = 0; i < NAMESPACES; i++) {
    objects.push(ns(i));
    for (let j = 0; j < perNs; j++) {
      objects.push(pod(i, j, node, `10.64.${i}.${10 + j}`));
    }
    for (let k = 0; k < POLICIES_PER_NS; k++) objects.push(policy(i, k));
  }
  objects.push(pod(0, 999, node, "10.64.200.1", { app: "bench-target" }));
  for (let n = 0; n < Math.max(ADDS, PARALLEL); n++) {
    objects.push({
      ...pod(1, 500 + n, node),
      metadata: { name: `add-${n}`, namespace: "ns-1", labels: { app: "a0", role: "r1" } },
    });
  }
  writeJson(`${manifests}/cluster.json`, { apiVersion: "v1", kind: "List", items: objects });
  writeJson(`${manifests}/target.json`, target(1000));
  const keep = textArg("save-manifests");
  if (keep !== undefined) Deno.copyFileSync(`${manifests}/cluster.json`, keep);
  log(`agent bench: ${objects.length} objects, ${NAMESPACES * POLICIES_PER_NS} policies`);

  const t0 = performance.now();
  const child = await spawnAgent("the agent", BINARY, [
    "agent",
    "run",
    "--manifests",
    manifests,
    "--node",
    node,
    "--pin-dir",
    pins,
    "--state-dir",
    `${dir}/state`,
    "--socket",
    socket,
    "--log-level",
    "warn",
    "--metrics-address",
    "127.0.0.1:0",
  ], socket);
  const synced = await cliStatus(socket, 60);
  const startupMs = performance.now() - t0;
  const entries = synced.entries as Record<string, number>;
  log(`synced in ${startupMs.toFixed(0)} ms: ${JSON.stringify(entries)}`);

  // The target's rule key: its identity is the label hash (no collision at this size).
  const subject = new IdentityAllocator("pod").assign(
    labelSetKey("ns-0", { app: "bench-target", role: "r1" }),
  );
  const keyFor = (port: number) =>
    ruleKeys({
      subject,
      dir: DIR_INGRESS,
      peer: IDENTITY_ANY,
      proto: IPPROTO.tcp,
      ports: { from: port, to: port },
    })[0]!;
  using dp = openPinnedMaps(pins)!;
  const rules = new RuleMap(dp.fd(RULE_MAP));
  if (rules.get(keyFor(1000)) === undefined) {
    throw new Error("the target policy's rule is not in rule_map");
  }
  const waitFor = async (port: number, present: boolean) => {
    const k = keyFor(port);
    const start = performance.now();
    while ((rules.get(k) !== undefined) !== present) {
      if (performance.now() - start > 10_000) throw new Error(`rule for ${port} never ${present}`);
      await new Promise((r) => setTimeout(r, 0));
    }
  };
  const changeMs: number[] = [];
  const writesMs: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const port = 2000 + r;
    const start = performance.now();
    writeJson(`${manifests}/target.json`, target(port));
    await waitFor(port, true);
    changeMs.push(performance.now() - start);
    await waitFor(port - 1 === 1999 ? 1000 : port - 1, false);
    writesMs.push(((await cliStatus(socket)).lastReconcile as { ms: number }).ms);
  }
  const mem = rssKiB(child.pid);
  const metrics = await metricsCost({ dir, manifests, node, socket, rules, keyFor });

  // ADD latency: kubernetes mode (this agent, this model) beside identity mode.
  const add = await addLatency(dir, pins, socket);
  // What handing ADD to the agent would cost at least: a fresh process that only asks the
  // agent something (`agent status`), beside the start-up floor, alternating.
  const handoff = await handoffFloor(dir, socket);

  const results = {
    pods: objects.filter((o) => o.kind === "Pod").length,
    namespaces: NAMESPACES,
    policies: NAMESPACES * POLICIES_PER_NS + 1,
    entries,
    startupMs,
    changeToEnforcedMs: {
      median: median(changeMs),
      p90: p90(changeMs),
      max: Math.max(...changeMs),
      samples: changeMs,
    },
    reconcileMs: { median: median(writesMs), p90: p90(writesMs) },
    agentRssMiB: mem.rss / 1024,
    agentPeakRssMiB: mem.hwm / 1024,
    add,
    handoff,
    metrics,
  };
  Deno.writeTextFileSync(OUT, JSON.stringify(results, null, 2) + "\n");
  const f = (x: number) => x.toFixed(1);
  console.log(`| figure | measured | reference | ratio |
| --- | --- | --- | --- |
| change -> enforced (median / p90 / max) | ${f(median(changeMs))} / ${f(p90(changeMs))} / ${
    f(Math.max(...changeMs))
  } ms | target 100 ms; original 5,000 ms poll | ${(median(changeMs) / 100).toFixed(2)}x target |
| of which the compile + write (median) | ${f(median(writesMs))} ms | | |
| start-up to synced (${results.pods} pods, ${results.policies} policies) | ${f(startupMs)} ms | | |
| agent RSS / peak | ${f(results.agentRssMiB)} / ${f(results.agentPeakRssMiB)} MiB | | |
| ADD kubernetes mode, run by the agent (median) | ${f(add.k8s.addMedian)} ms | in the process ${
    f(add.k8sLocal.addMedian)
  } ms; identity mode ${f(add.identity.addMedian)} ms | ${
    (add.k8s.addMedian / add.k8sLocal.addMedian).toFixed(2)
  }x; ${(add.k8s.addMedian / add.identity.addMedian).toFixed(2)}x |
| of which in the agent (its clock, median) | ${f(add.inAgent.addMedian)} ms | | |
| DEL kubernetes mode, in the process (both configs, median) | ${
    f(median([...add.k8s.del, ...add.k8sLocal.del]))
  } ms | identity mode ${f(add.identity.delMedian)} ms | ${
    (median([...add.k8s.del, ...add.k8sLocal.del]) / add.identity.delMedian).toFixed(2)
  }x |
| ${add.parallel.k8s.pods} ADDs at once, run by the agent: wall (median) | ${
    f(add.parallel.k8s.addMedian)
  } ms | in the processes ${f(add.parallel.k8sLocal.addMedian)} ms | ${
    (add.parallel.k8s.addMedian / add.parallel.k8sLocal.addMedian).toFixed(2)
  }x |
| the same: CPU per pod, machine-wide (median) | ${
    f(add.parallel.k8s.cpuPerPodMedian)
  } ms | in the processes ${f(add.parallel.k8sLocal.cpuPerPodMedian)} ms | ${
    (add.parallel.k8s.cpuPerPodMedian / add.parallel.k8sLocal.cpuPerPodMedian).toFixed(2)
  }x |
| the same pods' DELs at once, in the processes either way: wall (median) | ${
    f(add.parallel.k8s.delMedian)
  } ms | agentHandoff false ${f(add.parallel.k8sLocal.delMedian)} ms | ${
    (add.parallel.k8s.delMedian / add.parallel.k8sLocal.delMedian).toFixed(2)
  }x |
| change -> enforced, metrics served and scraped every 1 s (median) | ${
    f(metrics.on.median)
  } ms | no metrics ${f(metrics.off.median)} ms | ${
    (metrics.on.median / metrics.off.median).toFixed(2)
  }x |
| the same, the reconcile's own time (median) | ${f(metrics.on.reconcileMedian)} ms | no metrics ${
    f(metrics.off.reconcileMedian)
  } ms | ${(metrics.on.reconcileMedian / metrics.off.reconcileMedian).toFixed(2)}x |
| a scrape of /metrics (median) | ${f(metrics.scrapeMedian)} ms | | |
| a fresh process asking the agent (\`agent status\`, median) | ${
    f(handoff.statusMedian)
  } ms | floor ${f(handoff.floorMedian)} ms | +${f(handoff.statusMedian - handoff.floorMedian)} ms |
entries: ${JSON.stringify(entries)}`);
}

/** What serving metrics costs the agent: this bench's agent (metrics on, /metrics fetched
 * every second, as a scraper would, more often than Prometheus's default) beside a second
 * agent with none (`--metrics-address ""`, its own pin directory, the same manifest
 * directory): each policy change is taken in by both at once; change -> enforced in each one's
 * rule_map, and each one's reconcile time. */
async function metricsCost(a: {
  dir: string;
  manifests: string;
  node: string;
  socket: string;
  rules: RuleMap;
  keyFor: (port: number) => RuleKey;
}) {
  const pins = pinDir("agent-nometrics");
  const socket = `${a.dir}/agent-nometrics.sock`;
  const { stop } = await spawnAgent("the agent without metrics", BINARY, [
    "agent",
    "run",
    "--manifests",
    a.manifests,
    "--node",
    a.node,
    "--pin-dir",
    pins,
    "--state-dir",
    `${a.dir}/state`,
    "--socket",
    socket,
    "--log-level",
    "warn",
    "--metrics-address",
    "",
  ], socket);
  await cliStatus(socket, 60);
  using dp = openPinnedMaps(pins)!;
  const rulesOff = new RuleMap(dp.fd(RULE_MAP));
  const address = (await cliStatus(a.socket)).metricsAddress as string;
  let scraping = true;
  const scrapeMs: number[] = [];
  const scraper = (async () => {
    while (scraping) {
      const t = performance.now();
      const r = await fetch(`http://${address}/metrics`);
      await r.text();
      scrapeMs.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 1000));
    }
  })();
  const on: number[] = [];
  const off: number[] = [];
  const onRec: number[] = [];
  const offRec: number[] = [];
  try {
    for (let r = 0; r < ROUNDS; r++) {
      const k = a.keyFor(3000 + r);
      const start = performance.now();
      writeJson(`${a.manifests}/target.json`, target(3000 + r));
      let tOn: number | undefined;
      let tOff: number | undefined;
      while (tOn === undefined || tOff === undefined) {
        if (performance.now() - start > 10_000) throw new Error(`rule for ${3000 + r} never set`);
        if (tOn === undefined && a.rules.get(k) !== undefined) tOn = performance.now() - start;
        if (tOff === undefined && rulesOff.get(k) !== undefined) tOff = performance.now() - start;
        await new Promise((r) => setTimeout(r, 0));
      }
      on.push(tOn);
      off.push(tOff);
      onRec.push(((await cliStatus(a.socket)).lastReconcile as { ms: number }).ms);
      offRec.push(((await cliStatus(socket)).lastReconcile as { ms: number }).ms);
    }
  } finally {
    scraping = false;
    await scraper;
    await stop();
  }
  return {
    on: { median: median(on), reconcileMedian: median(onRec), samples: on },
    off: { median: median(off), reconcileMedian: median(offRec), samples: off },
    scrapeMedian: median(scrapeMs),
    scrapes: scrapeMs.length,
  };
}

/** Medians of the start-up floor and of `agent status` (a whole process: start-up, the CLI's
 * modules, one socket round trip to this agent), calls alternating. */
async function handoffFloor(dir: string, socket: string) {
  const launcher = readLauncher();
  const floor = launcher.make(`${ROOT}/bench/_empty.ts`, dir, "floor");
  await warm(floor);
  await warm(BINARY, ["agent", "status", "--json", "--socket", socket]);
  const floorMs: number[] = [];
  const statusMs: number[] = [];
  for (let i = 0; i < ADDS; i++) {
    const r = await run(floor, [], { clearEnv: true, timeoutMs: 30_000 });
    if (r.code !== 0) throw new Error(`floor: ${r.stderr}`);
    floorMs.push(r.ms);
    const s = await run(BINARY, ["agent", "status", "--json", "--socket", socket]);
    if (s.code !== 0) throw new Error(`agent status: ${s.stderr}`);
    statusMs.push(s.ms);
  }
  return {
    floorMedian: median(floorMs),
    statusMedian: median(statusMs),
    floor: floorMs,
    status: statusMs,
  };
}

type Mode = "k8s" | "k8sLocal" | "identity";

interface AddFigures {
  addMedian: number;
  delMedian: number;
  add: number[];
  del: number[];
}

interface BenchNetConf {
  name: string;
  bridge: string;
  pinDir: string;
  stateDir: string;
  extra: Record<string, unknown>;
  subnet: string;
}

async function addLatency(dir: string, k8sPins: string, socket: string) {
  const octet = 10 + Math.floor(Math.random() * 200);
  const k8s: BenchNetConf = {
    name: "bench-k8s",
    bridge: `bk${crypto.randomUUID().slice(0, 6)}`,
    pinDir: k8sPins,
    stateDir: `${dir}/state`,
    extra: { policyMode: "kubernetes", serviceCIDRs: ["10.96.0.0/12"], agentSocket: socket },
    subnet: `10.251.${octet}.0/24`,
  };
  const nets: Record<Mode, BenchNetConf> = {
    // The agent runs the call (handed over by the process, src/cni/handoff.ts).
    k8s,
    // The same network, the process running the call itself and asking the agent only for
    // the pod's identity (what every kubernetes-mode call did before the handoff).
    k8sLocal: { ...k8s, extra: { ...k8s.extra, agentHandoff: false } },
    identity: {
      name: "bench-id",
      bridge: `bi${crypto.randomUUID().slice(0, 6)}`,
      pinDir: pinDir("agent-id"),
      stateDir: `${dir}/state-id`,
      extra: {},
      subnet: `10.252.${octet}.0/24`,
    },
  };
  for (const n of [nets.k8s, nets.identity]) {
    onCleanup(`delete ${n.bridge}`, () => run("ip", ["link", "del", n.bridge]).then(() => {}));
  }
  const config = (n: BenchNetConf) =>
    JSON.stringify({
      cniVersion: "1.1.0",
      name: n.name,
      type: "ebpfcni",
      bridge: n.bridge,
      pinDir: n.pinDir,
      stateDir: n.stateDir,
      ...n.extra,
      ipam: { type: "host-local", subnet: n.subnet, dataDir: `${dir}/ipam` },
    });
  const call = async (
    n: BenchNetConf,
    cmd: string,
    id: string,
    netnsPath: string,
    podName: string,
  ) => {
    const start = performance.now();
    const r = await run(BINARY, [], {
      env: {
        CNI_COMMAND: cmd,
        CNI_CONTAINERID: id,
        CNI_NETNS: netnsPath,
        CNI_IFNAME: "eth0",
        CNI_PATH: "/usr/lib/cni",
        CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=ns-1;K8S_POD_NAME=${podName}`,
      },
      stdin: config(n),
    });
    const ms = performance.now() - start;
    if (r.code !== 0) throw new Error(`${cmd} ${n.name}: ${r.stdout} ${r.stderr}`);
    return ms;
  };
  const out: Record<Mode, AddFigures> = {
    k8s: { addMedian: 0, delMedian: 0, add: [], del: [] },
    k8sLocal: { addMedian: 0, delMedian: 0, add: [], del: [] },
    identity: { addMedian: 0, delMedian: 0, add: [], del: [] },
  };
  const modes: Mode[] = ["k8s", "k8sLocal", "identity"];
  // How long the agent spent on each handed-over call (its own clock, from its status).
  const inAgent: number[] = [];
  for (let i = 0; i < ADDS; i++) {
    // A different order each round.
    const order = [...modes.slice(i % 3), ...modes.slice(0, i % 3)];
    for (const mode of i % 2 === 0 ? order : order.reverse()) {
      const name = `ebpfcni-bench-agent-${mode}-${i}`;
      await run("ip", ["netns", "add", name]);
      onCleanup(`netns ${name}`, () => run("ip", ["netns", "del", name]).then(() => {}));
      const path = `/var/run/netns/${name}`;
      const id = `bench${mode}${i}`;
      out[mode].add.push(await call(nets[mode], "ADD", id, path, `add-${i}`));
      if (mode === "k8s") inAgent.push((await lastAgentMs(socket)).ADD ?? NaN);
      out[mode].del.push(await call(nets[mode], "DEL", id, path, `add-${i}`));
    }
  }
  for (const m of modes) {
    out[m].addMedian = median(out[m].add);
    out[m].delMedian = median(out[m].del);
  }
  // PARALLEL pods at once, handed to the agent and run in their processes, alternating:
  // wall time until all are ready, and machine-wide CPU time per pod.
  const parallel: Record<"k8s" | "k8sLocal", { ms: number[]; cpuMs: number[]; delMs: number[] }> = {
    k8s: { ms: [], cpuMs: [], delMs: [] },
    k8sLocal: { ms: [], cpuMs: [], delMs: [] },
  };
  for (let r = 0; r < PARALLEL_REPS; r++) {
    const pair: ("k8s" | "k8sLocal")[] = r % 2 === 0 ? ["k8s", "k8sLocal"] : ["k8sLocal", "k8s"];
    for (const mode of pair) {
      const pods: { id: string; path: string; name: string }[] = [];
      for (let i = 0; i < PARALLEL; i++) {
        const name = `ebpfcni-bench-par-${mode}-${r}-${i}`;
        await run("ip", ["netns", "add", name]);
        onCleanup(`netns ${name}`, () => run("ip", ["netns", "del", name]).then(() => {}));
        pods.push({ id: `par${mode}${r}x${i}`, path: `/var/run/netns/${name}`, name: `add-${i}` });
      }
      const c0 = cpuTicks();
      const t0 = performance.now();
      await Promise.all(pods.map((p) => call(nets[mode], "ADD", p.id, p.path, p.name)));
      parallel[mode].ms.push(performance.now() - t0);
      parallel[mode].cpuMs.push(((cpuTicks().busy - c0.busy) * TICK_MS) / PARALLEL);
      const t1 = performance.now();
      await Promise.all(pods.map((p) => call(nets[mode], "DEL", p.id, p.path, p.name)));
      parallel[mode].delMs.push(performance.now() - t1);
    }
  }
  const par = (m: "k8s" | "k8sLocal") => ({
    pods: PARALLEL,
    addMedian: median(parallel[m].ms),
    cpuPerPodMedian: median(parallel[m].cpuMs),
    delMedian: median(parallel[m].delMs),
    ...parallel[m],
  });
  return {
    ...out,
    inAgent: { addMedian: median(inAgent), add: inAgent },
    parallel: { k8s: par("k8s"), k8sLocal: par("k8sLocal") },
  };
}

try {
  await main();
} finally {
  await cleanupAll();
}
