// The policy agent in tests: `ebpfcni agent run` as a child process (the built binary) with a
// manifest directory (or a kubeconfig) of the test's own, its socket and logs, and the CNI
// network it serves (kubernetes mode, pods attached through ADD with their names).
import { BINARY, containerId, type TestNetwork, withNetwork } from "./_cni.ts";
import { namespaceObject, podObject } from "../src/netpol/testdata/_objects.ts";
import { ebpfcni } from "./_cli.ts";
import type { Pod } from "./_pods.ts";

export interface AgentProcess {
  socket: string;
  /** Everything it logged so far (JSON lines). */
  logs(): string;
  /** Everything it wrote to stdout so far (only a flow log, `--flow-log -`). */
  stdout(): string;
  /** SIGTERM and wait. */
  stop(): Promise<Deno.CommandStatus>;
  /** SIGKILL and wait: no clean-up runs. */
  kill9(): Promise<void>;
  status(): Promise<AgentStatusJson>;
  /** `agent status --wait-synced` until it has applied its source; throws on timeout. */
  synced(seconds?: number): Promise<AgentStatusJson>;
}

export interface AgentStatusJson {
  synced: boolean;
  generation: number;
  appliedGeneration: number;
  attachments: number;
  pods: number;
  namespaces: number;
  policies: number;
  entries: { ipcache: number; isolation: number; rules: number; cidrs: number; hosts: number };
  lastReconcile: { writes: number; failed: number } | null;
  /** Policies whose rules are not all in rule_map (full). */
  notEnforced: {
    policy: string;
    pods: string[];
    podCount: number;
    needed: number;
    free: number;
    reason: string;
    place: number;
    keepsPrevious: boolean;
  }[];
  problems: string[];
  /** The cluster's nodes (Node objects), checked. */
  nodes: {
    name: string;
    podCidrs: string[];
    address: string | null;
    self: boolean;
    routing: { routed: true; via: string } | { routed: false; reason: string };
    problems: string[];
  }[];
  /** Where it serves /metrics, /healthz and /readyz (HOST:PORT), or null. */
  metricsAddress?: string | null;
  /** Problems the list leaves out (over its cap). */
  problemsNotShown: number;
  /** CNI calls handed over: run in the agent by command, and declined. */
  cni?: { handled: Record<string, number>; declined: number; lastMs: Record<string, number> };
  /** With --flow-log. */
  flowLog?: { path: string; written: number; dropped: number; rotations: number };
}

export type AgentSource = { manifests: string } | { kubeconfig: string };

/** Starts the agent for `net` and waits until its socket answers; with `netns` (a namespace
 * path) it runs in that network namespace (`nsenter --net=`, which keeps /sys/fs/bpf). */
