// Nodes in the agent (issue 17): the manifest directory's Node objects in `agent status` (pod
// CIDR, address, routing state), bad ones reported with their file or object and field while
// the rest keeps working; "subnet": "usePodCidr" gives ADD an address in this node's pod CIDR
// from the agent, handed over and in the plugin process alike; no Node or no CIDR is code 11
// with the host as it was; DEL needs no CIDR; a CIDR change with old leases is reported; the
// Kubernetes API source lists and watches Nodes.
import assert from "node:assert/strict";
import { ebpfcni } from "./_cli.ts";
import { containerId, ipText, sh, type TestNetwork } from "./_cni.ts";
import {
  addK8sPod,
  type AgentStatusJson,
  type K8sSetup,
  startAgent,
  withK8sSetup,
} from "./_agent.ts";
import { cidrContains, parseCidr, parseIpv4 } from "../src/spec/ipv4.ts";
import { FakeApiServer } from "./_fake_apiserver.ts";
import { namespaceObject, podObject } from "../src/netpol/testdata/_objects.ts";

function nodeObject(name: string, podCIDR?: string, internalIp?: string): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name },
    spec: podCIDR === undefined ? {} : { podCIDR, podCIDRs: [podCIDR] },
    status: internalIp === undefined ? {} : {
      addresses: [{ type: "Hostname", address: name }, {
        type: "InternalIP",
        address: internalIp,
      }],
    },
  };
}

/** Another /24 of the network's range than its own subnet. */
function otherSubnet(net: TestNetwork): string {
  const octet = 10 + ((net.subnetOctet - 10 + 1 + Math.floor(Math.random() * 200)) % 240);
  return `${net.subnetBase}.${octet}.0/24`;
}

function usePodCidr(s: K8sSetup, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const ipam = s.config.ipam as Record<string, unknown>;
  return { ...s.config, ...extra, ipam: { ...ipam, subnet: "UsePodCidr" } };
}

const inCidr = (cidr: string, ip: string) => cidrContains(parseCidr(cidr), parseIpv4(ip));
const byName = (st: AgentStatusJson, name: string) => st.nodes.find((n) => n.name === name);

