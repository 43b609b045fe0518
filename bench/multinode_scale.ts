// The agent in a cluster of 100 nodes (issue 17, benchmarks): a manifest directory of 100
// Node objects, 50 pods on each (5,000, with their addresses), 500 NetworkPolicies in 50
// namespaces; two nodes are real (namespaces on an underlay, agents under nsenter with
// `--routing native`), the 98 others only objects, with addresses on the underlay's subnet
// that nobody answers (their routes are programmed all the same). Measures:
//   - per-node map entries (ipcache, isolation, rule_map, cidr) of each real node, from its
//     agent, beside the cluster's size: how they grow with the cluster or the node's own pods;
//   - each agent's RSS;
//   - the 98 other Node objects written (one file renamed into the directory) -> 99 routes
//     of ebpfcni's (proto 235) in each real node's namespace (goal <= 1 s);
//   - change -> enforced: a policy selecting a pod of node-1 rewritten with a new port, to
//     its rule_map entry on node-1 (polled, as bench/agent.ts does; goal <= 100 ms).
// Run: deno run -A bench/multinode_scale.ts [--nodes=N] [--pods-per-node=N] [--policies=N]
// [--rounds=N] [--routing=native|vxlan] [--out=FILE] (as root, after scripts/build.sh;
// ~1 min). Writes bench/results-multinode-scale.json.
import {
  cleanupAll,
  installSignalCleanup,
  loadAvg,
  log,
  median,
  numArg,
  p90,
  ROOT,
  sleep,
  textArg,
} from "./lib.ts";
import {
  type Agent,
  manifestDir,
  type Mode,
  nodeObject,
  type Obj,
  ownRoutes,
  podCidr,
  podManifest,
  rssMiB,
  startAgent,
  underlay,
  writeJson,
} from "./_multinode.ts";
import { openPinnedMaps } from "../src/datapath/loader.ts";
import { RuleMap } from "../src/datapath/maps.ts";
import { DIR_INGRESS, IDENTITY_ANY, RULE_MAP } from "../src/spec/bpf_layout.ts";
import { IPPROTO, ruleKeys } from "../src/spec/rule_key.ts";
import { IdentityAllocator, labelSetKey } from "../src/netpol/identity_alloc.ts";

const NODES = numArg("nodes", 100);
const PODS_PER_NODE = numArg("pods-per-node", 50);
const POLICIES = numArg("policies", 500);
const NAMESPACES = 50;
const ROUNDS = numArg("rounds", 20);
const MODE = (textArg("routing") ?? "native") as Mode;
const OUT = textArg("out") ?? `${ROOT}/bench/results-multinode-scale.json`;

function policy(ns: number, k: number): Obj {
  const base = {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: `pol-${k}`, namespace: `ns-${ns}` },
  };
  const port = 80 + (k % 7);
  switch (k % 4) {
    case 0: // ingress from pods of the namespace, one port
      return {
        ...base,
        spec: {
          podSelector: { matchLabels: { app: `a${k % 5}` } },
          ingress: [{
            from: [{ podSelector: { matchLabels: { role: "r1" } } }],
            ports: [{ port }],
          }],
        },
      };
    case 1: // ingress from a team's namespaces, a port range
      return {
        ...base,
        spec: {
          podSelector: { matchLabels: { app: `a${k % 5}` } },
          ingress: [{
            from: [{ namespaceSelector: { matchLabels: { team: `t${ns % 5}` } } }],
            ports: [{ port: 8080 + k, endPort: 8083 + k }],
          }],
        },
      };
    case 2: // egress to an ipBlock and to DNS in ns-0
      return {
        ...base,
        spec: {
          podSelector: { matchLabels: { role: `r${k % 2}` } },
          policyTypes: ["Egress"],
          egress: [
            { to: [{ ipBlock: { cidr: "10.64.0.0/16", except: [`10.64.${ns}.0/24`] } }] },
            {
              to: [{
                namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "ns-0" } },
              }],
              ports: [{ port: 53, protocol: "UDP" }],
            },
          ],
        },
      };
    default: // ingress from some pods of some namespaces (AND)
      return {
        ...base,
        spec: {
          podSelector: { matchExpressions: [{ key: "role", operator: "In", values: ["r0"] }] },
          ingress: [{
            from: [{
              podSelector: { matchLabels: { app: "a2" } },
              namespaceSelector: { matchLabels: { team: "t1" } },
            }],
            ports: [{ port }],
          }],
        },
      };
  }
}

/** The policy whose changes are timed: ingress to a pod of node-1 on one port. */
const target = (port: number): Obj => ({
  apiVersion: "networking.k8s.io/v1",
  kind: "NetworkPolicy",
  metadata: { name: "bench-target", namespace: "ns-0" },
  spec: {
    podSelector: { matchLabels: { app: "bench-target" } },
    ingress: [{ ports: [{ port }] }],
  },
});

