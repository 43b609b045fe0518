// Every upstream NetworkPolicy case (src/netpol/testdata) on real traffic with the nine pods
// spread over three nodes (test/_cluster.ts): x/a on node-1, x/b on node-2, x/c on node-3, y's
// pods rotated by one node, z's by two, so every namespace and every pod letter is on every
// node and most cells cross nodes. Probes go through pod IPs and through Service IPs (DNATed by
// the kube-proxy stand-in of the client's node, the backend possibly on another node).
import assert from "node:assert/strict";
import { type Cluster, type Routing, withCluster } from "./_cluster.ts";
import { type MatrixTarget, runCase } from "./_matrix.ts";
import type { Pod } from "./_pods.ts";
import { startServers } from "./_traffic.ts";
import type { Service } from "./_kubeproxy.ts";
import { baseCluster, casePods, upstreamCases } from "../src/netpol/testdata/upstream_cases.ts";
import type { CaseEnv } from "../src/netpol/testdata/format.ts";

/** Addresses before the pods are attached (an agent must know a pod before its ADD). */
const PLACEHOLDER: CaseEnv = {
  podIp: (pod) => `198.18.${"xyz".indexOf(pod[0]!) + 1}.${10 + "abc".indexOf(pod[2]!)}`,
};

async function withSpreadCluster(
  routing: Routing,
  fn: (c: MatrixTarget, cluster: Cluster) => Promise<void>,
): Promise<void> {
  await withCluster({ size: 3, routing }, async (cluster) => {
    for (const p of casePods()) {
      const k = "xyz".indexOf(p[0]!) + "abc".indexOf(p[2]!);
      cluster.placement.set(p, cluster.nodes[k % 3]!);
    }
    for (const o of baseCluster(PLACEHOLDER)) cluster.apply(o);
    await cluster.synced();
    const pods = new Map<string, Pod>();
    for (const p of casePods()) {
      const [ns = "", name = ""] = p.split("/");
      pods.set(p, await cluster.addPod(cluster.placement.get(p)!, ns, name));
    }
    const env: CaseEnv = { podIp: (pod) => pods.get(pod)!.ip };
    for (const o of baseCluster(env)) cluster.apply(o);
    const vips = new Map(casePods().map((p, i) => [p, `10.96.0.${10 + i}`]));
    const services: Service[] = casePods().flatMap((p) =>
      [80, 81].flatMap((port) =>
        (["tcp", "udp"] as const).map((proto) => ({
          vip: vips.get(p)!,
          port,
          proto,
          backend: pods.get(p)!.ip,
          targetPort: port,
        }))
      )
    );
    await cluster.addServices(services);
    const servers = await startServers(
      [...pods.values()].map((p) => ({ netns: p.netns, tcp: [80, 81], udp: [80, 81] })),
    );
    try {
      await cluster.synced();
      await fn({
        apply: (o) => cluster.apply(o),
        delete: (ref) => cluster.delete(ref),
        clear: (kind) => cluster.clear(kind),
        synced: () => cluster.synced(),
        pods,
        env,
        vip: (p) => vips.get(p)!,
      }, cluster);
    } finally {
      await servers.stop();
    }
  });
}

for (const routing of ["vxlan", "native"] as Routing[]) {
  Deno.test(`${routing}: every upstream NetworkPolicy case holds with the pods spread over three nodes, through pod and Service IPs`, async (t) => {
    await withSpreadCluster(routing, async (c) => {
      for (const uc of upstreamCases(c.env)) {
        await t.step(uc.name, async () => {
          const { wrong } = await runCase(c, uc);
          assert.deepEqual(wrong, [], `mismatching cells:\n${wrong.join("\n")}`);
        });
      }
    });
  });
}