async function addRaw(s: K8sSetup, config: Record<string, unknown>, name: string) {
  const id = containerId("pod");
  const netns = await s.net.netns();
  const reply = await s.net.run({
    command: "ADD",
    containerId: id,
    netns,
    ifname: "eth0",
    args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=x;K8S_POD_NAME=${name}`,
    config,
  });
  return { id, netns, reply };
}

Deno.test("agent status lists the Nodes with pod CIDR, address and routing state; bad ones are reported with file or object and field, the rest keeps working", async () => {
  await withK8sSetup(["a"], async (s) => {
    const other = otherSubnet(s.net);
    const svc = (s.config.serviceCIDRs as string[])[0]!;
    s.manifests.apply(nodeObject("node-1", s.net.subnet, "192.0.2.1"));
    s.manifests.apply(nodeObject("node-2", other, "192.0.2.2"));
    s.manifests.apply(nodeObject("node-3")); // registered, no CIDR assigned yet
    s.manifests.apply(nodeObject("node-4", other, "192.0.2.4")); // node-2's CIDR
    s.manifests.apply(nodeObject("node-5", svc, "192.0.2.5")); // a Service CIDR
    s.manifests.writeRaw(
      "bad-node.yaml",
      "apiVersion: v1\nkind: Node\nmetadata: {name: node-6}\nspec: {podCIDR: 10.1.2.0/33}\n",
    );
    const agent = await startAgent(s.net, { manifests: s.manifests.dir });
    try {
      await agent.synced();
      // The rest keeps working: a pod of this node is attached with the config's subnet.
      const a = await addK8sPod(s.net, s.config, "x", "a");
      assert.ok(inCidr(s.net.subnet, a.ip));
      const st = await agent.synced();
      assert.deepEqual(st.nodes.map((n) => n.name), [
        "node-1",
        "node-2",
        "node-3",
        "node-4",
        "node-5",
      ]);
      assert.deepEqual(byName(st, "node-1"), {
        name: "node-1",
        podCidrs: [s.net.subnet],
        address: "192.0.2.1",
        self: true,
        routing: { routed: true, via: "this node" },
        problems: [],
      });
      assert.deepEqual(byName(st, "node-2")!.routing, {
        routed: false,
        reason: "routing is off here (--routing none)",
      });
      assert.deepEqual(byName(st, "node-3")!.problems, [
        'Node "node-3": spec.podCIDRs: no IPv4 pod CIDR assigned (yet): not routed',
        'Node "node-3": status.addresses: no IPv4 InternalIP or ExternalIP: not routed',
      ]);
      // Two nodes claiming one CIDR: withheld from both, each told of the other.
      assert.deepEqual(byName(st, "node-2")!.podCidrs, []);
      assert.deepEqual(byName(st, "node-4")!.podCidrs, []);
      assert.match(
        byName(st, "node-2")!.problems[0]!,
        /^Node "node-2": spec\.podCIDRs: .* overlaps Node "node-4"'s/,
      );
      assert.match(
        byName(st, "node-4")!.problems[0]!,
        /^Node "node-4": spec\.podCIDRs: .* overlaps Node "node-2"'s/,
      );
      assert.deepEqual(byName(st, "node-5")!.podCidrs, []);
      assert.match(
        byName(st, "node-5")!.problems[0]!,
        new RegExp(
          `^Node "node-5": spec\\.podCIDRs: .* overlaps the Service CIDR ${
            svc.replaceAll(".", "\\.")
          }`,
        ),
      );
      // The file that does not parse: its path and the field.
      assert.ok(
        st.problems.some((p) =>
          p.startsWith(
            `${s.manifests.dir}/bad-node.yaml: Invalid Node "node-6": spec.podCIDR: must be a valid CIDR`,
          )
        ),
        JSON.stringify(st.problems),
      );
      // The text form lists them too.
      const text = await ebpfcni(["agent", "status", "--socket", agent.socket]);
      assert.equal(text.code, 0, text.stderr);
      assert.match(
        text.stdout,
        new RegExp(
          `^node: +node-1 \\(this node\\) +${
            s.net.subnet.replaceAll(".", "\\.")
          } +192\\.0\\.2\\.1 +this node$`,
          "m",
        ),
      );
      assert.match(
        text.stdout,
        /^node: +node-3 +no pod CIDR +no address +not routed: routing is off here \(--routing none\)$/m,
      );
      assert.match(text.stdout, /^node problem: Node "node-4": spec\.podCIDRs: /m);
      // A node deleted from the directory leaves the list.
      s.manifests.delete({ kind: "Node", name: "node-3" });
      const after = await agent.synced();
      assert.equal(byName(after, "node-3"), undefined);
    } finally {
      const st = await agent.stop();
      assert.equal(st.code, 0, agent.logs());
    }
  });
});

Deno.test('"subnet": "usePodCidr" gives ADD an address in this node\'s pod CIDR, handed over and in process; DEL needs no CIDR', async () => {
  await withK8sSetup(["a", "b"], async (s) => {
    s.manifests.apply(nodeObject("node-1", s.net.subnet, "192.0.2.1"));
    const config = usePodCidr(s);
    const agent = await startAgent(s.net, { manifests: s.manifests.dir });
    const pods: { id: string; netns: string; name: string }[] = [];
    try {
      await agent.synced();
      const a = await addK8sPod(s.net, config, "x", "a");
      pods.push({ id: a.id, netns: a.netns, name: "a" });
      assert.equal((await agent.status()).cni?.handled.ADD, 1, "handed over");
      const b = await addK8sPod(s.net, { ...config, agentHandoff: false }, "x", "b");
      pods.push({ id: b.id, netns: b.netns, name: "b" });
      assert.equal((await agent.status()).cni?.handled.ADD, 1, "run by the process");
      for (const p of [a, b]) {
        assert.ok(inCidr(s.net.subnet, p.ip), p.ip);
        assert.equal((p.result.ips as { address: string }[])[0]!.address.split("/")[1], "24");
      }
      const check = await s.net.run({
        command: "CHECK",
        containerId: a.id,
        netns: a.netns,
        ifname: "eth0",
        args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=x;K8S_POD_NAME=a",
        config: { ...config, prevResult: a.result },
      });
      assert.equal(check.code, 0, check.stdout + check.stderr);
    } finally {
      const st = await agent.stop();
      assert.equal(st.code, 0, agent.logs());
    }
    // With the agent gone: DEL releases without asking for a CIDR.
    for (const p of pods) {
      const del = await s.net.run({
        command: "DEL",
        containerId: p.id,
        netns: p.netns,
        ifname: "eth0",
        args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=x;K8S_POD_NAME=${p.name}`,
        config,
      });
      assert.equal(del.code, 0, del.stdout + del.stderr);
    }
    assert.deepEqual(s.net.leases(), []);
  });
});