/** Nodes `from..to`'s pods (PODS_PER_NODE each, with addresses) in NAMESPACES namespaces
 * from `nsBase`, and POLICIES policies in those namespaces. */
function clusterObjects(from: number, to: number, nsBase: number): Obj[] {
  const objects: Obj[] = [];
  for (let i = nsBase; i < nsBase + NAMESPACES; i++) {
    objects.push({
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: `ns-${i}`, labels: { team: `t${i % 5}` } },
    });
  }
  for (let n = from; n <= to; n++) {
    const net = podCidr(n).replace(/\.0\/24$/, "");
    for (let j = 0; j < PODS_PER_NODE; j++) {
      const g = (n - 1) * PODS_PER_NODE + j;
      objects.push(
        podManifest(
          `ns-${nsBase + g % NAMESPACES}`,
          `p-${g}`,
          `node-${n}`,
          { app: `a${g % 5}`, role: `r${(g >> 3) % 2}` },
          `${net}.${10 + j}`,
        ),
      );
    }
  }
  for (let k = 0; k < POLICIES; k++) {
    objects.push(policy(nsBase + k % NAMESPACES, Math.floor(k / NAMESPACES)));
  }
  return objects;
}

interface NodeFigures {
  node: string;
  /** Pods scheduled on it (the bench target is on node-1). */
  ownPods: number;
  entries: Record<string, number>;
  pods: number;
  policies: number;
  nodesKnown: number;
  nodesRouted: number;
  routes: number;
  rssMiB: { rss: number; peak: number };
}

async function figures(agents: Agent[]): Promise<NodeFigures[]> {
  const perNode: NodeFigures[] = [];
  for (const a of agents) {
    const st = await a.status(60);
    const nodes = st.nodes as { name: string; routing: { routed: boolean } }[];
    perNode.push({
      node: a.node.name,
      ownPods: PODS_PER_NODE + (a.node.index === 1 ? 1 : 0),
      entries: st.entries as Record<string, number>,
      pods: st.pods as number,
      policies: st.policies as number,
      nodesKnown: nodes.length,
      nodesRouted: nodes.filter((n) => n.routing.routed).length,
      routes: (await ownRoutes(a.node.ns)).length,
      rssMiB: rssMiB(a.pid),
    });
  }
  return perNode;
}

/** Time from `write()` to `want` routes of ebpfcni's in each agent's namespace. */
async function timeRoutes(agents: Agent[], want: number, write: () => void): Promise<number[]> {
  const t = performance.now();
  write();
  const out: number[] = [];
  for (const a of agents) {
    while ((await ownRoutes(a.node.ns)).length < want) {
      if (performance.now() - t > 30_000) {
        throw new Error(`${a.node.name}: ${(await ownRoutes(a.node.ns)).length} routes after 30 s`);
      }
      await sleep(2);
    }
    out.push(performance.now() - t);
  }
  return out;
}

