// The agent on real traffic: the upstream NetworkPolicy e2e cases (src/netpol/testdata, the
// same data the engine is checked against) on namespaces x, y, z with pods a, b, c, each a
// network namespace attached through CNI ADD in kubernetes mode, serving TCP and UDP on 80
// and 81, with a Service IP per pod (kube-proxy's DNAT stood in by iptables). Each case's
// objects go into the agent's manifest directory; after `agent status --wait-synced`, every
// cell of the case's expected matrix is probed through the pod IPs and through the Service
// IPs. SCTP probes are left out: this kernel has no SCTP (the SCTP cases' policies are still
// applied, and their verdicts are checked by test/datapath_verdicts_test.ts and the engine).
// Once more with every client probing from the same source ports throughout: each change must
// end the tracked connections it no longer allows (revocation).
import assert from "node:assert/strict";
import { type TestNetwork, withNetwork } from "./_cni.ts";
import type { Pod } from "./_pods.ts";
import { type Probe, probeUntil, startServers } from "./_traffic.ts";
import { type MatrixTarget, reset, runCase } from "./_matrix.ts";
import { type Service, withKubeProxy } from "./_kubeproxy.ts";
import {
  addK8sPod,
  type AgentProcess,
  k8sConfig,
  ManifestDir,
  randomServiceCidr,
  startAgent,
} from "./_agent.ts";
import { baseCluster, casePods, upstreamCases } from "../src/netpol/testdata/upstream_cases.ts";
import { networkPolicy } from "../src/netpol/testdata/_objects.ts";
import type { CaseEnv } from "../src/netpol/testdata/format.ts";

export interface AgentCluster extends MatrixTarget {
  net: TestNetwork;
  agent: AgentProcess;
  manifests: ManifestDir;
}

/** Addresses before the pods are attached: the pods' manifests must exist before their ADD
 * (the agent must know a pod to give it an identity), but their addresses come from IPAM. */
const PLACEHOLDER: CaseEnv = {
  podIp: (pod) => `198.18.${"xyz".indexOf(pod[0]!) + 1}.${10 + "abc".indexOf(pod[2]!)}`,
};

export async function withAgentCluster(fn: (c: AgentCluster) => Promise<void>): Promise<void> {
  await withNetwork(async (net) => {
    const serviceCidr = randomServiceCidr();
    const config = k8sConfig(net, serviceCidr);
    const manifests = new ManifestDir(net.dir);
    for (const o of baseCluster(PLACEHOLDER)) manifests.apply(o);
    const agent = await startAgent(net, { manifests: manifests.dir });
    try {
      await agent.synced();
      const pods = new Map<string, Pod>();
      for (const name of casePods()) {
        const [ns = "", pod = ""] = name.split("/");
        pods.set(name, await addK8sPod(net, config, ns, pod));
      }
      const env: CaseEnv = { podIp: (pod) => pods.get(pod)!.ip };
      for (const o of baseCluster(env)) manifests.apply(o);
      const base = serviceCidr.split(".").slice(0, 3).join(".");
      const vips = new Map(casePods().map((p, i) => [p, `${base}.${10 + i}`]));
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
      const servers = await startServers(
        [...pods.values()].map((p) => ({ netns: p.netns, tcp: [80, 81], udp: [80, 81] })),
      );
      try {
        await withKubeProxy(net.bridge, services, async () => {
          await agent.synced();
          await fn({
            net,
            agent,
            manifests,
            pods,
            env,
            vip: (p) => vips.get(p)!,
            apply: (o) => manifests.apply(o),
            delete: (ref) => manifests.delete(ref),
            clear: (kind) => manifests.clear(kind),
            synced: async () => [await agent.synced()],
          });
        });
      } finally {
        await servers.stop();
      }
    } finally {
      const s = await agent.stop();
      assert.equal(s.code, 0, `the agent exited ${s.code}: ${agent.logs()}`);
    }
  });
}

Deno.test("the agent enforces every upstream case run one after another with every client reusing its source ports: a change ends the tracked connections it denies", async () => {
  await withAgentCluster(async (c) => {
    // One source port per client, target, path, protocol and port, in every case and step:
    // a probe on a tuple an earlier step allowed rides its conntrack entry unless the change
    // ended it.
    const targets = casePods();
    const sport = (_from: string, to: string, via: string, proto: string, port: number) =>
      40000 + targets.indexOf(to) * 8 + (via === "pod" ? 0 : 4) + (proto === "tcp" ? 0 : 2) +
      (port - 80);
    const wrong: string[] = [];
    let failedCases = 0;
    const cases = upstreamCases(c.env);
    for (const uc of cases) {
      const r = await runCase(c, uc, sport);
      if (r.wrong.length > 0) failedCases++;
      wrong.push(...r.wrong.map((w) => `${uc.name}: ${w}`));
    }
    assert.deepEqual(
      wrong.slice(0, 20),
      [],
      `${wrong.length} cells wrong in ${failedCases} of ${cases.length} cases`,
    );
  });
});

Deno.test("the agent enforces every upstream NetworkPolicy case on real traffic, through pod and Service IPs", async (t) => {
  await withAgentCluster(async (c) => {
    const skippedAll: string[] = [];
    for (const uc of upstreamCases(c.env)) {
      await t.step(uc.name, async () => {
        const { wrong, skipped } = await runCase(c, uc);
        skippedAll.push(...skipped.map((s) => `${uc.name}: ${s}`));
        assert.deepEqual(wrong, [], `mismatching cells:\n${wrong.join("\n")}`);
      });
    }
    await t.step("the node reaches every pod whatever the policy", async () => {
      reset(c);
      for (const ns of ["x", "y", "z"]) {
        c.manifests.apply(
          networkPolicy(ns, "deny-all", { podSelector: {}, policyTypes: ["Ingress", "Egress"] }),
        );
      }
      await c.agent.synced();
      const targets = [...c.pods.values()];
      const probes: Probe[] = targets.flatMap((p) => [
        { from: "/proc/self/ns/net", to: p.ip, port: 80, proto: "tcp" as const },
        { from: "/proc/self/ns/net", to: p.ip, port: 81, proto: "udp" as const },
      ]);
      const got = probeUntil(probes, probes.map(() => true));
      assert.deepEqual(got, probes.map(() => true), "node -> pod under default-deny-all");
      // And the pods are isolated from each other meanwhile.
      const a = c.pods.get("x/a")!;
      const b = c.pods.get("y/b")!;
      assert.deepEqual(
        probeUntil([{ from: a.netns, to: b.ip, port: 80, proto: "tcp" }], [false]),
        [false],
      );
    });
    console.log(`probes left out:\n  ${skippedAll.join("\n  ")}`);
  });
});
