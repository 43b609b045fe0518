// The agent's masquerade on real traffic (src/agent/masquerade.ts): two "nodes", each a
// network namespace on an underlay, a pod on each, and a "world" namespace on the underlay
// that is no node. Node A's masquerade runs in its namespace (test/_masq_driver.ts, fed the
// cluster's nodes), and a TCP server in the world, in pod B and in node B answers each
// connection with the source address it saw.
import assert from "node:assert/strict";
import { sh } from "./_cni.ts";
import { ebpfcni } from "./_cli.ts";
import { randomHex } from "./_kernel.ts";
import { askPeer, type Servers, startServers } from "./_traffic.ts";
import { ManifestDir, startAgent } from "./_agent.ts";
import { withNetwork } from "./_cni.ts";

const PORT = 7000;
const A = "192.168.50.1"; // node A on the underlay
const B = "192.168.50.2";
const WORLD = "192.168.50.3";
const POD_A = "10.1.0.2";
const POD_B = "10.2.0.2";
const NODES = [
  { name: "a", podCidrs: ["10.1.0.0/24"], address: A },
  { name: "b", podCidrs: ["10.2.0.0/24"], address: B },
];

interface Cluster {
  ns: { a: string; b: string; world: string; podA: string; podB: string; underlay: string };
  path(name: keyof Cluster["ns"]): string;
}

async function ip(...args: string[]): Promise<void> {
  await sh("ip", args, { check: true });
}

async function withCluster(fn: (c: Cluster) => Promise<void>): Promise<void> {
  const r = randomHex(3);
  const ns = {
    a: `mq-a-${r}`,
    b: `mq-b-${r}`,
    world: `mq-w-${r}`,
    podA: `mq-pa-${r}`,
    podB: `mq-pb-${r}`,
    underlay: `mq-u-${r}`,
  };
  const c: Cluster = { ns, path: (n) => `/var/run/netns/${ns[n]}` };
  let servers: Servers | undefined;
  try {
    for (const n of Object.values(ns)) await ip("netns", "add", n);
    const inNs = (n: string, ...args: string[]) => ip("-n", n, ...args);
    await inNs(ns.underlay, "link", "add", "br0", "type", "bridge");
    await inNs(ns.underlay, "link", "set", "br0", "up");
    for (
      const [i, [node, addr]] of ([[ns.a, A], [ns.b, B], [ns.world, WORLD]] as const).entries()
    ) {
      await inNs(
        ns.underlay,
        "link",
        "add",
        `u${i}`,
        "type",
        "veth",
        "peer",
        "eth0",
        "netns",
        node,
      );
      await inNs(ns.underlay, "link", "set", `u${i}`, "master", "br0", "up");
      await inNs(node, "addr", "add", `${addr}/24`, "dev", "eth0");
      await inNs(node, "link", "set", "eth0", "up");
      await inNs(node, "link", "set", "lo", "up");
    }
    for (
      const [node, pod, podIp, gw] of [
        [ns.a, ns.podA, POD_A, "10.1.0.1"],
        [ns.b, ns.podB, POD_B, "10.2.0.1"],
      ] as const
    ) {
      await inNs(node, "link", "add", "pod0", "type", "veth", "peer", "eth0", "netns", pod);
      await inNs(node, "addr", "add", `${gw}/24`, "dev", "pod0");
      await inNs(node, "link", "set", "pod0", "up");
      await inNs(pod, "addr", "add", `${podIp}/24`, "dev", "eth0");
      await inNs(pod, "link", "set", "eth0", "up");
      await inNs(pod, "link", "set", "lo", "up");
      await inNs(pod, "route", "add", "default", "via", gw);
      // The namespace's own sysctl: it goes with the namespace.
      await sh("ip", ["netns", "exec", node, "sysctl", "-qw", "net.ipv4.ip_forward=1"], {
        check: true,
      });
    }
    // Native routes between the nodes' pod CIDRs; the world can route back to the pods too,
    // so a connection that is not masqueraded still succeeds and shows the pod's address.
    await inNs(ns.a, "route", "add", "10.2.0.0/24", "via", B);
    await inNs(ns.b, "route", "add", "10.1.0.0/24", "via", A);
    await inNs(ns.world, "route", "add", "10.1.0.0/24", "via", A);
    await inNs(ns.world, "route", "add", "10.2.0.0/24", "via", B);
    servers = await startServers(
      (["world", "podB", "b"] as const).map((n) => ({
        netns: c.path(n),
        tcp: [],
        udp: [],
        tcpPeer: [PORT],
      })),
    );
    await fn(c);
  } finally {
    await servers?.stop();
    for (const n of Object.values(ns)) await sh("ip", ["netns", "del", n]);
  }
}

