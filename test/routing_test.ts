// Routing between nodes on the real kernel: each node is a network namespace on an underlay
// bridge (in a namespace of its own), with a pod bridge and a pod in its pod CIDR. The product's
// routing loop (src/agent/routing.ts) runs inside each node's namespace under
// `nsenter --net=` (test/_routing_driver.ts feeds it the nodes), and real traffic crosses
// between pods of different nodes: ping, TCP, UDP and a full-size TCP transfer both ways.
// Nothing here touches the initial namespace.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { randomHex, run, tryRun } from "./_kernel.ts";
import {
  BINARY,
  pingEventually,
  pluginEnv,
  rand,
  ROOT,
  stdinOf,
  TestNetwork,
  toReply,
} from "./_cni.ts";
import { BULK, bulkBothWays, probeUntil, type Proto, startServers } from "./_traffic.ts";
import type { RoutingStatus } from "../src/agent/routing.ts";

const DRIVER = fileURLToPath(new URL("./_routing_driver.ts", import.meta.url));
const VXLAN = "ebpfcni.vxlan";
const PROTO = "235";

interface Node {
  name: string;
  ns: string;
  path: string;
  address: string;
  prefix: number;
  cidr: string;
  podNs: string;
  podPath: string;
  podIp: string;
}

interface Cluster {
  underlay: string;
  nodes: Node[];
  all: string[];
}

/** Underlay namespace with a bridge; per node, a namespace wired to it with `address`, a pod
 * bridge holding .1 of its pod CIDR (10.244.<i>.0/24) and a pod at .2 routed via .1. */
async function makeCluster(
  tag: string,
  specs: { address: string; prefix: number }[],
  cluster: Cluster,
): Promise<void> {
  const ip = (...a: string[]) => run("ip", a);
  cluster.underlay = `rt-ul-${tag}`;
  await ip("netns", "add", cluster.underlay);
  cluster.all.push(cluster.underlay);
  await ip("-n", cluster.underlay, "link", "add", "ul0", "type", "bridge");
  await ip("-n", cluster.underlay, "link", "set", "ul0", "up");
  for (const [k, s] of specs.entries()) {
    const i = k + 1;
    const n: Node = {
      name: `node-${i}`,
      ns: `rt-n${i}-${tag}`,
      path: `/var/run/netns/rt-n${i}-${tag}`,
      address: s.address,
      prefix: s.prefix,
      cidr: `10.244.${i}.0/24`,
      podNs: `rt-p${i}-${tag}`,
      podPath: `/var/run/netns/rt-p${i}-${tag}`,
      podIp: `10.244.${i}.2`,
    };
    await ip("netns", "add", n.ns);
    cluster.all.push(n.ns);
    await ip("netns", "add", n.podNs);
    cluster.all.push(n.podNs);
    await ip(
      "-n",
      cluster.underlay,
      "link",
      "add",
      `n${i}`,
      "type",
      "veth",
      "peer",
      "name",
      "eth0",
      "netns",
      n.ns,
    );
    await ip("-n", cluster.underlay, "link", "set", `n${i}`, "master", "ul0", "up");
    await ip("-n", n.ns, "link", "set", "lo", "up");
    await ip("-n", n.ns, "addr", "add", `${n.address}/${n.prefix}`, "dev", "eth0");
    await ip("-n", n.ns, "link", "set", "eth0", "up");
    await ip("-n", n.ns, "link", "add", "cni0", "type", "bridge");
    await ip("-n", n.ns, "addr", "add", `10.244.${i}.1/24`, "dev", "cni0");
    await ip("-n", n.ns, "link", "set", "cni0", "up");
    await ip(
      "-n",
      n.ns,
      "link",
      "add",
      "veth0",
      "type",
      "veth",
      "peer",
      "name",
      "eth0",
      "netns",
      n.podNs,
    );
    await ip("-n", n.ns, "link", "set", "veth0", "master", "cni0", "up");
    await ip("-n", n.podNs, "link", "set", "lo", "up");
    await ip("-n", n.podNs, "addr", "add", `${n.podIp}/24`, "dev", "eth0");
    await ip("-n", n.podNs, "link", "set", "eth0", "up");
    await ip("-n", n.podNs, "route", "add", "default", "via", `10.244.${i}.1`);
    cluster.nodes.push(n);
  }
}

