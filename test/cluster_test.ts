// Multi-node on the real kernel: three nodes (network namespaces on an underlay bridge), each
// with its agent (`--routing vxlan|native --masquerade`), its kube-proxy stand-in and pods
// attached by the plugin with `"subnet": "usePodCidr"` (test/_cluster.ts). Real traffic
// crosses nodes: ping, TCP, UDP, a Service whose backend is on another node, 4 MiB both ways
// (MTU); a node joins and leaves; an agent is killed under a running flow; a pod reaches a
// "world" outside the cluster with its node's address; bad Node objects are reported while
// the rest keeps working.
import assert from "node:assert/strict";
import {
  type Cluster,
  type ClusterNode,
  eventually,
  nodeObject,
  ownedRoutes,
  type Routing,
  withCluster,
} from "./_cluster.ts";
import {
  askPeer,
  BULK,
  bulkBothWays,
  openConnection,
  type Probe,
  probeAll,
  probeUntil,
  startServers,
} from "./_traffic.ts";
import { namespaceObject, podObject } from "../src/netpol/testdata/_objects.ts";
import { pingEventually } from "./_cni.ts";
import type { Pod } from "./_pods.ts";
import { tryRun } from "./_kernel.ts";

/** Namespace x and one pod per node (x/n1, x/n2, ...), each placed on its node. */
async function podPerNode(c: Cluster, nodes = c.nodes): Promise<Pod[]> {
  c.apply(namespaceObject("x"));
  const placeholder = { podIp: () => "198.18.0.1" };
  for (const n of nodes) {
    c.placement.set(`x/n${n.index}`, n);
    c.apply(podObject(placeholder, "x", `n${n.index}`));
  }
  await c.synced();
  const pods: Pod[] = [];
  for (const n of nodes) {
    const pod = await c.addPod(n, "x", `n${n.index}`);
    c.apply(podObject({ podIp: () => pod.ip }, "x", `n${n.index}`));
    pods.push(pod);
  }
  await c.synced();
  return pods;
}

/** Each pod probes every other pod over TCP and UDP; the cells that differ from `want`. */
function crossProbes(pods: Pod[], to: (p: Pod, i: number) => string, want: boolean): string[] {
  const probes: Probe[] = [];
  const names: string[] = [];
  pods.forEach((a, i) =>
    pods.forEach((b, j) => {
      if (i === j) return;
      for (const proto of ["tcp", "udp"] as const) {
        probes.push({ from: a.netns, to: to(b, j), port: 80, proto });
        names.push(`${proto} pod ${i + 1} -> ${to(b, j)}`);
      }
    })
  );
  const got = probeUntil(probes, probes.map(() => want));
  return names.filter((_, k) => got[k] !== want);
}

for (const routing of ["vxlan", "native"] as Routing[]) {
  Deno.test(`${routing}: pods on three nodes reach each other across nodes by ping, TCP and UDP, through pod and Service IPs, and 4 MiB cross both ways`, async () => {
    await withCluster({ size: 3, routing }, async (c) => {
      const pods = await podPerNode(c);
      const servers = await startServers(
        pods.map((p) => ({ netns: p.netns, tcp: [80], udp: [80] })),
      );
      try {
        const vip = (_: Pod, j: number) => `10.96.0.${10 + j}`;
        await c.addServices(pods.flatMap((p, j) =>
          (["tcp", "udp"] as const).map((proto) => ({
            vip: vip(p, j),
            port: 80,
            proto,
            backend: p.ip,
            targetPort: 80,
          }))
        ));
        for (const [i, a] of pods.entries()) {
          for (const [j, b] of pods.entries()) {
            if (i !== j) assert.ok(await pingEventually(a.netns, b.ip), `ping ${i} -> ${j}`);
          }
        }
        assert.deepEqual(crossProbes(pods, (p) => p.ip, true), [], "through pod IPs");
        assert.deepEqual(crossProbes(pods, vip, true), [], "through Service IPs");
        const [a, b] = pods as [Pod, Pod];
        assert.deepEqual(await bulkBothWays(a.netns, b.netns, b.ip), { there: BULK, back: BULK });
        assert.deepEqual(await bulkBothWays(b.netns, a.netns, a.ip), { there: BULK, back: BULK });
        // Every node routed the other two, as its status says.
        for (const st of await c.synced()) {
          const others = st.nodes.filter((n) => !n.self);
          assert.equal(others.length, 2);
          for (const n of others) assert.equal(n.routing.routed, true, JSON.stringify(n));
        }
      } finally {
        await servers.stop();
      }
    });
  });
}

