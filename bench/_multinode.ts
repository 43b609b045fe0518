// Nodes on one machine for the multi-node benchmarks (issue 17): an underlay namespace with a
// bridge, and per node a network namespace on it with its own address. An ebpfcni node runs
// the agent (`--routing MODE`) and the CNI plugin under `nsenter --net=/var/run/netns/NODE`,
// pods in kubernetes mode with `"subnet": "usePodCidr"`; a baseline node gets the same shape
// from `ip` alone (a plain bridge and veth pods, kernel routes or a plain kernel vxlan device
// made as flannel's backend makes it), with no tc program. Everything made is registered with
// lib.ts's cleanup.
import {
  BINARY,
  netns,
  pinDir,
  run,
  RUN_ID,
  sh,
  shQuiet,
  sleep,
  spawnAgent,
  tempDir,
} from "./lib.ts";

export type Mode = "vxlan" | "native";
export type Obj = Record<string, unknown>;

export const ip = (...args: string[]) => sh("ip", ...args);
export const nsPath = (ns: string) => `/var/run/netns/${ns}`;
/** Node i's underlay address (the underlay is a /16: simulated nodes get addresses too). */
export const nodeAddress = (i: number) => `172.30.${i >> 8}.${i & 255}`;
/** Node i's pod CIDR. */
export const podCidr = (i: number) => `10.${200 + (i >> 8)}.${i & 255}.0/24`;
const podNet = (i: number) => podCidr(i).replace(/\.0\/24$/, "");

export interface Node {
  index: number;
  name: string;
  ns: string;
  address: string;
}

export interface Pod {
  name: string;
  ns: string;
  ip: string;
}

/** Writes a file whole (through a dot-file renamed into place, as an editor or kubectl would). */
export function writeJson(path: string, o: unknown): void {
  const tmp = `${path.replace(/[^/]+$/, "")}.tmp-${crypto.randomUUID()}`;
  Deno.writeTextFileSync(tmp, JSON.stringify(o));
  Deno.renameSync(tmp, path);
}

export function nodeObject(i: number): Obj {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: `node-${i}` },
    spec: { podCIDR: podCidr(i), podCIDRs: [podCidr(i)] },
    status: { addresses: [{ type: "InternalIP", address: nodeAddress(i) }] },
  };
}

/** An underlay namespace with bridge ul0 and `count` node namespaces on it (172.30.0.i/16). */
export async function underlay(tag: string, count: number): Promise<Node[]> {
  const ul = await netns(`mb-${RUN_ID}-${tag}-u`);
  await ip("-n", ul, "link", "add", "ul0", "type", "bridge");
  await ip("-n", ul, "link", "set", "ul0", "up");
  const nodes: Node[] = [];
  for (let i = 1; i <= count; i++) {
    const ns = await netns(`mb-${RUN_ID}-${tag}-n${i}`);
    await ip("-n", ul, "link", "add", `n${i}`, "type", "veth", "peer", "name", "eth0", "netns", ns);
    await ip("-n", ul, "link", "set", `n${i}`, "master", "ul0", "up");
    await ip("-n", ns, "link", "set", "lo", "up");
    await ip("-n", ns, "addr", "add", `${nodeAddress(i)}/16`, "dev", "eth0");
    await ip("-n", ns, "link", "set", "eth0", "up");
    nodes.push({ index: i, name: `node-${i}`, ns, address: nodeAddress(i) });
  }
  return nodes;
}

// ---------------------------------------------------------------------------------------
// Baseline: the same shape with `ip` only.

const vtepMac = (address: string) =>
  "0e:eb:" + address.split(".").map((b) => Number(b).toString(16).padStart(2, "0")).join(":");

/** A plain bridge with a veth pod (.2 of the node's pod CIDR), forwarding on, and routes to
 * the other nodes' pod CIDRs: `via` their address (native) or over a kernel vxlan device with
 * a forwarding entry, a permanent neighbour and an onlink route per node (flannel's vxlan
 * backend, the entries ebpfcni's vxlan mode makes). */