async function withCluster(
  specs: { address: string; prefix: number }[],
  fn: (c: Cluster) => Promise<void>,
): Promise<void> {
  const c: Cluster = { underlay: "", nodes: [], all: [] };
  try {
    await makeCluster(randomHex(3), specs, c);
    await fn(c);
  } finally {
    for (const ns of c.all.reverse()) await tryRun("ip", ["netns", "del", ns]);
  }
}

const nodeObject = (n: Node) => ({ name: n.name, podCidrs: [n.cidr], address: n.address });

/** One routing pass of `self` (the product's loop, in its namespace) knowing `known`. */
async function route(
  self: Node,
  mode: string,
  known: Node[],
): Promise<RoutingStatus & { log: string }> {
  const arg = JSON.stringify({ self: self.name, mode, nodes: known.map(nodeObject) });
  const r = await tryRun("nsenter", [
    `--net=${self.path}`,
    Deno.execPath(),
    "run",
    "--quiet",
    "--allow-all",
    `--config=${ROOT}/deno.json`,
    DRIVER,
    arg,
  ]);
  assert.equal(r.code, 0, `routing pass on ${self.name} failed: ${r.stderr}`);
  return { ...JSON.parse(r.stdout) as RoutingStatus, log: r.stderr };
}

async function routeAll(mode: string, known: Node[]): Promise<void> {
  for (const n of known) {
    const st = await route(n, mode, known);
    assert.deepEqual(st.lastPass?.errors, [], `${n.name}: ${JSON.stringify(st)}`);
  }
}

/** ebpfcni's entries in a node's namespace, as `ip` and `bridge` print them. */
async function owned(
  n: Node,
): Promise<{ routes: string; link: string; neigh: string; fdb: string; addr: string }> {
  const out = async (args: string[]) => (await tryRun(args[0]!, args.slice(1))).stdout.trim();
  return {
    routes: await out(["ip", "-n", n.ns, "route", "show", "proto", PROTO]),
    link: await out(["ip", "-n", n.ns, "-d", "link", "show", "dev", VXLAN]),
    neigh: await out(["ip", "-n", n.ns, "neigh", "show", "dev", VXLAN]),
    fdb: await out(["bridge", "-n", n.ns, "fdb", "show", "dev", VXLAN]),
    addr: await out(["ip", "-n", n.ns, "-4", "addr", "show", "dev", VXLAN]),
  };
}

/** Pods' MTU as the plugin gives them without a configured one: the vxlan device's. */
async function fitPodMtu(nodes: Node[]): Promise<number> {
  let mtu = 0;
  for (const n of nodes) {
    const link = JSON.parse(await run("ip", ["-n", n.ns, "-j", "link", "show", "dev", VXLAN]));
    mtu = link[0].mtu;
    await run("ip", ["-n", n.ns, "link", "set", "cni0", "mtu", String(mtu)]);
    await run("ip", ["-n", n.ns, "link", "set", "veth0", "mtu", String(mtu)]);
    await run("ip", ["-n", n.podNs, "link", "set", "eth0", "mtu", String(mtu)]);
  }
  return mtu;
}

async function assertTraffic(from: Node, to: Node[], want: boolean): Promise<void> {
  const servers = await startServers(
    to.map((n) => ({ netns: n.podPath, tcp: [8080], udp: [5353] })),
  );
  try {
    const probes = to.flatMap((n) =>
      (["tcp", "udp"] as Proto[]).map((proto) => ({
        from: from.podPath,
        to: n.podIp,
        port: proto === "tcp" ? 8080 : 5353,
        proto,
      }))
    );
    const got = probeUntil(probes, probes.map(() => want));
    assert.deepEqual(
      got.map((g, i) => `${probes[i]!.proto} ${from.podIp} → ${probes[i]!.to}: ${g}`),
      probes.map((p) => `${p.proto} ${from.podIp} → ${p.to}: ${want}`),
    );
  } finally {
    await servers.stop();
  }
  for (const n of to) {
    assert.equal(
      await pingEventually(from.podPath, n.podIp),
      want,
      `ping ${from.podIp} → ${n.podIp}`,
    );
  }
}

/** 4 MiB from a pod to a pod of another node and 4 MiB back on one TCP connection: both
 * directions in full-size segments (a segment the tunnel cannot carry stalls it); and a
 * ping of exactly the pod's MTU with DF set. */