Deno.test("vxlan: a node joining is routed and its pods reached from the others; leaving takes its routes away", async () => {
  await withCluster({ size: 2, routing: "vxlan" }, async (c) => {
    const [n1, n2] = c.nodes as [ClusterNode, ClusterNode];
    const n3 = await c.addNode();
    await c.startAgent(n3);
    // Not yet a Node object: nobody routes to 10.244.3.0/24.
    assert.doesNotMatch(await ownedRoutes(n1), /10\.244\.3\.0\/24/);
    c.apply(nodeObject(n3));
    const pods = await podPerNode(c, [n1, n2, n3]);
    for (const n of [n1, n2]) {
      await eventually(
        `${n.name} routes node-3`,
        async () => /10\.244\.3\.0\/24/.test(await ownedRoutes(n)),
      );
    }
    const servers = await startServers(pods.map((p) => ({ netns: p.netns, tcp: [80], udp: [80] })));
    try {
      assert.deepEqual(crossProbes(pods, (p) => p.ip, true), []);
      c.delete({ kind: "Node", name: n3.name });
      for (const n of [n1, n2]) {
        await eventually(
          `${n.name} unroutes node-3`,
          async () => !/10\.244\.3\.0/.test(await ownedRoutes(n)),
        );
        assert.doesNotMatch(
          (await tryRun("bridge", ["-n", n.ns, "fdb", "show", "dev", "ebpfcni.vxlan"])).stdout,
          new RegExp(n3.address.replaceAll(".", "\\.")),
        );
      }
      const [p1, p2, p3] = pods as [Pod, Pod, Pod];
      assert.deepEqual(
        probeAll([{ from: p1.netns, to: p3.ip, port: 80, proto: "tcp" }]),
        [false],
        "node-3's pod is not reached once node-3 left",
      );
      assert.deepEqual(
        probeUntil([{ from: p1.netns, to: p2.ip, port: 80, proto: "tcp" }], [true]),
        [true],
        "the nodes that stay still talk",
      );
    } finally {
      await servers.stop();
    }
  });
});

Deno.test("an agent killed with SIGKILL and restarted under a cross-node flow loses none of it", async () => {
  await withCluster({ size: 2, routing: "vxlan" }, async (c) => {
    const [n1] = c.nodes as [ClusterNode, ClusterNode];
    const [a, b] = await podPerNode(c) as [Pod, Pod];
    const servers = await startServers([{ netns: b.netns, tcp: [], udp: [80], tcpEcho: [81] }]);
    try {
      const conn = openConnection(a.netns, b.ip, 81);
      let sent = 0;
      let lost = 0;
      let running = true;
      // The flow: a round trip on the open connection and a UDP exchange, continuously.
      const flow = (async () => {
        while (running) {
          sent++;
          if (!conn.roundTrip(2000)) lost++;
          const [udp] = probeAll([{ from: a.netns, to: b.ip, port: 80, proto: "udp" }], 2000);
          if (!udp) lost++;
          await new Promise((ok) => setTimeout(ok, 20));
        }
      })();
      try {
        await eventually("the flow runs", () => sent > 10);
        await n1.agent!.kill9();
        const mid = sent;
        await eventually("the flow runs without the agent", () => sent > mid + 10);
        await c.startAgent(n1);
        await n1.agent!.synced();
        const after = sent;
        await eventually("the flow runs after the restart", () => sent > after + 10);
      } finally {
        running = false;
        await flow;
        conn.close();
      }
      assert.equal(lost, 0, `${lost} of ${sent * 2} exchanges lost`);
      assert.ok(/10\.244\.2\.0\/24/.test(await ownedRoutes(n1)), "node-2 still routed");
    } finally {
      await servers.stop();
    }
  });
});