/** Node A's masquerade (the test driver) in its namespace. */
class Driver {
  #child: Deno.ChildProcess;
  #lines: ReadableStreamDefaultReader<string>;
  #buf = "";
  constructor(c: Cluster, nonMasq: string[] = []) {
    this.#child = new Deno.Command("nsenter", {
      args: [
        `--net=${c.path("a")}`,
        "--",
        Deno.execPath(),
        "run",
        "--allow-all",
        new URL("./_masq_driver.ts", import.meta.url).pathname,
        "a",
        ...nonMasq,
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    this.#lines = this.#child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  }
  async status(): Promise<{ state: string; reason?: string; error?: string }> {
    while (!this.#buf.includes("\n")) {
      const { value, done } = await this.#lines.read();
      if (done) throw new Error("the masquerade driver exited");
      this.#buf += value;
    }
    const i = this.#buf.indexOf("\n");
    const line = this.#buf.slice(0, i);
    this.#buf = this.#buf.slice(i + 1);
    return JSON.parse(line);
  }
  /** Feeds a node set; its status once applied. */
  async feed(nodes: unknown[]): Promise<{ state: string; reason?: string }> {
    const w = this.#child.stdin.getWriter();
    await w.write(new TextEncoder().encode(JSON.stringify(nodes) + "\n"));
    w.releaseLock();
    return await this.status();
  }
  async stop(): Promise<void> {
    await this.#child.stdin.close().catch(() => {});
    await this.#lines.cancel().catch(() => {});
    await this.#child.status;
  }
}

async function tables(c: Cluster): Promise<string> {
  return (await sh("ip", ["netns", "exec", c.ns.a, "nft", "list", "tables"], { check: true }))
    .stdout.trim();
}

/** The source address the server at `to` sees for a connection from pod A. */
function seenFromPodA(c: Cluster, to: string): string | undefined {
  // The first connection of a path can be lost to ARP on a loaded machine.
  return askPeer(c.path("podA"), to, PORT) ?? askPeer(c.path("podA"), to, PORT);
}

Deno.test("masquerade: a pod reaches the world with its node's address, other nodes and their pods see the pod's", async () => {
  await withCluster(async (c) => {
    // Without masquerade the world sees the pod's address: the check below can fail.
    assert.equal(seenFromPodA(c, WORLD), POD_A);
    const d = new Driver(c);
    try {
      assert.equal((await d.status()).state, "waiting");
      assert.equal(await tables(c), "", "nothing is written before this node is known");
      assert.equal((await d.feed(NODES)).state, "applied");
      assert.equal(await tables(c), "table ip ebpfcni");
      assert.equal(seenFromPodA(c, WORLD), A);
      assert.equal(
        seenFromPodA(c, POD_B),
        POD_A,
        "pod to pod across nodes keeps the pod's address",
      );
      assert.equal(seenFromPodA(c, B), POD_A, "another node's address is not masqueraded to");

      // The world joins as a node, then leaves: the table follows.
      const withWorld = [...NODES, { name: "w", podCidrs: ["10.3.0.0/24"], address: WORLD }];
      assert.equal((await d.feed(withWorld)).state, "applied");
      assert.equal(seenFromPodA(c, WORLD), POD_A);
      assert.equal((await d.feed(NODES)).state, "applied");
      assert.equal(seenFromPodA(c, WORLD), A);
      // Node B leaves: its pod CIDR is outside the cluster now.
      assert.equal((await d.feed([NODES[0]])).state, "applied");
      assert.equal(seenFromPodA(c, POD_B), A);
    } finally {
      await d.stop();
    }
    // Stopping leaves the table: pods keep reaching the world while the agent restarts.
    assert.equal(await tables(c), "table ip ebpfcni");
    assert.equal(seenFromPodA(c, WORLD), A);
  });
});

Deno.test("masquerade: a non-masquerade CIDR is exempt, and the cleanup command removes the table", async () => {
  await withCluster(async (c) => {
    const d = new Driver(c, [`${WORLD}/32`]);
    try {
      await d.status();
      assert.equal((await d.feed(NODES)).state, "applied");
      assert.equal(seenFromPodA(c, WORLD), POD_A);
    } finally {
      await d.stop();
    }
    const again = new Driver(c);
    try {
      await again.status();
      assert.equal((await again.feed(NODES)).state, "applied");
      assert.equal(seenFromPodA(c, WORLD), A, "the table was replaced, not added to");
    } finally {
      await again.stop();
    }
    const r = await sh("nsenter", [
      `--net=${c.path("a")}`,
      "--",
      ...cliArgs("masquerade", "cleanup"),
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /removed table ip ebpfcni\n/);
    assert.equal(await tables(c), "");
    assert.equal(seenFromPodA(c, WORLD), POD_A);
    // Again: nothing to remove is no error.
    const r2 = await sh("nsenter", [
      `--net=${c.path("a")}`,
      "--",
      ...cliArgs("masquerade", "cleanup"),
    ]);
    assert.equal(r2.code, 0, r2.stderr);
  });
});

function cliArgs(...args: string[]): string[] {
  return [new URL("../dist/ebpfcni", import.meta.url).pathname, ...args];
}

Deno.test("agent run: bad masquerade flags exit 2 naming the value", async () => {
  for (
    const [args, msg] of [
      [
        ["--non-masquerade-cidr", "10.0.0.1/8"],
        /Invalid --non-masquerade-cidr "10\.0\.0\.1\/8": host bits set/,
      ],
      [["--non-masquerade-cidr", "nope"], /Invalid --non-masquerade-cidr "nope"/],
      [["--no-masquerade", "--masquerade"], /Give one of --masquerade and --no-masquerade/],
      [["--no-masquerade", "--non-masquerade-cidr", "10.0.0.0/8"], /needs --masquerade/],
    ] as const
  ) {
    const r = await ebpfcni(["agent", "run", "--manifests", "/nonexistent", ...args]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, msg);
  }
});

Deno.test("agent run: masquerade is on by default and waits for this node's pod CIDR; --no-masquerade turns it off", async () => {
  await withNetwork(async (net) => {
    const manifests = new ManifestDir(net.dir);
    for (const [extra, want] of [[[], "waiting"], [["--no-masquerade"], null]] as const) {
      // No Node objects: the agent only waits, so its defaults touch nothing of the host.
      const agent = await startAgent(net, { manifests: manifests.dir }, {
        extra: [...extra, "--routing", "none"],
        productDefaults: true,
      });
      try {
        const st = await agent.synced() as unknown as { masquerade: { state: string } | null };
        assert.equal(st.masquerade === null ? null : st.masquerade.state, want);
        const text = await ebpfcni(["agent", "status", "--socket", agent.socket]);
        assert.match(
          text.stdout,
          want === null ? /^masquerade: +off$/m : /^masquerade: +waiting: /m,
        );
      } finally {
        await agent.stop();
      }
    }
  });
});