export async function startAgent(
  net: Pick<TestNetwork, "pinDir" | "stateDir" | "dir">,
  source: AgentSource,
  /** `productDefaults`: leave out the flags that keep the host's namespace untouched
   * (`--routing none --no-masquerade`), for a test of the defaults themselves. */
  opts: {
    node?: string;
    socket?: string;
    extra?: string[];
    netns?: string;
    productDefaults?: boolean;
  } = {},
): Promise<AgentProcess> {
  const socket = opts.socket ?? `${net.dir}/agent.sock`;
  const src = "manifests" in source
    ? ["--manifests", source.manifests]
    : ["--kubeconfig", source.kubeconfig];
  const enter = opts.netns === undefined ? [] : [`--net=${opts.netns}`, BINARY];
  const child = new Deno.Command(opts.netns === undefined ? BINARY : "nsenter", {
    args: [
      ...enter,
      "agent",
      "run",
      ...src,
      "--node",
      opts.node ?? "node-1",
      "--pin-dir",
      net.pinDir,
      "--state-dir",
      net.stateDir,
      "--socket",
      socket,
      "--log-level",
      "debug",
      // Agents of tests running side by side: each its own port.
      ...(opts.extra?.includes("--metrics-address") ? [] : ["--metrics-address", "127.0.0.1:0"]),
      // The host's own namespace is no test's node: no routes, devices or forwarding there.
      ...(opts.productDefaults || opts.extra?.includes("--routing") ? [] : ["--routing", "none"]),
      ...(opts.productDefaults || opts.extra?.some((a) => a.endsWith("masquerade"))
        ? []
        : ["--no-masquerade"]),
      ...(opts.extra ?? []),
    ],
    // The robustness tests' fault points, also in the calls it runs for the plugin.
    env: { EBPFCNI_AGENT_FAULTS: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let log = "";
  let out = "";
  const dec = new TextDecoder();
  const pump = async (s: ReadableStream<Uint8Array>, add: (t: string) => void) => {
    for await (const chunk of s) add(dec.decode(chunk));
  };
  const pumps = Promise.all([
    pump(child.stderr, (t) => log += t),
    pump(child.stdout, (t) => out += t),
  ]);
  let exited: Deno.CommandStatus | undefined;
  const status = child.status.then((s) => (exited = s));
  const ask = async (args: string[]) => {
    const r = await ebpfcni(["agent", "status", "--json", "--socket", socket, ...args]);
    if (r.code !== 0) throw new Error(`agent status ${args.join(" ")}: ${r.code} ${r.stderr}`);
    return JSON.parse(r.stdout) as AgentStatusJson;
  };
  const agent: AgentProcess = {
    socket,
    logs: () => log,
    stdout: () => out,
    async stop() {
      if (exited === undefined) child.kill("SIGTERM");
      const s = await status;
      await pumps;
      return s;
    },
    async kill9() {
      if (exited === undefined) child.kill("SIGKILL");
      await status;
      await pumps;
    },
    status: () => ask([]),
    synced: (seconds = 15) => ask(["--wait-synced", String(seconds)]),
  };
  for (let i = 0; i < 200; i++) {
    if (exited !== undefined) {
      await pumps;
      throw new Error(`the agent exited (${exited.code}) before serving: ${log}${out}`);
    }
    try {
      const c = await Deno.connect({ transport: "unix", path: socket });
      c.close();
      return agent;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  await agent.kill9();
  throw new Error(`the agent did not serve ${socket}: ${log}`);
}

/** The network's config in kubernetes mode, its agent socket and a service range. */
export function k8sConfig(
  net: TestNetwork,
  serviceCidr: string,
  socket = `${net.dir}/agent.sock`,
): Record<string, unknown> {
  return net.config({
    policyMode: "kubernetes",
    serviceCIDRs: [serviceCidr],
    agentSocket: socket,
  });
}

/** A service range of the test's own (outside every test pod subnet). */
export function randomServiceCidr(): string {
  return `10.${100 + Math.floor(Math.random() * 50)}.${Math.floor(Math.random() * 250)}.0/24`;
}

/** CNI ADD of pod NS/NAME in kubernetes mode (the agent gives its identity). */
export async function addK8sPod(
  net: TestNetwork,
  config: Record<string, unknown>,
  namespace: string,
  name: string,
): Promise<Pod> {
  const id = containerId("pod");
  const netns = await net.netns();
  const result = await net.add(id, netns, {
    args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${namespace};K8S_POD_NAME=${name}`,
    config,
  });
  const ips = result.ips as { address: string }[];
  return {
    id,
    netns,
    name: netns.split("/").pop()!,
    ip: ips[0]!.address.split("/")[0]!,
    identity: 0,
    result,
  };
}

/** A manifest directory the test writes objects into, one file per object (written through a
 * dot-file and renamed, as an editor or `kubectl` would leave whole files). */
export class ManifestDir {
  readonly dir: string;
  constructor(parent: string) {
    this.dir = `${parent}/manifests`;
    Deno.mkdirSync(this.dir, { recursive: true });
  }

  #file(o: { kind?: unknown; metadata?: { namespace?: string; name?: string } }): string {
    const m = o.metadata ?? {};
    return `${this.dir}/${String(o.kind)}.${m.namespace ?? "_"}.${m.name}.json`;
  }

  apply(obj: unknown): void {
    const path = this.#file(obj as { kind: string });
    const tmp = `${this.dir}/.tmp-${Math.random().toString(36).slice(2)}`;
    Deno.writeTextFileSync(tmp, JSON.stringify(obj, null, 1));
    Deno.renameSync(tmp, path);
  }

  delete(ref: { kind: string; namespace?: string; name: string }): void {
    try {
      Deno.removeSync(this.#file({ kind: ref.kind, metadata: ref }));
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }

  /** Removes every object of `kind`. */
  clear(kind: string): void {
    for (const e of Deno.readDirSync(this.dir)) {
      if (e.name.startsWith(`${kind}.`)) Deno.removeSync(`${this.dir}/${e.name}`);
    }
  }

  writeRaw(name: string, text: string): void {
    Deno.writeTextFileSync(`${this.dir}/${name}`, text);
  }
}

export interface K8sSetup {
  net: TestNetwork;
  config: Record<string, unknown>;
  manifests: ManifestDir;
}

/** A network in kubernetes mode and a manifest directory with namespace x and `pods` (one
 * letter each; addresses from their attachments). */
export async function withK8sSetup(
  pods: string[],
  fn: (s: K8sSetup) => Promise<void>,
): Promise<void> {
  await withNetwork(async (net) => {
    const manifests = new ManifestDir(net.dir);
    const env = { podIp: (p: string) => `198.18.0.${10 + pods.indexOf(p[2]!)}` };
    manifests.apply(namespaceObject("x"));
    for (const p of pods) manifests.apply(podObject(env, "x", p));
    await fn({ net, config: k8sConfig(net, randomServiceCidr()), manifests });
  });
}