Deno.test('"usePodCidr" without this node\'s Node, or without its pod CIDR, is code 11 and changes nothing, until the CIDR comes', async () => {
  await withK8sSetup(["a"], async (s) => {
    const config = usePodCidr(s);
    const agent = await startAgent(s.net, { manifests: s.manifests.dir }, { node: "node-9" });
    try {
      await agent.synced();
      const before = await s.net.snapshot();
      for (const handoff of [true, false]) {
        const r = await addRaw(s, { ...config, agentHandoff: handoff }, "a");
        assert.equal(r.reply.code, 1, `handoff ${handoff}: ${r.reply.stdout}${r.reply.stderr}`);
        assert.equal(r.reply.json?.code, 11);
        assert.match(
          String(r.reply.json?.msg),
          /^No pod CIDR for this node: node "node-9" is not known to the agent's source/,
        );
        assert.deepEqual(await s.net.snapshot(), before, `handoff ${handoff}`);
      }
      s.manifests.apply(nodeObject("node-9", undefined, "192.0.2.9"));
      await agent.synced();
      for (const handoff of [true, false]) {
        const r = await addRaw(s, { ...config, agentHandoff: handoff }, "a");
        assert.equal(r.reply.json?.code, 11, r.reply.stdout);
        assert.match(
          String(r.reply.json?.msg),
          /^No pod CIDR for this node: Node "node-9": spec\.podCIDRs: no IPv4 pod CIDR assigned/,
        );
        assert.deepEqual(await s.net.snapshot(), before, `handoff ${handoff}`);
      }
      // The controller-manager assigns it: the next ADD works, no restart.
      s.manifests.apply(nodeObject("node-9", s.net.subnet, "192.0.2.9"));
      await agent.synced();
      const a = await addK8sPod(s.net, config, "x", "a");
      assert.ok(inCidr(s.net.subnet, a.ip), a.ip);
    } finally {
      const st = await agent.stop();
      assert.equal(st.code, 0, agent.logs());
    }
  });
});