async function assertBulk(a: Node, b: Node, mtu: number): Promise<void> {
  const moved = await bulkBothWays(a.podPath, b.podPath, b.podIp);
  assert.deepEqual(moved, { there: BULK, back: BULK }, "bytes each way");
  const df = await tryRun("ip", [
    "netns",
    "exec",
    a.podNs,
    "ping",
    "-M",
    "do",
    "-s",
    String(mtu - 28),
    "-c",
    "1",
    "-W",
    "2",
    b.podIp,
  ]);
  assert.equal(df.code, 0, `a ${mtu}-byte packet with DF: ${df.stdout}${df.stderr}`);
}

Deno.test("vxlan: pods on different nodes talk (ping, TCP, UDP, full-size TCP both ways); a node joining and leaving adds and removes its entries; a second pass rewrites nothing", async () => {
  await withCluster([
    { address: "10.0.0.1", prefix: 24 },
    { address: "10.0.0.2", prefix: 24 },
    { address: "10.0.0.3", prefix: 24 },
  ], async (c) => {
    const [a, b, n3] = c.nodes as [Node, Node, Node];
    // Before any routing, nothing crosses.
    await assertTraffic(a, [b], false);

    await routeAll("vxlan", [a, b]);
    assert.equal(
      (await run("ip", ["netns", "exec", a.ns, "cat", "/proc/sys/net/ipv4/ip_forward"])).trim(),
      "1",
    );
    const mtu = await fitPodMtu([a, b]);
    assert.equal(mtu, 1500 - 50);
    await assertTraffic(a, [b], true);
    await assertTraffic(b, [a], true);
    await assertBulk(a, b, mtu);

    // A restart (a second pass with the same nodes) rewrites nothing.
    const before = await owned(a);
    assert.match(before.routes, /10\.244\.2\.0\/24 via 10\.244\.2\.0 dev ebpfcni\.vxlan onlink/);
    assert.match(before.fdb, /0e:eb:0a:00:00:02 dst 10\.0\.0\.2 self permanent/);
    assert.match(before.link, /vxlan id 1 local 10\.0\.0\.1 dev eth0 .*dstport 8472 nolearning/);
    const again = await route(a, "vxlan", [a, b]);
    assert.equal(again.lastPass?.writes, 0);
    assert.deepEqual(await owned(a), before);
    // Nor does a pass whose nodes do not include this node yet (a source still listing).
    const early = await route(a, "vxlan", [b]);
    assert.match(
      JSON.stringify(early.nodes["node-2"]),
      /this node \\"node-1\\" is not among the nodes yet/,
    );
    assert.deepEqual(await owned(a), before);
    // Nor one where this node's address is on none of its interfaces for a moment (the Node
    // and the NIC change at different times, a DHCP renew): the overlay stays.
    const moved = await route(a, "vxlan", [{ ...a, address: "10.0.0.99" }, b]);
    assert.match(JSON.stringify(moved.nodes["node-2"]), /10\.0\.0\.99 is on no interface/);
    assert.deepEqual(await owned(a), before);
    await assertTraffic(a, [b], true);

    // Node 3 joins: its entries appear on the others, and its pod is reached.
    assert.doesNotMatch(before.routes, /10\.244\.3\.0/);
    await routeAll("vxlan", [a, b, n3]);
    await fitPodMtu([a, b, n3]);
    const joined = await owned(a);
    assert.match(joined.routes, /10\.244\.3\.0\/24 via 10\.244\.3\.0 dev ebpfcni\.vxlan onlink/);
    await assertTraffic(a, [b, n3], true);
    await assertTraffic(n3, [a], true);

    // Node 2 leaves: its route, neighbour and forwarding entry go from node 1; node 3's stay.
    const left = await route(a, "vxlan", [a, n3]);
    assert.equal(left.nodes["node-2"], undefined);
    const after = await owned(a);
    assert.doesNotMatch(after.routes, /10\.244\.2\.0/);
    assert.doesNotMatch(after.neigh, /10\.244\.2\.0/);
    assert.doesNotMatch(after.fdb, /10\.0\.0\.2/);
    assert.match(after.routes, /10\.244\.3\.0\/24/);
    await assertTraffic(a, [b], false);
    await assertTraffic(a, [n3], true);
  });
});

