// "ipMasq": true in the network config (the reference bridge plugin's field), identity mode,
// on real traffic. The plugin runs in a "node" namespace (nsenter, as a node's runtime would
// run it), whose bridge the pods attach to; a "world" namespace beside the node answers each
// TCP connection with the source address it saw (it can route back to the pods, so traffic
// that is not masqueraded still connects and shows the pod's address).
import assert from "node:assert/strict";
import {
  BINARY,
  type CniCall,
  type CniReply,
  containerId,
  pluginEnv,
  sh,
  stdinOf,
  type TestNetwork,
  toReply,
  withNetwork,
} from "./_cni.ts";
import { ebpfcni } from "./_cli.ts";
import { randomHex } from "./_kernel.ts";
import { askPeer, startServers } from "./_traffic.ts";
import { ipMasqComment } from "../src/masq/ruleset.ts";

const NODE = "192.168.61.1";
const WORLD = "192.168.61.2";
const PORT = 7001;
const WORLD_ID = 3000;

/** The plugin in the node's namespace. */
async function cniIn(node: string, call: CniCall): Promise<CniReply> {
  const p = new Deno.Command("nsenter", {
    args: [`--net=${node}`, "--", BINARY],
    env: pluginEnv(call),
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = p.stdin.getWriter();
  await w.write(stdinOf(call));
  await w.close();
  return toReply(await p.output());
}

interface PodRef {
  id: string;
  netns: string;
  ip: string;
}

async function addPod(
  net: TestNetwork,
  node: string,
  identity: number,
  config: Record<string, unknown>,
): Promise<PodRef> {
  const id = containerId("mq");
  const netns = await net.netns();
  const r = await cniIn(node, {
    command: "ADD",
    containerId: id,
    netns,
    ifname: "eth0",
    args: `EBPFCNI_IDENTITY=${identity}`,
    config,
  });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const ip = (r.json!.ips as { address: string }[])[0]!.address.split("/")[0]!;
  return { id, netns, ip };
}

/** The comments of the rules in the node's ipMasq table. */
async function ipMasqComments(nodeName: string): Promise<string[]> {
  const r = await sh("ip", ["netns", "exec", nodeName, "nft", "-j", "list", "ruleset"], {
    check: true,
  });
  return (JSON.parse(r.stdout).nftables as { rule?: { table: string; comment?: string } }[])
    .flatMap((i) => i.rule?.table === "ebpfcni-ipmasq" ? [i.rule.comment ?? ""] : []).sort();
}

async function allow(net: TestNetwork, src: number, dst: number): Promise<void> {
  const args = ["--src", String(src), "--dst", String(dst), "--symmetric"];
  const r = await ebpfcni(["policy", "allow", ...args, "--pin-dir", net.pinDir]);
  assert.equal(r.code, 0, r.stderr);
}

Deno.test("ipMasq: a pod reaches the world with its node's address, its bridge's subnet keeps it, DEL and GC remove its rule", async () => {
  await withNetwork(async (net) => {
    const r = randomHex(3);
    const nodeName = `mq-n-${r}`;
    const worldName = `mq-w-${r}`;
    const node = `/var/run/netns/${nodeName}`;
    const world = `/var/run/netns/${worldName}`;
    let servers: { stop(): Promise<void> } | undefined;
    try {
      for (const n of [nodeName, worldName]) await sh("ip", ["netns", "add", n], { check: true });
      await sh("ip", [
        "-n",
        nodeName,
        "link",
        "add",
        "eth0",
        "type",
        "veth",
        "peer",
        "eth0",
        "netns",
        worldName,
      ], { check: true });
      for (const [n, a] of [[nodeName, NODE], [worldName, WORLD]]) {
        await sh("ip", ["-n", n!, "addr", "add", `${a}/24`, "dev", "eth0"], { check: true });
        await sh("ip", ["-n", n!, "link", "set", "eth0", "up"], { check: true });
        await sh("ip", ["-n", n!, "link", "set", "lo", "up"], { check: true });
      }
      await sh("ip", ["netns", "exec", nodeName, "sysctl", "-qw", "net.ipv4.ip_forward=1"], {
        check: true,
      });
      await sh("ip", ["-n", worldName, "route", "add", net.subnet, "via", NODE], { check: true });

      const masq = net.config({ ipMasq: true });
      const p1 = await addPod(net, node, 1001, masq);
      const p2 = await addPod(net, node, 1002, masq);
      // The same network without ipMasq: the control, seen with its own address.
      const p3 = await addPod(net, node, 1003, net.config());
      const world32 = `${WORLD}/32`;
      const cidr = await ebpfcni([
        "cidr",
        "add",
        world32,
        "--identity",
        String(WORLD_ID),
        "--pin-dir",
        net.pinDir,
      ]);
      assert.equal(cidr.code, 0, cidr.stderr);
      for (const id of [1001, 1002, 1003]) await allow(net, id, WORLD_ID);
      await allow(net, 1001, 1002);
      servers = await startServers([
        { netns: world, tcp: [], udp: [], tcpPeer: [PORT] },
        { netns: p2.netns, tcp: [], udp: [], tcpPeer: [PORT] },
      ]);
      const seen = (from: PodRef, to: string) =>
        askPeer(from.netns, to, PORT) ?? askPeer(from.netns, to, PORT);

      assert.equal(seen(p3, WORLD), p3.ip, "without ipMasq the world sees the pod's address");
      assert.equal(seen(p1, WORLD), NODE);
      assert.equal(seen(p2, WORLD), NODE);
      assert.equal(seen(p1, p2.ip), p1.ip, "traffic within the bridge's subnet keeps its source");
      assert.deepEqual(
        await ipMasqComments(nodeName),
        [ipMasqComment(net.name, p1.id, "eth0"), ipMasqComment(net.name, p2.id, "eth0")].sort(),
      );

      const del = await cniIn(node, {
        command: "DEL",
        containerId: p1.id,
        netns: p1.netns,
        ifname: "eth0",
        config: masq,
      });
      assert.equal(del.code, 0, del.stdout + del.stderr);
      assert.deepEqual(await ipMasqComments(nodeName), [ipMasqComment(net.name, p2.id, "eth0")]);
      // A second DEL finds nothing and succeeds.
      const again = await cniIn(node, {
        command: "DEL",
        containerId: p1.id,
        netns: p1.netns,
        ifname: "eth0",
        config: masq,
      });
      assert.equal(again.code, 0, again.stdout + again.stderr);

      // p2's record lost (a wiped state directory): GC finds its rule by the comment alone.
      Deno.removeSync(`${net.stateDir}/${net.name}/${p2.id}_eth0.json`);
      const gc = await cniIn(node, {
        command: "GC",
        config: { ...masq, "cni.dev/valid-attachments": [{ containerID: p3.id, ifname: "eth0" }] },
      });
      assert.equal(gc.code, 0, gc.stdout + gc.stderr);
      assert.deepEqual(await ipMasqComments(nodeName), []);
    } finally {
      await servers?.stop();
      for (const n of [nodeName, worldName]) await sh("ip", ["netns", "del", n]);
    }
  });
});

Deno.test("ipMasq: a DEL whose rules cannot be removed (libnftables missing) still releases the address and fails; the retry removes the rules and succeeds, and so does one after", async () => {
  await withNetwork(async (net) => {
    const nodeName = `mq-d-${randomHex(3)}`;
    const node = `/var/run/netns/${nodeName}`;
    try {
      await sh("ip", ["netns", "add", nodeName], { check: true });
      await sh("ip", ["-n", nodeName, "link", "set", "lo", "up"], { check: true });
      const masq = net.config({ ipMasq: true });
      const pod = await addPod(net, node, 1001, masq);
      assert.deepEqual(net.leases(), [pod.ip]);
      const del = (env: Record<string, string> = {}) =>
        cniIn(node, {
          command: "DEL",
          containerId: pod.id,
          netns: pod.netns,
          ifname: "eth0",
          config: masq,
          env,
        });

      const broken = await del({
        EBPFCNI_LIBNFTABLES: `/nonexistent-${randomHex(4)}/libnftables.so.1`,
      });
      assert.notEqual(broken.code, 0, "the rules are still there: DEL says so");
      assert.match(broken.stdout, /ipMasq: cannot remove/);
      assert.deepEqual(net.leases(), [], "the address is released all the same");
      assert.deepEqual(await ipMasqComments(nodeName), [ipMasqComment(net.name, pod.id, "eth0")]);

      const retry = await del();
      assert.equal(retry.code, 0, retry.stdout + retry.stderr);
      assert.deepEqual(await ipMasqComments(nodeName), []);
      assert.deepEqual(net.stateFiles(), []);
      const again = await del({
        EBPFCNI_LIBNFTABLES: `/nonexistent-${randomHex(4)}/libnftables.so.1`,
      });
      assert.equal(again.code, 0, "nothing recorded: nothing to remove " + again.stdout);
    } finally {
      await sh("ip", ["netns", "del", nodeName]);
    }
  });
});

Deno.test("ipMasq: GC removes the stale rules even when a concurrent DEL removed one of them after GC listed it", async () => {
  await withNetwork(async (net) => {
    const nodeName = `mq-g-${randomHex(3)}`;
    const node = `/var/run/netns/${nodeName}`;
    const marker = `${net.stateDir}/gc-listed-${randomHex(4)}`;
    try {
      await sh("ip", ["netns", "add", nodeName], { check: true });
      await sh("ip", ["-n", nodeName, "link", "set", "lo", "up"], { check: true });
      const masq = net.config({ ipMasq: true });
      const p1 = await addPod(net, node, 1001, masq);
      const p2 = await addPod(net, node, 1002, masq);
      // Records lost (a wiped state directory): GC judges the rules by their comments alone.
      for (const p of [p1, p2]) Deno.removeSync(`${net.stateDir}/${net.name}/${p.id}_eth0.json`);
      const gc = cniIn(node, {
        command: "GC",
        config: { ...masq, "cni.dev/valid-attachments": [] },
        env: {
          EBPFCNI_FAULT: "sleep:gc-ipmasq-listed",
          EBPFCNI_FAULT_SLEEP_MS: "5000",
          EBPFCNI_FAULT_MARKER: marker,
        },
      });
      // GC has listed both rules and pauses: p1's DEL removes p1's meanwhile.
      for (let i = 0; i < 600; i++) {
        try {
          Deno.statSync(marker);
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 25));
        }
      }
      const del = await cniIn(node, {
        command: "DEL",
        containerId: p1.id,
        netns: p1.netns,
        ifname: "eth0",
        config: masq,
      });
      assert.equal(del.code, 0, del.stdout + del.stderr);
      assert.deepEqual(await ipMasqComments(nodeName), [ipMasqComment(net.name, p2.id, "eth0")]);
      const done = await gc;
      assert.equal(done.code, 0, done.stdout + done.stderr);
      assert.deepEqual(await ipMasqComments(nodeName), []);
    } finally {
      await sh("ip", ["netns", "del", nodeName]);
    }
  });
});