Deno.test("a node's pod CIDR changed under leases of the old one: ADD takes the new CIDR and reports the old leases, which stay", async () => {
  await withK8sSetup(["a", "b", "c"], async (s) => {
    const config = usePodCidr(s);
    const next = otherSubnet(s.net);
    s.manifests.apply(nodeObject("node-1", s.net.subnet, "192.0.2.1"));
    const agent = await startAgent(s.net, { manifests: s.manifests.dir });
    try {
      await agent.synced();
      const a = await addK8sPod(s.net, config, "x", "a");
      assert.ok(inCidr(s.net.subnet, a.ip));
      s.manifests.apply(nodeObject("node-1", next, "192.0.2.1"));
      const st = await agent.synced();
      assert.deepEqual(byName(st, "node-1")!.podCidrs, [next]);
      // In process: the plugin's log (stderr).
      const b = await addRaw(s, { ...config, agentHandoff: false }, "b");
      assert.equal(b.reply.code, 0, b.reply.stdout + b.reply.stderr);
      const bIp = (b.reply.json!.ips as { address: string }[])[0]!.address.split("/")[0]!;
      assert.ok(inCidr(next, bIp), bIp);
      assert.match(
        b.reply.stderr,
        new RegExp(
          `holds 1 lease\\(s\\) outside this node's pod CIDR .*\\(${
            a.ip.replaceAll(".", "\\.")
          }\\)`,
        ),
      );
      // Handed over: the agent's log.
      const c = await addK8sPod(s.net, config, "x", "c");
      assert.ok(inCidr(next, c.ip), c.ip);
      assert.match(agent.logs(), /holds 1 lease\(s\) outside this node's pod CIDR/);
      // Not dropped, not reused: a's lease is there until a's DEL.
      assert.ok(s.net.leases().includes(a.ip), JSON.stringify(s.net.leases()));
    } finally {
      const st = await agent.stop();
      assert.equal(st.code, 0, agent.logs());
    }
  });
});

/** The bridge's IPv4 addresses ("a.b.c.d/n"). */
async function bridgeAddrs(net: TestNetwork): Promise<string[]> {
  const r = await sh("ip", ["-j", "-4", "addr", "show", "dev", net.bridge], { check: true });
  return (JSON.parse(r.stdout) as { addr_info: { local: string; prefixlen: number }[] }[])
    .flatMap((l) => l.addr_info.map((a) => `${a.local}/${a.prefixlen}`)).sort();
}

/** host_map's addresses (the node's own: gateways among them), dotted. */
async function hostMapIps(net: TestNetwork): Promise<string[]> {
  const r = await sh("bpftool", ["-j", "map", "dump", "pinned", `${net.pinDir}/host_map`]);
  if (r.code !== 0) return [];
  const u32 = (v: unknown) =>
    typeof v === "number"
      ? v
      : (v as string[]).slice(0, 4).reduce((n, b, i) => n + parseInt(b, 16) * 256 ** i, 0);
  return (JSON.parse(r.stdout) as { key: unknown }[]).map((e) => ipText(u32(e.key))).sort();
}

const gatewayOf = (cidr: string) => cidr.replace(/\.0\/24$/, ".1");

Deno.test("a node's pod CIDR changed: the DEL of the old CIDR's last pod removes its gateway from the bridge and host_map; the new CIDR's stays", async () => {
  await withK8sSetup(["a", "b"], async (s) => {
    const config = usePodCidr(s);
    const old = s.net.subnet;
    const next = otherSubnet(s.net);
    s.manifests.apply(nodeObject("node-1", old, "192.0.2.1"));
    const agent = await startAgent(s.net, { manifests: s.manifests.dir });
    try {
      await agent.synced();
      const a = await addK8sPod(s.net, config, "x", "a");
      s.manifests.apply(nodeObject("node-1", next, "192.0.2.1"));
      await agent.synced();
      const b = await addK8sPod(s.net, config, "x", "b");
      assert.ok(inCidr(next, b.ip), b.ip);
      const both = [`${gatewayOf(old)}/24`, `${gatewayOf(next)}/24`].sort();
      assert.deepEqual(await bridgeAddrs(s.net), both);
      const hosts = await hostMapIps(s.net);
      assert.ok(hosts.includes(gatewayOf(old)) && hosts.includes(gatewayOf(next)), `${hosts}`);

      const del = (p: { id: string; netns: string }, name: string) =>
        s.net.run({
          command: "DEL",
          containerId: p.id,
          netns: p.netns,
          ifname: "eth0",
          args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=x;K8S_POD_NAME=${name}`,
          config,
        });
      const d = await del(a, "a");
      assert.equal(d.code, 0, d.stdout + d.stderr);
      assert.deepEqual(await bridgeAddrs(s.net), [`${gatewayOf(next)}/24`]);
      const after = await hostMapIps(s.net);
      assert.ok(!after.includes(gatewayOf(old)) && after.includes(gatewayOf(next)), `${after}`);
      const routes = await sh("ip", ["-4", "route", "show", "dev", s.net.bridge], { check: true });
      assert.doesNotMatch(routes.stdout, new RegExp(old.replaceAll(".", "\\.")));
      // The current CIDR's gateway stays with no pod left.
      const e = await del(b, "b");
      assert.equal(e.code, 0, e.stdout + e.stderr);
      assert.deepEqual(await bridgeAddrs(s.net), [`${gatewayOf(next)}/24`]);
    } finally {
      const st = await agent.stop();
      assert.equal(st.code, 0, agent.logs());
    }
  });
});

/** Polls `agent status` until `ok` holds (or gives up after 15 s and returns the last). */
async function statusUntil(
  agent: { status(): Promise<AgentStatusJson> },
  ok: (st: AgentStatusJson) => boolean,
): Promise<AgentStatusJson> {
  let st = await agent.status();
  for (let i = 0; i < 300 && !ok(st); i++) {
    await new Promise((r) => setTimeout(r, 50));
    st = await agent.status();
  }
  return st;
}

Deno.test("on the Kubernetes API: Nodes are listed and watched into agent status, and usePodCidr ADD follows them", async () => {
  await using fake = await FakeApiServer.start();
  await withK8sSetup(["a"], async (s) => {
    const kubeconfig = fake.writeKubeconfig({ auth: "token" });
    fake.put(namespaceObject("x"));
    fake.put(podObject({ podIp: () => "198.18.0.10" }, "x", "a"));
    fake.put(nodeObject("node-1", s.net.subnet, "192.0.2.1"));
    const agent = await startAgent(s.net, { kubeconfig });
    try {
      const st = await agent.synced();
      assert.deepEqual(byName(st, "node-1")?.podCidrs, [s.net.subnet]);
      assert.equal(byName(st, "node-1")?.address, "192.0.2.1");
      const a = await addK8sPod(s.net, usePodCidr(s), "x", "a");
      assert.ok(inCidr(s.net.subnet, a.ip), a.ip);
      // A node joins, changes its address, leaves: the watch brings each.
      fake.put(nodeObject("node-2", otherSubnet(s.net), "192.0.2.2"));
      let now = await statusUntil(agent, (x) => byName(x, "node-2") !== undefined);
      assert.equal(byName(now, "node-2")?.address, "192.0.2.2");
      fake.put(nodeObject("node-2", otherSubnet(s.net), "192.0.2.22"));
      now = await statusUntil(agent, (x) => byName(x, "node-2")?.address === "192.0.2.22");
      assert.equal(byName(now, "node-2")?.address, "192.0.2.22");
      fake.delete("Node", undefined, "node-2");
      now = await statusUntil(agent, (x) => byName(x, "node-2") === undefined);
      assert.deepEqual(now.nodes.map((n) => n.name), ["node-1"]);
      assert.ok(fake.requestsFor("Node", "watch").length > 0, "nodes are watched");
    } finally {
      const st = await agent.stop();
      assert.equal(st.code, 0, agent.logs());
    }
  });
});
