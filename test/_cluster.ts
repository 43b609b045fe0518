// A cluster of real nodes on one machine for tests: an underlay bridge in a namespace of its
// own, and per node a network namespace wired to it with an InternalIP (10.0.0.<i>/24), its
// own pod bridge, pin dir, state dir, IPAM data dir, agent socket and manifest directory, an
// agent (`ebpfcni agent run --node node-<i> --routing MODE --masquerade`) and a kube-proxy
// stand-in (iptables DNAT in the node's namespace). Every node's manifest directory holds the
// same cluster objects (Nodes with pod CIDRs 10.244.<i>.0/24, Namespaces, Pods with
// spec.nodeName, NetworkPolicies), as every node's agent sees the same API server. Pods are
// attached by the real plugin with `"subnet": "usePodCidr"`, run in the node's namespace.
// Processes of a node run under `nsenter --net=` (`ip netns exec` remounts /sys and would
// hide /sys/fs/bpf); tools that need no bpffs (ip, iptables, sysctl) may use `ip -n`. Nothing
// touches the initial namespace, and everything goes in `finally`.
import { BINARY, pluginEnv, rand, stdinOf, toReply } from "./_cni.ts";
import { type AgentProcess, type AgentStatusJson, ManifestDir, startAgent } from "./_agent.ts";
import { type KubeProxy, type Service, withKubeProxy } from "./_kubeproxy.ts";
import { run, tryRun } from "./_kernel.ts";
import type { Pod } from "./_pods.ts";

export type Routing = "vxlan" | "native";

export interface ClusterNode {
  /** The Node object's name: node-<index>. */
  name: string;
  index: number;
  /** `ip netns` name and path. */
  ns: string;
  path: string;
  address: string;
  cidr: string;
  bridge: string;
  pinDir: string;
  dir: string;
  stateDir: string;
  dataDir: string;
  socket: string;
  manifests: ManifestDir;
  agent?: AgentProcess;
  /** The conflist's network config on this node. */
  config: Record<string, unknown>;
}

export interface Cluster {
  routing: Routing;
  serviceCidr: string;
  underlay: string;
  nodes: ClusterNode[];
  /** A namespace on the underlay outside the cluster (10.0.0.254): no route to any pod. */
  world: { ns: string; path: string; address: string };
  /** Writes `obj` to every node's manifest directory (a Pod gets its node from `placement`). */
  apply(obj: unknown): void;
  delete(ref: { kind: string; namespace?: string; name: string }): void;
  clear(kind: string): void;
  /** Which node a pod ("ns/name") is on; set before its objects are applied. */
  placement: Map<string, ClusterNode>;
  /** Adds one more node namespace (not yet a Node object: `apply(nodeObject(n))`). */
  addNode(): Promise<ClusterNode>;
  /** Starts (or restarts) a node's agent. */
  startAgent(n: ClusterNode): Promise<AgentProcess>;
  /** Every running agent's status once it has applied its manifests. */
  synced(): Promise<AgentStatusJson[]>;
  /** CNI ADD of pod NS/NAME on node `n` in kubernetes mode. */
  addPod(n: ClusterNode, namespace: string, name: string): Promise<Pod>;
  /** Installs `services` on the kube-proxy of every node the cluster started with. */
  addServices(services: Service[]): Promise<void>;
}

export const UNDERLAY_PREFIX = "10.0.0";

/** The Node object of `n` as kube-controller-manager and the kubelet leave it. */
export function nodeObject(n: Pick<ClusterNode, "name" | "cidr" | "address">): unknown {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: n.name },
    spec: { podCIDR: n.cidr, podCIDRs: [n.cidr] },
    status: { addresses: [{ type: "InternalIP", address: n.address }] },
  };
}

/** Runs `fn` with a cluster of `size` nodes, each with its agent running and its Node object
 * applied; removes everything afterwards. */