export async function baselineNodes(nodes: Node[], mode: Mode, tag: string): Promise<Pod[]> {
  const pods: Pod[] = [];
  const mtu = mode === "vxlan" ? 1450 : 1500;
  for (const n of nodes) {
    const net = podNet(n.index);
    await sh("ip", "netns", "exec", n.ns, "sysctl", "-qw", "net.ipv4.ip_forward=1");
    await ip("-n", n.ns, "link", "add", "cni0", "mtu", String(mtu), "type", "bridge");
    await ip("-n", n.ns, "addr", "add", `${net}.1/24`, "dev", "cni0");
    await ip("-n", n.ns, "link", "set", "cni0", "up");
    const pod = await netns(`mb-${RUN_ID}-${tag}-p${n.index}`);
    await ip(
      "-n",
      n.ns,
      "link",
      "add",
      "veth0",
      "mtu",
      String(mtu),
      "type",
      "veth",
      "peer",
      "name",
      "eth0",
      "netns",
      pod,
    );
    await ip("-n", n.ns, "link", "set", "veth0", "master", "cni0", "up");
    await ip("-n", pod, "link", "set", "lo", "up");
    await ip("-n", pod, "link", "set", "eth0", "mtu", String(mtu));
    await ip("-n", pod, "addr", "add", `${net}.2/24`, "dev", "eth0");
    await ip("-n", pod, "link", "set", "eth0", "up");
    await ip("-n", pod, "route", "add", "default", "via", `${net}.1`);
    pods.push({ name: `pod-${n.index}`, ns: pod, ip: `${net}.2` });
    if (mode === "vxlan") {
      await ip(
        "-n",
        n.ns,
        "link",
        "add",
        "vx0",
        "address",
        vtepMac(n.address),
        "type",
        "vxlan",
        "id",
        "1",
        "dstport",
        "8472",
        "local",
        n.address,
        "dev",
        "eth0",
        "nolearning",
      );
      await ip("-n", n.ns, "addr", "add", `${net}.0/32`, "dev", "vx0");
      await ip("-n", n.ns, "link", "set", "vx0", "up");
    }
    for (const r of nodes) {
      if (r === n) continue;
      if (mode === "native") {
        await ip("-n", n.ns, "route", "add", podCidr(r.index), "via", r.address);
        continue;
      }
      const gw = `${podNet(r.index)}.0`;
      await sh(
        "bridge",
        "-n",
        n.ns,
        "fdb",
        "append",
        vtepMac(r.address),
        "dev",
        "vx0",
        "dst",
        r.address,
      );
      await ip(
        "-n",
        n.ns,
        "neigh",
        "replace",
        gw,
        "lladdr",
        vtepMac(r.address),
        "dev",
        "vx0",
        "nud",
        "permanent",
      );
      await ip("-n", n.ns, "route", "add", podCidr(r.index), "via", gw, "dev", "vx0", "onlink");
    }
  }
  return pods;
}

// ---------------------------------------------------------------------------------------
// ebpfcni nodes: the agent and the plugin in each node's namespace.

export interface Agent {
  node: Node;
  socket: string;
  pins: string;
  pid: number;
  status(wait?: number): Promise<Obj>;
  stop(): Promise<void>;
}

/** Starts `ebpfcni agent run` for `node` under nsenter, reading `manifests`, and waits for its
 * socket. */
export async function startAgent(
  node: Node,
  manifests: string,
  dir: string,
  mode: Mode,
  extra: string[] = [],
): Promise<Agent> {
  const pins = pinDir(`${node.ns.slice(-8)}`);
  const socket = `${dir}/${node.name}.sock`;
  const { pid, stop } = await spawnAgent(`the agent of ${node.name}`, "nsenter", [
    `--net=${nsPath(node.ns)}`,
    BINARY,
    "agent",
    "run",
    "--manifests",
    manifests,
    "--node",
    node.name,
    "--pin-dir",
    pins,
    "--state-dir",
    `${dir}/${node.name}-state`,
    "--socket",
    socket,
    "--log-level",
    "warn",
    "--metrics-address",
    "",
    "--routing",
    mode,
    ...extra,
  ], socket);
  const status = async (wait?: number) => {
    const extraArgs = wait === undefined ? [] : ["--wait-synced", String(wait)];
    const r = await run(BINARY, ["agent", "status", "--json", "--socket", socket, ...extraArgs]);
    if (r.code !== 0) throw new Error(`agent status of ${node.name}: ${r.stderr}`);
    return JSON.parse(r.stdout) as Obj;
  };
  return { node, socket, pins, pid, status, stop };
}