Deno.test("native: pods on nodes of one subnet talk through plain routes; a node off every connected subnet is not routed and says why; none removes the routes", async () => {
  await withCluster([
    { address: "10.0.0.1", prefix: 24 },
    { address: "10.0.0.2", prefix: 24 },
    { address: "10.9.0.3", prefix: 24 }, // same wire, another subnet: no route to it
  ], async (c) => {
    const [a, b, far] = c.nodes as [Node, Node, Node];
    // A node switched from vxlan keeps none of the overlay.
    await route(a, "vxlan", [a, b]);
    for (const n of [a, b]) {
      const st = await route(n, "native", [a, b, far]);
      const s = st.nodes[far.name];
      assert.ok(s && !s.routed, JSON.stringify(s));
      assert.match(
        s.reason,
        /its address 10\.9\.0\.3 is not on a subnet this node is connected to/,
      );
      assert.deepEqual(st.nodes[n === a ? b.name : a.name]?.routed, true);
      assert.match(
        st.log,
        /"msg":"node not routed","node":"node-3","reason":"its address 10\.9\.0\.3/,
      );
    }
    const o = await owned(a);
    assert.equal(o.link, "", "the vxlan device is gone");
    assert.equal(o.routes, "10.244.2.0/24 via 10.0.0.2 dev eth0"); // (of proto 235)
    await assertTraffic(a, [b], true);
    await assertTraffic(b, [a], true);
    await assertBulk(a, b, 1500);
    await assertTraffic(a, [far], false);

    const again = await route(a, "native", [a, b, far]);
    assert.equal(again.lastPass?.writes, 0);
    assert.deepEqual(await owned(a), o);

    // Another owner's route to a pod CIDR is never touched.
    await run("ip", ["-n", a.ns, "route", "add", "10.244.7.0/24", "via", "10.0.0.2"]);
    const none = await route(a, "none", [a, b]);
    assert.match(JSON.stringify(none.nodes[b.name]), /routing is off here/);
    assert.equal((await owned(a)).routes, "");
    assert.match(await run("ip", ["-n", a.ns, "route"]), /10\.244\.7\.0\/24 via 10\.0\.0\.2/);
    await assertTraffic(a, [b], false);

    // Nor is another owner's route to a node's pod CIDR taken over: the node is reported.
    await run("ip", [
      "-n",
      a.ns,
      "route",
      "add",
      "10.244.2.0/24",
      "via",
      "10.0.0.2",
      "proto",
      "static",
    ]);
    const taken = await route(a, "native", [a, b]);
    assert.match(
      JSON.stringify(taken.nodes[b.name]),
      /another route to 10\.244\.2\.0\/24 \(protocol 4\) is in the main table: left alone/,
    );
    assert.match(
      await run("ip", ["-n", a.ns, "route"]),
      /10\.244\.2\.0\/24 via 10\.0\.0\.2 dev eth0 proto static/,
    );
    assert.equal((await owned(a)).routes, "");
  });
});

Deno.test("a pod added on a vxlan node without a configured mtu gets the tunnel's MTU (underlay - 50); a configured mtu wins", async () => {
  await withCluster([
    { address: "10.0.0.1", prefix: 24 },
    { address: "10.0.0.2", prefix: 24 },
  ], async (c) => {
    const [a, b] = c.nodes as [Node, Node];
    await run("ip", ["-n", c.underlay, "link", "set", "n1", "mtu", "9000"]);
    await run("ip", ["-n", a.ns, "link", "set", "eth0", "mtu", "9000"]);
    await route(a, "vxlan", [a, b]);
    const net = new TestNetwork();
    try {
      for (const [extra, want] of [[{}, 8950], [{ mtu: 1400 }, 1400]] as const) {
        const pod = await net.netns();
        const call = { command: "ADD", containerId: `c-${rand(8)}`, netns: pod, ifname: "eth0" };
        const p = new Deno.Command("nsenter", {
          args: [`--net=${a.path}`, BINARY],
          env: pluginEnv(call),
          clearEnv: true,
          stdin: "piped",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        const w = p.stdin.getWriter();
        await w.write(stdinOf({ config: net.config(extra) }));
        await w.close();
        const reply = toReply(await p.output());
        assert.equal(reply.code, 0, reply.stderr);
        const ifaces = reply.json!.interfaces as { mtu?: number }[];
        assert.equal(ifaces[2]!.mtu, want);
        const link = JSON.parse(
          await run("ip", ["-n", pod.split("/").pop()!, "-j", "link", "show", "dev", "eth0"]),
        );
        assert.equal(link[0].mtu, want);
      }
    } finally {
      await net.cleanup();
    }
  });
});

/** Polls `fn` until it is true or 10 s pass (a bound against hanging, not a speed goal). */
async function eventually(what: string, fn: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + 10_000;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`never happened: ${what}`);
    await new Promise((ok) => setTimeout(ok, 50));
  }
}

