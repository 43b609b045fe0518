// NetworkPolicy across nodes on real traffic: two nodes, each a network namespace on an
// underlay bridge running its own `ebpfcni agent run` (routing on, one manifest directory for
// the cluster) and plugin calls under `nsenter --net=` (its own bridge, pin and state
// directories), a pod on each. Pod a (node 1) is egress-isolated to pod b (node 2) port 80:
// its egress is judged on node 1, directly and through a Service IP that node 1's kube-proxy
// stand-in (iptables DNAT in node 1's namespace) sends to b; node 2's host reaching a is an
// address matched by ipBlock, not "the node". Nothing here touches the initial namespace.
import assert from "node:assert/strict";
import { BINARY, pluginEnv, rand, sh } from "./_cni.ts";
import { ebpfcni } from "./_cli.ts";
import { randomHex, run, tryRun } from "./_kernel.ts";
import { ManifestDir } from "./_agent.ts";
import { probeUntil, startServers } from "./_traffic.ts";

const VIP = "10.96.7.7";
const SERVICE_CIDR = "10.96.7.0/24";

interface NodeNs {
  name: string;
  ns: string;
  path: string;
  address: string;
  cidr: string;
  /** The address node's host traffic to another node's pods leaves with in `mode`. */
  overlayAddress: string;
  pinDir: string;
  dir: string;
  socket: string;
  bridge: string;
  agent?: Deno.ChildProcess;
  log: string;
}

const ip = (...a: string[]) => run("ip", a);

function nodeObject(n: NodeNs) {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: n.name },
    spec: { podCIDR: n.cidr },
    status: { addresses: [{ type: "InternalIP", address: n.address }] },
  };
}

function podObject(name: string, app: string, node: string, podIP?: string) {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { namespace: "x", name, labels: { app } },
    spec: { nodeName: node, containers: [{ name: "c", image: "agnhost" }] },
    status: podIP === undefined ? { phase: "Running" } : { phase: "Running", podIP },
  };
}

function policy(name: string, spec: Record<string, unknown>) {
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { namespace: "x", name },
    spec,
  };
}