async function main(): Promise<void> {
  installSignalCleanup();
  const load0 = loadAvg();
  const real = await underlay(`s${MODE[0]}`, 2);
  const { dir, manifests } = manifestDir("scale");
  const objects = clusterObjects(1, NODES, 0);
  objects.push(
    podManifest("ns-0", "bench-target", "node-1", { app: "bench-target" }, "10.200.1.250"),
  );
  writeJson(`${manifests}/cluster.json`, { apiVersion: "v1", kind: "List", items: objects });
  writeJson(`${manifests}/target.json`, target(1000));
  writeJson(`${manifests}/nodes-real.json`, {
    apiVersion: "v1",
    kind: "List",
    items: [nodeObject(1), nodeObject(2)],
  });
  log(`scale: ${objects.length} objects, ${NODES} nodes, ${POLICIES} policies`);
  const t0 = performance.now();
  const agents = [];
  for (const n of real) agents.push(await startAgent(n, manifests, dir, MODE));
  for (const a of agents) await a.status(120);
  const startupMs = performance.now() - t0;

  // The other nodes appear at once: routes to all of them.
  const others: Obj[] = [];
  for (let n = 3; n <= NODES; n++) others.push(nodeObject(n));
  const routesMs = await timeRoutes(
    agents,
    NODES - 1,
    () =>
      writeJson(`${manifests}/nodes-others.json`, {
        apiVersion: "v1",
        kind: "List",
        items: others,
      }),
  );
  const perNode = await figures(agents);

  // change -> enforced on node-1.
  const subject = new IdentityAllocator("pod").assign(
    labelSetKey("ns-0", { app: "bench-target" }),
  );
  const keyFor = (port: number) =>
    ruleKeys({
      subject,
      dir: DIR_INGRESS,
      peer: IDENTITY_ANY,
      proto: IPPROTO.tcp,
      ports: { from: port, to: port },
    })[0]!;
  using dp = openPinnedMaps(agents[0]!.pins)!;
  const rules = new RuleMap(dp.fd(RULE_MAP));
  if (rules.get(keyFor(1000)) === undefined) {
    throw new Error("the target's rule is not in rule_map");
  }
  const changeMs: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const port = 2000 + r;
    const k = keyFor(port);
    const start = performance.now();
    writeJson(`${manifests}/target.json`, target(port));
    while (rules.get(k) === undefined) {
      if (performance.now() - start > 10_000) throw new Error(`rule for ${port} never written`);
      await sleep(0);
    }
    changeMs.push(performance.now() - start);
    await sleep(50);
  }
  // The cluster doubles (as many nodes, pods, namespaces and policies again) while the real
  // nodes' own pods stay: do their entries follow the cluster or their own pods?
  const more = clusterObjects(NODES + 1, 2 * NODES, NAMESPACES);
  for (let n = NODES + 1; n <= 2 * NODES; n++) more.push(nodeObject(n));
  const doubledRoutesMs = await timeRoutes(
    agents,
    2 * NODES - 1,
    () =>
      writeJson(`${manifests}/cluster-more.json`, { apiVersion: "v1", kind: "List", items: more }),
  );
  const doubled = await figures(agents);

  const results = {
    at: new Date().toISOString(),
    routing: MODE,
    cluster: {
      nodes: NODES,
      podsPerNode: PODS_PER_NODE,
      pods: NODES * PODS_PER_NODE + 1,
      policies: POLICIES + 1,
      namespaces: NAMESPACES,
    },
    startupToSyncedMs: startupMs,
    otherNodesWrittenToRoutesMs: routesMs,
    perNode,
    doubled: {
      nodes: 2 * NODES,
      pods: 2 * NODES * PODS_PER_NODE + 1,
      policies: 2 * POLICIES + 1,
      moreNodesWrittenToRoutesMs: doubledRoutesMs,
      perNode: doubled,
    },
    changeToEnforcedMs: {
      median: median(changeMs),
      p90: p90(changeMs),
      max: Math.max(...changeMs),
      samples: changeMs,
    },
    loadAverage: { start: load0, end: loadAvg() },
  };
  Deno.writeTextFileSync(OUT, JSON.stringify(results, null, 2) + "\n");
  const f = (x: number) => x.toFixed(1);
  const e = (p: NodeFigures) => p.entries;
  console.log(`| figure | ${perNode.map((p) => p.node).join(" | ")} | goal |
| --- | --- | --- | --- |
| map entries: ipcache / isolation / rule_map / cidr | ${
    perNode.map((p) => `${e(p).ipcache} / ${e(p).isolation} / ${e(p).rules} / ${e(p).cidrs}`)
      .join(" | ")
  } | grow with the node's own pods |
| the same, cluster doubled (${2 * NODES} nodes, ${2 * POLICIES} policies; own pods unchanged) | ${
    doubled.map((p) => `${e(p).ipcache} / ${e(p).isolation} / ${e(p).rules} / ${e(p).cidrs}`)
      .join(" | ")
  } | unchanged |
| agent RSS / peak, MiB | ${
    perNode.map((p) => `${f(p.rssMiB.rss)} / ${f(p.rssMiB.peak)}`).join(" | ")
  } | |
| agent RSS / peak, cluster doubled, MiB | ${
    doubled.map((p) => `${f(p.rssMiB.rss)} / ${f(p.rssMiB.peak)}`).join(" | ")
  } | |
| ${NODES - 2} Node objects written -> ${NODES - 1} routes (proto 235) | ${
    routesMs.map((x) => `**${f(x)} ms**`).join(" | ")
  } | <= 1,000 ms |
| ${NODES} more Node objects (with their pods and policies) -> ${2 * NODES - 1} routes | ${
    doubledRoutesMs.map((x) => `${f(x)} ms`).join(" | ")
  } | |
| nodes routed (agent status) | ${
    perNode.map((p) => `${p.nodesRouted} of ${p.nodesKnown}`).join(" | ")
  } | |
| change -> enforced on node-1 (median / p90 / max of ${ROUNDS}) | **${f(median(changeMs))}** / ${
    f(p90(changeMs))
  } / ${f(Math.max(...changeMs))} ms | | <= 100 ms |
| start-up to synced (both agents, one after the other) | ${f(startupMs)} ms | | |`);
}

try {
  await main();
} finally {
  await cleanupAll();
}