Deno.test("masquerade: a pod reaches the world outside the cluster with its node's address, while a pod of another node sees the pod's own address", async () => {
  await withCluster({ size: 2, routing: "native" }, async (c) => {
    const [n1] = c.nodes as [ClusterNode, ClusterNode];
    const [a, b] = await podPerNode(c) as [Pod, Pod];
    const servers = await startServers([
      { netns: c.world.path, tcp: [], udp: [], tcpPeer: [82] },
      { netns: b.netns, tcp: [], udp: [], tcpPeer: [82] },
    ]);
    try {
      // The world has no route to any pod: only the node's address can be answered.
      let seen: string | undefined;
      await eventually("the world answers", () => {
        seen = askPeer(a.netns, c.world.address, 82);
        return seen !== undefined;
      });
      assert.equal(seen, n1.address, "the world sees the node's address");
      assert.equal(askPeer(a.netns, b.ip, 82), a.ip, "a pod of another node sees the pod's");
    } finally {
      await servers.stop();
    }
  });
});

Deno.test("bad Node objects (no pod CIDR, no address, one CIDR claimed twice, a CIDR in the Service range) are reported with object and field while cross-node traffic goes on", async () => {
  await withCluster({ size: 2, routing: "vxlan" }, async (c) => {
    const [a, b] = await podPerNode(c) as [Pod, Pod];
    const servers = await startServers([{ netns: b.netns, tcp: [80], udp: [80] }]);
    try {
      const bad = (name: string, spec: unknown, addresses: unknown[]) => ({
        apiVersion: "v1",
        kind: "Node",
        metadata: { name },
        spec,
        status: { addresses },
      });
      const ip = (address: string) => [{ type: "InternalIP", address }];
      c.apply(bad("no-cidr", {}, ip("10.0.0.50")));
      c.apply(bad("no-address", { podCIDRs: ["10.244.51.0/24"] }, []));
      c.apply(bad("twin-1", { podCIDRs: ["10.244.52.0/24"] }, ip("10.0.0.52")));
      c.apply(bad("twin-2", { podCIDRs: ["10.244.52.0/24"] }, ip("10.0.0.53")));
      c.apply(bad("in-services", { podCIDRs: ["10.96.0.0/25"] }, ip("10.0.0.54")));
      // A pod on node-1 makes the Service CIDR known to node-1's datapath (from the conflist).
      for (const st of await c.synced()) {
        const problems = (name: string) => st.nodes.find((n) => n.name === name)?.problems ?? [];
        assert.ok(
          problems("no-cidr").some((p) => p.startsWith('Node "no-cidr": spec.podCIDRs:')),
          JSON.stringify(st.nodes),
        );
        assert.ok(
          problems("no-address").some((p) => p.startsWith('Node "no-address": status.addresses:')),
        );
        for (const [me, other] of [["twin-1", "twin-2"], ["twin-2", "twin-1"]]) {
          assert.ok(
            problems(me!).some((p) =>
              p.startsWith(`Node "${me}": spec.podCIDRs:`) && p.includes(`Node "${other}"`)
            ),
            JSON.stringify(problems(me!)),
          );
        }
        assert.ok(
          problems("in-services").some((p) =>
            p.startsWith('Node "in-services": spec.podCIDRs:') && p.includes("Service CIDR")
          ),
          JSON.stringify(problems("in-services")),
        );
        // The good nodes are still routed.
        for (const n of st.nodes.filter((n) => n.name.startsWith("node-") && !n.self)) {
          assert.equal(n.routing.routed, true, JSON.stringify(n));
        }
      }
      for (const n of c.nodes) {
        const routes = await ownedRoutes(n);
        assert.doesNotMatch(routes, /10\.244\.5[0-9]\.|10\.96\./, `${n.name}: ${routes}`);
      }
      assert.deepEqual(
        probeUntil([
          { from: a.netns, to: b.ip, port: 80, proto: "tcp" },
          { from: a.netns, to: b.ip, port: 80, proto: "udp" },
        ], [true, true]),
        [true, true],
      );
    } finally {
      await servers.stop();
    }
  });
});