export async function withCluster(
  opts: { size: number; routing: Routing; serviceCidr?: string },
  fn: (c: Cluster) => Promise<void>,
): Promise<void> {
  const tag = rand(5);
  const namespaces: string[] = [];
  const dirs: string[] = [];
  const agents = new Set<AgentProcess>();
  const serviceCidr = opts.serviceCidr ?? "10.96.0.0/24";
  const ip = (...a: string[]) => run("ip", a);
  const netnsAdd = async (name: string) => {
    await ip("netns", "add", name);
    namespaces.push(name);
    await ip("-n", name, "link", "set", "lo", "up");
  };
  const underlay = `cl-ul-${tag}`;
  const world = {
    ns: `cl-w-${tag}`,
    path: `/var/run/netns/cl-w-${tag}`,
    address: `${UNDERLAY_PREFIX}.254`,
  };
  const objects = new Map<string, unknown>();
  const key = (o: { kind?: unknown; metadata?: { namespace?: string; name?: string } }) =>
    `${String(o.kind)}/${o.metadata?.namespace ?? ""}/${o.metadata?.name}`;
  const plug = async (i: number, ns: string, peer: string) => {
    await ip(
      "-n",
      underlay,
      "link",
      "add",
      `p${i}`,
      "type",
      "veth",
      "peer",
      "name",
      peer,
      "netns",
      ns,
    );
    await ip("-n", underlay, "link", "set", `p${i}`, "master", "ul0", "up");
  };
  const c: Cluster = {
    routing: opts.routing,
    serviceCidr,
    underlay,
    nodes: [],
    world,
    placement: new Map(),
    apply(obj) {
      const o = structuredClone(obj) as {
        kind: string;
        metadata: { namespace?: string; name: string };
        spec?: Record<string, unknown>;
      };
      if (o.kind === "Pod") {
        const n = c.placement.get(`${o.metadata.namespace}/${o.metadata.name}`);
        if (n) o.spec = { ...o.spec, nodeName: n.name };
      }
      objects.set(key(o), o);
      for (const n of c.nodes) n.manifests.apply(o);
    },
    delete(ref) {
      objects.delete(`${ref.kind}/${ref.namespace ?? ""}/${ref.name}`);
      for (const n of c.nodes) n.manifests.delete(ref);
    },
    clear(kind) {
      for (const k of [...objects.keys()]) if (k.startsWith(`${kind}/`)) objects.delete(k);
      for (const n of c.nodes) n.manifests.clear(kind);
    },
    async addNode() {
      const i = c.nodes.length + 1;
      const ns = `cl-n${i}-${tag}`;
      const dir = Deno.makeTempDirSync({ prefix: "ebpfcni-cluster-" });
      dirs.push(dir);
      const pinDir = `/sys/fs/bpf/ebpfcni-cluster-${tag}-${i}`;
      dirs.push(pinDir);
      const n: ClusterNode = {
        name: `node-${i}`,
        index: i,
        ns,
        path: `/var/run/netns/${ns}`,
        address: `${UNDERLAY_PREFIX}.${i}`,
        cidr: `10.244.${i}.0/24`,
        bridge: `cbr${i}${tag}`,
        pinDir,
        dir,
        stateDir: `${dir}/state`,
        dataDir: `${dir}/ipam`,
        socket: `${dir}/agent.sock`,
        manifests: new ManifestDir(dir),
        config: {},
      };
      n.config = {
        cniVersion: "1.1.0",
        name: `cl-${tag}`,
        type: "ebpfcni",
        bridge: n.bridge,
        pinDir: n.pinDir,
        stateDir: n.stateDir,
        policyMode: "kubernetes",
        serviceCIDRs: [serviceCidr],
        agentSocket: n.socket,
        ipam: {
          type: "host-local",
          subnet: "usePodCidr",
          routes: [{ dst: "0.0.0.0/0" }],
          dataDir: n.dataDir,
        },
      };
      await netnsAdd(ns);
      await plug(i, ns, "eth0");
      await ip("-n", ns, "addr", "add", `${n.address}/24`, "dev", "eth0");
      await ip("-n", ns, "link", "set", "eth0", "up");
      // The same API server for every node: what the others hold, this one gets too.
      for (const o of objects.values()) n.manifests.apply(o);
      c.nodes.push(n);
      return n;
    },
    async startAgent(n) {
      const agent = await startAgent(n, { manifests: n.manifests.dir }, {
        node: n.name,
        socket: n.socket,
        netns: n.path,
        extra: ["--routing", c.routing, "--masquerade"],
      });
      agents.add(agent);
      n.agent = agent;
      return agent;
    },
    async synced() {
      const out: AgentStatusJson[] = [];
      for (const n of c.nodes) if (n.agent) out.push(await n.agent.synced());
      return out;
    },
    async addPod(n, namespace, name) {
      const id = `pod-${rand(8)}`;
      const pod = `cl-p-${rand(6)}`;
      await ip("netns", "add", pod);
      namespaces.push(pod);
      const netns = `/var/run/netns/${pod}`;
      const call = {
        command: "ADD",
        containerId: id,
        netns,
        ifname: "eth0",
        args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${namespace};K8S_POD_NAME=${name}`,
      };
      const p = new Deno.Command("nsenter", {
        args: [`--net=${n.path}`, BINARY],
        env: { ...pluginEnv(call), PATH: "/usr/sbin:/usr/bin:/sbin:/bin" },
        clearEnv: true,
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const w = p.stdin.getWriter();
      await w.write(stdinOf({ config: n.config }));
      await w.close();
      const reply = toReply(await p.output());
      if (reply.code !== 0 || !reply.json) {
        throw new Error(
          `ADD ${namespace}/${name} on ${n.name} failed: ${reply.stdout}${reply.stderr}`,
        );
      }
      const ips = reply.json.ips as { address: string }[];
      return {
        id,
        netns,
        name: pod,
        ip: ips[0]!.address.split("/")[0]!,
        identity: 0,
        result: reply.json,
      };
    },
    async addServices(list) {
      for (const kp of kubeProxies) for (const s of list) await kp.add(s);
    },
  };
  const kubeProxies: KubeProxy[] = [];
  try {
    await netnsAdd(underlay);
    await ip("-n", underlay, "link", "add", "ul0", "type", "bridge");
    await ip("-n", underlay, "link", "set", "ul0", "up");
    await netnsAdd(world.ns);
    await plug(0, world.ns, "eth0");
    await ip("-n", world.ns, "addr", "add", `${world.address}/24`, "dev", "eth0");
    await ip("-n", world.ns, "link", "set", "eth0", "up");
    for (let i = 0; i < opts.size; i++) await c.addNode();
    for (const n of c.nodes) c.apply(nodeObject(n));
    for (const n of c.nodes) await c.startAgent(n);
    await c.synced();
    // One kube-proxy per node, each holding every Service (backends anywhere in the cluster).
    await nest(c.nodes, kubeProxies, () => fn(c));
  } finally {
    for (const a of agents) await a.stop().catch(() => {});
    for (const ns of namespaces.reverse()) await tryRun("ip", ["netns", "del", ns]);
    for (const d of dirs) await Deno.remove(d, { recursive: true }).catch(() => {});
  }
}

/** Runs `fn` inside a kube-proxy stand-in of every node in turn (each in its namespace). */
function nest(nodes: ClusterNode[], out: KubeProxy[], fn: () => Promise<void>): Promise<void> {
  const [first, ...rest] = nodes;
  if (!first) return fn();
  return withKubeProxy(first.bridge, [], (kp) => {
    out.push(kp);
    return nest(rest, out, fn);
  }, first.ns);
}

/** Polls `fn` until it is true or `seconds` pass (a bound against hanging, not a speed goal). */
export async function eventually(
  what: string,
  fn: () => Promise<boolean> | boolean,
  seconds = 15,
): Promise<void> {
  const end = Date.now() + seconds * 1000;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`never happened: ${what}`);
    await new Promise((ok) => setTimeout(ok, 100));
  }
}

/** ebpfcni's routes in a node's namespace (its protocol number, 235). */
export async function ownedRoutes(n: ClusterNode): Promise<string> {
  return (await tryRun("ip", ["-n", n.ns, "route", "show", "proto", "235"])).stdout;
}