async function startNodeAgent(n: NodeNs, manifests: string, mode: string): Promise<void> {
  n.agent = new Deno.Command("nsenter", {
    args: [
      `--net=${n.path}`,
      BINARY,
      "agent",
      "run",
      "--manifests",
      manifests,
      "--node",
      n.name,
      "--pin-dir",
      n.pinDir,
      "--state-dir",
      `${n.dir}/state`,
      "--socket",
      n.socket,
      "--routing",
      mode,
      "--no-masquerade",
      "--metrics-address",
      "127.0.0.1:0",
      "--log-level",
      "debug",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  (async () => {
    for await (const c of n.agent!.stderr) n.log += new TextDecoder().decode(c);
  })();
  for (let i = 0; i < 300; i++) {
    try {
      (await Deno.connect({ transport: "unix", path: n.socket })).close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`agent of ${n.name} did not serve: ${n.log}`);
}

/** CNI ADD of pod x/NAME on node `n` (the plugin under nsenter in the node's namespace). */
async function addPod(n: NodeNs, name: string, podNs: string): Promise<string> {
  const config = {
    cniVersion: "1.1.0",
    name: `nn-${n.name}`,
    type: "ebpfcni",
    bridge: n.bridge,
    pinDir: n.pinDir,
    stateDir: `${n.dir}/state`,
    policyMode: "kubernetes",
    serviceCIDRs: [SERVICE_CIDR],
    agentSocket: n.socket,
    ipam: {
      type: "host-local",
      subnet: n.cidr,
      routes: [{ dst: "0.0.0.0/0" }],
      dataDir: `${n.dir}/ipam`,
    },
  };
  const out = await new Deno.Command("nsenter", {
    args: [`--net=${n.path}`, BINARY],
    env: pluginEnv({
      command: "ADD",
      containerId: `c${rand(10)}`,
      netns: `/var/run/netns/${podNs}`,
      ifname: "eth0",
      args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=x;K8S_POD_NAME=${name}`,
    }),
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = out.stdin.getWriter();
  await w.write(new TextEncoder().encode(JSON.stringify(config)));
  await w.close();
  const r = await out.output();
  const text = new TextDecoder().decode(r.stdout);
  assert.equal(r.code, 0, `ADD ${name} on ${n.name}: ${text}${new TextDecoder().decode(r.stderr)}`);
  return (JSON.parse(text).ips[0].address as string).split("/")[0]!;
}

async function counters(n: NodeNs): Promise<Record<string, number>> {
  const r = await ebpfcni(["status", "--json", "--pin-dir", n.pinDir]);
  return JSON.parse(r.stdout).counters ?? {};
}

async function waitFor(what: string, fn: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`timed out waiting for ${what}`);
}

async function crossNodePolicy(mode: "vxlan" | "native"): Promise<void> {
  const tag = randomHex(3);
  const underlay = `nn-u-${tag}`;
  const made: string[] = [];
  const nodes: NodeNs[] = [1, 2].map((i) => ({
    name: `node-${i}`,
    ns: `nn-n${i}-${tag}`,
    path: `/var/run/netns/nn-n${i}-${tag}`,
    address: `192.168.77.${i}`,
    cidr: `10.244.${i}.0/24`,
    overlayAddress: mode === "vxlan" ? `10.244.${i}.0` : `192.168.77.${i}`,
    pinDir: `/sys/fs/bpf/ebpfcni-test-${rand()}`,
    dir: Deno.makeTempDirSync({ prefix: "ebpfcni-nn-" }),
    socket: "",
    bridge: `nnbr${rand(4)}`,
    log: "",
  }));
  for (const n of nodes) n.socket = `${n.dir}/agent.sock`;
  const manifestRoot = Deno.makeTempDirSync({ prefix: "ebpfcni-nn-m-" });
  const manifests = new ManifestDir(manifestRoot);
  const pods = { a: `nn-pa-${tag}`, b: `nn-pb-${tag}` };
  let servers: Awaited<ReturnType<typeof startServers>> | undefined;
  try {
    await ip("netns", "add", underlay);
    made.push(underlay);
    await ip("-n", underlay, "link", "add", "ul0", "type", "bridge");
    await ip("-n", underlay, "link", "set", "ul0", "up");
    for (const [k, n] of nodes.entries()) {
      await ip("netns", "add", n.ns);
      made.push(n.ns);
      await ip(
        "-n",
        underlay,
        "link",
        "add",
        `n${k}`,
        "type",
        "veth",
        "peer",
        "eth0",
        "netns",
        n.ns,
      );
      await ip("-n", underlay, "link", "set", `n${k}`, "master", "ul0", "up");
      await ip("-n", n.ns, "addr", "add", `${n.address}/24`, "dev", "eth0");
      await ip("-n", n.ns, "link", "set", "eth0", "up");
      await ip("-n", n.ns, "link", "set", "lo", "up");
    }
    for (const p of Object.values(pods)) {
      await ip("netns", "add", p);
      made.push(p);
    }
    manifests.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: "x" } });
    for (const n of nodes) manifests.apply(nodeObject(n));
    manifests.apply(podObject("a", "a", "node-1"));
    manifests.apply(podObject("b", "b", "node-2"));
    // a may reach b on 80 only; a admits node 2's host (by its address) on 80 only.
    manifests.apply(policy("a-out", {
      podSelector: { matchLabels: { app: "a" } },
      policyTypes: ["Egress"],
      egress: [{ to: [{ podSelector: { matchLabels: { app: "b" } } }], ports: [{ port: 80 }] }],
    }));
    manifests.apply(policy("a-in", {
      podSelector: { matchLabels: { app: "a" } },
      policyTypes: ["Ingress"],
      ingress: [{
        from: [{ ipBlock: { cidr: `${nodes[1]!.overlayAddress}/32` } }],
        ports: [{ port: 80 }],
      }],
    }));
    for (const n of nodes) await startNodeAgent(n, manifests.dir, mode);
    const ipA = await addPod(nodes[0]!, "a", pods.a);
    const ipB = await addPod(nodes[1]!, "b", pods.b);
    manifests.apply(podObject("a", "a", "node-1", ipA));
    manifests.apply(podObject("b", "b", "node-2", ipB));
    // kube-proxy on node 1: the Service's port 81 goes to b:81.
    await run("nsenter", [
      `--net=${nodes[0]!.path}`,
      "iptables",
      "-t",
      "nat",
      "-A",
      "PREROUTING",
      "-d",
      `${VIP}/32`,
      "-p",
      "tcp",
      "-j",
      "DNAT",
      "--to-destination",
      ipB,
    ]);
    // Both agents know both pods, and node 1's device to node 2 runs the to-node classifier.
    for (const n of nodes) {
      await waitFor(`${n.name} to know both pods`, async () => {
        const r = await ebpfcni(["agent", "status", "--json", "--socket", n.socket]);
        return r.code === 0 && JSON.parse(r.stdout).entries?.ipcache === 2;
      });
    }
    const dev = mode === "vxlan" ? "ebpfcni.vxlan" : "eth0";
    await waitFor(`the to-node classifier on ${dev}`, async () => {
      const r = await tryRun("nsenter", [
        `--net=${nodes[0]!.path}`,
        "tc",
        "filter",
        "show",
        "dev",
        dev,
        "egress",
      ]);
      return r.stdout.includes("process_tc_to_node");
    });
    servers = await startServers([
      { netns: `/var/run/netns/${pods.b}`, tcp: [80, 81], udp: [] },
      { netns: `/var/run/netns/${pods.a}`, tcp: [80, 81], udp: [] },
    ]);
    const before = await Promise.all(nodes.map(counters));
    const pa = `/var/run/netns/${pods.a}`;
    const got = probeUntil([
      { from: pa, to: ipB, port: 80, proto: "tcp" },
      { from: pa, to: ipB, port: 81, proto: "tcp" },
      { from: pa, to: VIP, port: 81, proto: "tcp" },
      { from: pa, to: VIP, port: 80, proto: "tcp" },
    ], [true, false, false, true]);
    assert.deepEqual(
      got,
      [true, false, false, true],
      "a → b:80, b:81, VIP:81 (b:81), VIP:80 (b:80)",
    );
    const after = await Promise.all(nodes.map(counters));
    const dropped = (i: number) => (after[i]!.drop_egress ?? 0) - (before[i]!.drop_egress ?? 0);
    assert.ok(dropped(0) >= 2, `node 1 dropped a's egress: ${dropped(0)}`);
    assert.equal(dropped(1), 0, "node 2 judged no egress of a");
    assert.equal((after[1]!.drop_ingress ?? 0) - (before[1]!.drop_ingress ?? 0), 0);
    // Node 2's host is an address like any other to a: its ipBlock admits 80, not 81; only
    // node 1 (a's own node) always passes.
    const fromNode2 = probeUntil([
      { from: nodes[1]!.path, to: ipA, port: 80, proto: "tcp" },
      { from: nodes[1]!.path, to: ipA, port: 81, proto: "tcp" },
      { from: nodes[0]!.path, to: ipA, port: 81, proto: "tcp" },
    ], [true, false, true]);
    assert.deepEqual(fromNode2, [true, false, true], "node 2 → a:80, node 2 → a:81, node 1 → a:81");
  } finally {
    await servers?.stop();
    for (const n of nodes) {
      if (n.agent) {
        try {
          n.agent.kill("SIGTERM");
        } catch { /* gone */ }
        await n.agent.status;
      }
    }
    for (const ns of made.reverse()) await tryRun("ip", ["netns", "del", ns]);
    for (const n of nodes) {
      await sh("rm", ["-rf", n.pinDir, n.dir]);
    }
    await sh("rm", ["-rf", manifestRoot]);
  }
}

Deno.test("vxlan: a pod's egress is judged on its node, directly and through a Service DNATed to another node; another node's host is an ipBlock address", async () => {
  await crossNodePolicy("vxlan");
});

Deno.test("native: a pod's egress is judged on its node, directly and through a Service DNATed to another node; another node's host is an ipBlock address", async () => {
  await crossNodePolicy("native");
});
