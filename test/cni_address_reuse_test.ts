// A reused address inherits nothing: a pod deleted (DEL) or collected (GC) takes its tracked
// connections with it, so the next pod given its address, with other labels or another
// identity, is judged on the old pod's very 5-tuples (same source ports), in both modes.
import assert from "node:assert/strict";
import { allowPair, type TestNetwork, withNetwork } from "./_cni.ts";
import { addPod, cli, type Pod } from "./_pods.ts";
import { type Probe, probeAll, probeUntil, startServers } from "./_traffic.ts";
import { addK8sPod, ManifestDir, startAgent } from "./_agent.ts";
import { k8sConfig, randomServiceCidr } from "./_agent.ts";
import { namespaceObject, networkPolicy, podObject } from "../src/netpol/testdata/_objects.ts";

const TCP = 8080;
const UDP = 9090;
const TCP_SPORT = 40123;
const UDP_SPORT = 40124;

/** Two addresses in the pool: b takes the first, so every client gets the second. */
function twoAddresses(net: TestNetwork, config: Record<string, unknown>): Record<string, unknown> {
  const ipam = config.ipam as Record<string, unknown>;
  const base = net.gateway.replace(/\.1$/, "");
  return { ...config, ipam: { ...ipam, rangeStart: `${base}.10`, rangeEnd: `${base}.11` } };
}

/** The client's probes to b from fixed source ports: a TCP connection and a UDP exchange. */
function probes(client: Pod, b: Pod): Probe[] {
  return [
    { from: client.netns, to: b.ip, port: TCP, proto: "tcp", sport: TCP_SPORT },
    { from: client.netns, to: b.ip, port: UDP, proto: "udp", sport: UDP_SPORT },
  ];
}

/** The new client's probes on the old 5-tuples, once: a retry would find its own TCP
 * socket's TIME_WAIT on the port. Its path to b is resolved first (ARP passes whatever the
 * policy), so no probe is lost to it. */
function reusedProbes(client: Pod, b: Pod): boolean[] {
  probeAll([{ from: client.netns, to: b.ip, port: UDP, proto: "udp" }], 300);
  return probeAll(probes(client, b), 2500);
}

async function trackedOf(net: TestNetwork, ip: string): Promise<string[]> {
  const rows = JSON.parse(await cli(net, "ct", "list", "--json")) as {
    src: string;
    sport: number;
    dst: string;
    dport: number;
    proto: string;
  }[];
  return rows.filter((r) => r.src === ip || r.dst === ip)
    .map((r) => `${r.proto} ${r.src}:${r.sport} -> ${r.dst}:${r.dport}`).sort();
}

async function gc(net: TestNetwork, config: Record<string, unknown>, keep: Pod[]): Promise<void> {
  const r = await net.run({
    command: "GC",
    config: {
      ...config,
      "cni.dev/valid-attachments": keep.map((p) => ({ containerID: p.id, ifname: "eth0" })),
    },
  });
  assert.equal(r.code, 0, r.stdout + r.stderr);
}

async function del(net: TestNetwork, config: Record<string, unknown>, p: Pod): Promise<void> {
  const r = await net.run({
    command: "DEL",
    containerId: p.id,
    netns: p.netns,
    ifname: "eth0",
    config,
  });
  assert.equal(r.code, 0, r.stdout + r.stderr);
}

for (const how of ["DEL", "GC"] as const) {
  Deno.test(`identity mode: after ${how} of a client, a pod of another identity given its address is judged on its 5-tuples`, async () => {
    await withNetwork(async (net) => {
      const config = twoAddresses(net, net.config({ conntrack: true }));
      const b = await addPod(net, 200, { config });
      const a = await addPod(net, 100, { config });
      await allowPair(net.pinDir, 100, 200);
      const servers = await startServers([{ netns: b.netns, tcp: [TCP], udp: [UDP] }]);
      try {
        assert.deepEqual(probeUntil(probes(a, b), [true, true]), [true, true]);
        assert.equal((await trackedOf(net, a.ip)).length, 2);
        if (how === "DEL") await del(net, config, a);
        else await gc(net, config, [b]);
        assert.deepEqual(await trackedOf(net, a.ip), [], `${how} left the pod's connections`);
        const c = await addPod(net, 300, { config });
        assert.equal(c.ip, a.ip, "the new pod reuses the address");
        assert.deepEqual(reusedProbes(c, b), [false, false]);
        assert.deepEqual(await trackedOf(net, c.ip), []);
      } finally {
        await servers.stop();
      }
    });
  });
}

Deno.test("kubernetes mode: after DEL of a client, a pod with other labels given its address is judged on its 5-tuples", async () => {
  await withNetwork(async (net) => {
    const manifests = new ManifestDir(net.dir);
    // The source's addresses are not the pods' own here: their attachments' are.
    const pods = ["a", "b", "c"];
    const env = { podIp: (p: string) => `198.18.0.${10 + pods.indexOf(p[2]!)}` };
    manifests.apply(namespaceObject("x"));
    for (const p of pods) manifests.apply(podObject(env, "x", p));
    // b takes connections from a only.
    manifests.apply(networkPolicy("x", "b-from-a", {
      podSelector: { matchLabels: { pod: "b" } },
      ingress: [{ from: [{ podSelector: { matchLabels: { pod: "a" } } }] }],
    }));
    const config = twoAddresses(net, k8sConfig(net, randomServiceCidr()));
    const agent = await startAgent(net, { manifests: manifests.dir });
    let servers: Awaited<ReturnType<typeof startServers>> | undefined;
    try {
      await agent.synced();
      const b = await addK8sPod(net, config, "x", "b");
      const a = await addK8sPod(net, config, "x", "a");
      servers = await startServers([{ netns: b.netns, tcp: [TCP], udp: [UDP] }]);
      await agent.synced();
      assert.deepEqual(probeUntil(probes(a, b), [true, true]), [true, true]);
      assert.equal((await trackedOf(net, a.ip)).length, 2);
      await del(net, config, a);
      assert.deepEqual(await trackedOf(net, a.ip), [], "DEL left the pod's connections");
      const c = await addK8sPod(net, config, "x", "c");
      assert.equal(c.ip, a.ip, "the new pod reuses the address");
      await agent.synced();
      assert.deepEqual(reusedProbes(c, b), [false, false]);
    } finally {
      await servers?.stop();
      const st = await agent.stop();
      assert.equal(st.code, 0, `agent exit ${st.code}: ${agent.logs()}`);
    }
  });
});