Deno.test("a running routing loop follows its nodes: a node joining is routed, one leaving is unrouted, a route deleted by hand comes back", async () => {
  await withCluster([
    { address: "10.0.0.1", prefix: 24 },
    { address: "10.0.0.2", prefix: 24 },
    { address: "10.0.0.3", prefix: 24 },
  ], async (c) => {
    const [a, b, n3] = c.nodes as [Node, Node, Node];
    const dir = Deno.makeTempDirSync({ prefix: "ebpfcni-routing-" });
    const file = `${dir}/nodes.json`;
    let loop: Deno.ChildProcess | undefined;
    try {
      Deno.writeTextFileSync(file, JSON.stringify([a, b].map(nodeObject)));
      loop = new Deno.Command("nsenter", {
        args: [
          `--net=${a.path}`,
          Deno.execPath(),
          "run",
          "--quiet",
          "--allow-all",
          `--config=${ROOT}/deno.json`,
          DRIVER,
          JSON.stringify({ self: a.name, mode: "vxlan", watch: file, resyncMs: 200 }),
        ],
        stdout: "piped",
        stderr: "null",
      }).spawn();
      const reader = loop.stdout.getReader();
      assert.match(new TextDecoder().decode((await reader.read()).value), /ready/);
      reader.releaseLock();
      const routes = async () => (await owned(a)).routes;
      assert.match(await routes(), /10\.244\.2\.0\/24/);
      for (const n of [b, n3]) await route(n, "vxlan", [a, b, n3]);
      await fitPodMtu([a, b, n3]);

      Deno.writeTextFileSync(file, JSON.stringify([a, b, n3].map(nodeObject)));
      await eventually("node 3 routed", async () => /10\.244\.3\.0\/24/.test(await routes()));
      await assertTraffic(a, [n3], true);

      Deno.writeTextFileSync(file, JSON.stringify([a, n3].map(nodeObject)));
      await eventually("node 2 unrouted", async () => !/10\.244\.2\.0/.test(await routes()));
      assert.doesNotMatch((await owned(a)).fdb, /10\.0\.0\.2/);

      await run("ip", ["-n", a.ns, "route", "del", "10.244.3.0/24"]);
      await eventually(
        "node 3's route repaired",
        async () => /10\.244\.3\.0\/24/.test(await routes()),
      );
      await assertTraffic(a, [n3], true);
    } finally {
      if (loop) {
        loop.kill("SIGTERM");
        await loop.stdout.cancel().catch(() => {});
        await loop.status;
      }
      Deno.removeSync(dir, { recursive: true });
    }
  });
});

Deno.test("vxlan: another vxlan device on the same VNI and port (flannel's flannel.1) is named in the node's reason; another owner's blackhole route to a pod CIDR is left alone", async () => {
  await withCluster([
    { address: "10.0.0.1", prefix: 24 },
    { address: "10.0.0.2", prefix: 24 },
  ], async (c) => {
    const [a, b] = c.nodes as [Node, Node];
    const ip = (...args: string[]) => run("ip", ["-n", a.ns, ...args]);
    // flannel's defaults: VNI 1, UDP port 8472 (ours too).
    await ip(
      "link",
      "add",
      "flannel.1",
      "type",
      "vxlan",
      "id",
      "1",
      "dstport",
      "8472",
      "dev",
      "eth0",
    );
    const clash = await route(a, "vxlan", [a, b]);
    const s = clash.nodes[b.name];
    assert.ok(s && !s.routed, JSON.stringify(s));
    assert.match(s.reason, /another vxlan device uses VNI 1 and UDP port 8472 \("flannel\.1"\)/);
    assert.match(clash.lastPass?.errors.join("\n") ?? "", /another vxlan device uses VNI 1/);
    assert.equal((await owned(a)).link, "", "no device of ours");
    await ip("link", "del", "flannel.1");

    // A route of another owner, of any type, is never replaced.
    await ip("route", "add", "blackhole", "10.244.2.0/24", "proto", "boot");
    const held = await route(a, "vxlan", [a, b]);
    assert.match(
      JSON.stringify(held.nodes[b.name]),
      /another route to 10\.244\.2\.0\/24 \(protocol 3\) is in the main table: left alone/,
    );
    assert.match(await ip("route"), /^blackhole 10\.244\.2\.0\/24 *$/m);
    assert.equal((await owned(a)).routes, "");
    await ip("route", "del", "blackhole", "10.244.2.0/24");
    const fine = await route(a, "vxlan", [a, b]);
    assert.deepEqual(fine.nodes[b.name], { routed: true, via: "vxlan to 10.0.0.2" });
  });
});