export function podManifest(
  namespace: string,
  name: string,
  node: string,
  labels: Record<string, string>,
  podIp?: string,
): Obj {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace, labels },
    spec: { nodeName: node, containers: [{ name: "c", image: "i" }] },
    status: podIp === undefined
      ? { phase: "Pending" }
      : { phase: "Running", podIP: podIp, podIPs: [{ ip: podIp }] },
  };
}

/** CNI ADD of pod `namespace/name` on `agent`'s node (the plugin under nsenter, kubernetes mode,
 * the pod CIDR from the agent); returns the pod's address. */
export async function addPod(
  agent: Agent,
  dir: string,
  namespace: string,
  name: string,
): Promise<Pod> {
  const pod = await netns(`mb-${RUN_ID}-${agent.node.ns.slice(-6)}-${name}`);
  const config = {
    cniVersion: "1.1.0",
    name: "mbench",
    type: "ebpfcni",
    bridge: "cni0",
    pinDir: agent.pins,
    stateDir: `${dir}/${agent.node.name}-state`,
    policyMode: "kubernetes",
    serviceCIDRs: ["10.96.0.0/12"],
    agentSocket: agent.socket,
    ipam: {
      type: "host-local",
      subnet: "usePodCidr",
      dataDir: `${dir}/${agent.node.name}-ipam`,
      routes: [{ dst: "0.0.0.0/0" }],
    },
  };
  const env = {
    CNI_COMMAND: "ADD",
    CNI_CONTAINERID: `mb${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`,
    CNI_NETNS: nsPath(pod),
    CNI_IFNAME: "eth0",
    CNI_PATH: "/usr/lib/cni",
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${namespace};K8S_POD_NAME=${name}`,
  };
  const r = await run("nsenter", [`--net=${nsPath(agent.node.ns)}`, BINARY], {
    env,
    stdin: JSON.stringify(config),
  });
  if (r.code !== 0) {
    throw new Error(`ADD ${namespace}/${name} on ${agent.node.name}: ${r.stdout} ${r.stderr}`);
  }
  const ips = JSON.parse(r.stdout).ips as { address: string }[];
  // DEL is left to the namespaces' deletion: the node's namespace takes its veths along.
  return { name, ns: pod, ip: ips[0]!.address.split("/")[0]! };
}

/** Routes of ebpfcni's protocol (235) in a node's namespace. */
export async function ownRoutes(ns: string): Promise<string[]> {
  const out = JSON.parse(await ip("-n", ns, "-j", "route", "show", "proto", "235")) as {
    dst: string;
  }[];
  return out.map((r) => r.dst);
}

export function rssMiB(pid: number): { rss: number; peak: number } {
  const s = Deno.readTextFileSync(`/proc/${pid}/status`);
  const get = (k: string) => Number(s.match(new RegExp(`${k}:\\s+(\\d+)`))?.[1] ?? NaN) / 1024;
  return { rss: get("VmRSS"), peak: get("VmHWM") };
}

/** A manifest directory of the bench's own. */
export function manifestDir(tag: string): { dir: string; manifests: string } {
  const dir = tempDir(tag);
  const manifests = `${dir}/manifests`;
  Deno.mkdirSync(manifests);
  return { dir, manifests };
}

/** Ping from a pod until it answers (bounded); true when it did. */
export async function pingOk(fromNs: string, to: string, tries = 20): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    const r = await run("ip", ["netns", "exec", fromNs, "ping", "-c1", "-W1", "-n", to], {
      timeoutMs: 5000,
    });
    if (r.code === 0) return true;
    await sleep(100);
  }
  return false;
}

/** A TCP connection from a pod until one is accepted (bounded); true when it was. */
export async function tcpOk(
  fromNs: string,
  to: string,
  port: number,
  tries = 20,
): Promise<boolean> {
  const code = `setTimeout(() => Deno.exit(1), 1000);
(await Deno.connect({ hostname: "${to}", port: ${port} })).close(); Deno.exit(0);`;
  for (let i = 0; i < tries; i++) {
    const r = await run("nsenter", [
      `--net=${nsPath(fromNs)}`,
      Deno.execPath(),
      "eval",
      "--quiet",
      code,
    ], {
      timeoutMs: 5000,
    });
    if (r.code === 0) return true;
    await sleep(100);
  }
  return false;
}

export { shQuiet };
