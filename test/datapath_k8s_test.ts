// Kubernetes mode on real traffic: pods on one bridge, a kube-proxy stand-in DNATing Service
// VIPs to backend pods, and policy entries written straight into the maps (what the agent
// does; the datapath stands on its own here). Judged after DNAT, at the pod the packet is
// delivered to: the source's egress AND the destination's ingress; replies pass; the node
// reaches its pods whatever the policy.
import assert from "node:assert/strict";
import { pingEventually, type TestNetwork, withNetwork } from "./_cni.ts";
import { addPod, cli, counters, type Pod } from "./_pods.ts";
import { type Probe, probeUntil, startServers } from "./_traffic.ts";
import { withKubeProxy } from "./_kubeproxy.ts";
import { ensureDatapath } from "../src/datapath/loader.ts";
import { IsolationMap, RuleMap } from "../src/datapath/maps.ts";
import {
  DIR_EGRESS,
  DIR_INGRESS,
  ISOLATE_EGRESS,
  ISOLATE_INGRESS,
  ISOLATION_MAP,
  RULE_MAP,
} from "../src/spec/bpf_layout.ts";
import { ruleKeys } from "../src/spec/rule_key.ts";

const CLIENT = 1000;
const BACKEND = 2000;

function k8sConfig(net: TestNetwork, serviceCidr: string): Record<string, unknown> {
  return net.config({ policyMode: "kubernetes", serviceCIDRs: [serviceCidr] });
}

/** A Service address inside `cidr` for the n-th service. */
function vipOf(cidr: string, n: number): string {
  const [a, b, c] = cidr.split(".");
  return `${a}.${b}.${c}.${10 + n}`;
}

interface Cluster {
  net: TestNetwork;
  client: Pod;
  backend: Pod;
  vip: string;
}

async function withCluster(fn: (c: Cluster) => void | Promise<void>): Promise<void> {
  await withNetwork(async (net) => {
    // A service range of the test's own, out of the pod subnet.
    const serviceCidr = `10.${100 + Math.floor(Math.random() * 50)}.${
      Math.floor(Math.random() * 250)
    }.0/24`;
    const config = k8sConfig(net, serviceCidr);
    const client = await addPod(net, CLIENT, { config });
    const backend = await addPod(net, BACKEND, { config });
    const vip = vipOf(serviceCidr, 0);
    const services = [80, 81].flatMap((port) =>
      (["tcp", "udp"] as const).map((proto) => ({
        vip,
        port,
        proto,
        backend: backend.ip,
        targetPort: port,
      }))
    );
    const servers = await startServers([
      { netns: client.netns, tcp: [80, 81], udp: [80, 81] },
      { netns: backend.netns, tcp: [80, 81], udp: [80, 81] },
    ]);
    try {
      await withKubeProxy(
        net.bridge,
        services,
        async () => await fn({ net, client, backend, vip }),
      );
    } finally {
      await servers.stop();
    }
  });
}

function entries(net: TestNetwork) {
  const dp = ensureDatapath(net.pinDir);
  return {
    isolation: new IsolationMap(dp.fd(ISOLATION_MAP)),
    rules: new RuleMap(dp.fd(RULE_MAP)),
    [Symbol.dispose]: () => dp.close(),
  };
}

function probes(c: Cluster, port: number, proto: "tcp" | "udp" = "tcp"): Probe[] {
  return [
    { from: c.client.netns, to: c.vip, port, proto }, // through the Service
    { from: c.client.netns, to: c.backend.ip, port, proto }, // straight to the pod
  ];
}

Deno.test("kubernetes mode without entries: every pod reaches every pod, through Services too", async () => {
  await withCluster(async (c) => {
    const all: Probe[] = [
      ...probes(c, 80),
      ...probes(c, 81),
      ...probes(c, 80, "udp"),
      { from: c.backend.netns, to: c.client.ip, port: 80, proto: "tcp" },
    ];
    assert.deepEqual(probeUntil(all, all.map(() => true)), all.map(() => true));
    assert.ok(await pingEventually(c.client.netns, c.backend.ip));
    const s = await counters(c.net);
    assert.ok(s.pass_service! > 0, "the VIP was passed to be judged at the backend");
    assert.ok(s.allow_ct! > 0, "replies passed as such");
  });
});

Deno.test("kubernetes mode: the node reaches its pods whatever the policy", async () => {
  await withCluster(async (c) => {
    {
      using e = entries(c.net);
      // Both pods isolated both ways, with no rule at all.
      e.isolation.set(CLIENT, ISOLATE_INGRESS | ISOLATE_EGRESS);
      e.isolation.set(BACKEND, ISOLATE_INGRESS | ISOLATE_EGRESS);
    }
    const deny = probes(c, 80);
    assert.deepEqual(probeUntil(deny, [false, false]), [false, false], "pods are isolated");
    for (const pod of [c.client, c.backend]) {
      const conn = await Deno.connect({ hostname: pod.ip, port: 80 });
      conn.close();
    }
    assert.ok((await counters(c.net)).allow_host! >= 2);
  });
});

Deno.test("kubernetes mode: an ingress rule for tcp/80 admits the Service and the pod on 80 only", async () => {
  await withCluster((c) => {
    {
      using e = entries(c.net);
      for (
        const k of ruleKeys({
          subject: BACKEND,
          dir: DIR_INGRESS,
          peer: CLIENT,
          proto: 6,
          ports: { from: 80, to: 80 },
        })
      ) {
        e.rules.set(k, true);
      }
      e.isolation.set(BACKEND, ISOLATE_INGRESS);
    }
    const all = [...probes(c, 80), ...probes(c, 81), ...probes(c, 80, "udp")];
    const want = [true, true, false, false, false, false];
    assert.deepEqual(probeUntil(all, want), want);
    // The backend is not egress-isolated: it still reaches the client.
    const back = [{ from: c.backend.netns, to: c.client.ip, port: 81, proto: "tcp" as const }];
    assert.deepEqual(probeUntil(back, [true]), [true]);
  });
});

Deno.test("kubernetes mode: the client's egress isolation denies what the server allows", async () => {
  await withCluster(async (c) => {
    {
      using e = entries(c.net);
      for (const k of ruleKeys({ subject: BACKEND, dir: DIR_INGRESS, peer: CLIENT, proto: 6 })) {
        e.rules.set(k, true);
      }
      e.isolation.set(BACKEND, ISOLATE_INGRESS);
      e.isolation.set(CLIENT, ISOLATE_EGRESS);
    }
    const p80 = probes(c, 80);
    assert.deepEqual(probeUntil(p80, [false, false]), [false, false]);
    assert.ok((await counters(c.net)).drop_egress! > 0);
    // Once its egress allows tcp/80 to the backend, it works both ways in.
    {
      using e = entries(c.net);
      for (
        const k of ruleKeys({
          subject: CLIENT,
          dir: DIR_EGRESS,
          peer: BACKEND,
          proto: 6,
          ports: { from: 80, to: 80 },
        })
      ) {
        e.rules.set(k, true);
      }
    }
    assert.deepEqual(probeUntil(p80, [true, true]), [true, true]);
    assert.deepEqual(probeUntil(probes(c, 81), [false, false]), [false, false]);
  });
});

Deno.test("kubernetes mode: UDP through a Service gets its replies", async () => {
  await withCluster(async (c) => {
    {
      using e = entries(c.net);
      for (
        const k of ruleKeys({
          subject: BACKEND,
          dir: DIR_INGRESS,
          peer: CLIENT,
          proto: 17,
          ports: { from: 80, to: 80 },
        })
      ) {
        e.rules.set(k, true);
      }
      e.isolation.set(BACKEND, ISOLATE_INGRESS);
    }
    const udp = [...probes(c, 80, "udp"), ...probes(c, 81, "udp")];
    const want = [true, true, false, false];
    assert.deepEqual(probeUntil(udp, want), want);
    const ct = JSON.parse(await cli(c.net, "ct", "list", "--json")) as {
      dst: string;
      state: string;
    }[];
    assert.ok(
      ct.some((e) => e.dst === c.vip && e.state.includes("to-service")),
      JSON.stringify(ct),
    );
  });
});
