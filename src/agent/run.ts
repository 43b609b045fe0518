// `ebpfcni agent run`: the node's policy agent as a process. Loads (or reuses) the pin
// directory's datapath, reads this node's attachments from the CNI records, starts the source
// (a manifest directory, or the Kubernetes API), serves the socket and (metrics.ts, http.ts)
// /metrics, /healthz and /readyz, reconciles on every change and every `resyncMs`, and stops
// cleanly on SIGINT / SIGTERM. The maps stay as they are when it stops: the datapath goes on
// enforcing the last policies it was given.
import { hex, sha256 } from "../hash.ts";
import { loadNodeDatapath } from "../node/datapath_load.ts";
import { StateStore } from "../node/attachment_store.ts";
import { agentTables, ConfigMap, CtMap, VethMap } from "../datapath/maps.ts";
import { monotonicNs } from "../../ffi/libc.ts";
import {
  CIDR_MAP,
  CONFIG_MAP,
  HOST_MAP,
  IPCACHE_MAP,
  ISOLATION_MAP,
  MODE_KUBERNETES,
  RULE_MAP,
  VETH_MAP,
} from "../spec/bpf_layout.ts";
import { modeName } from "../datapath/config_plan.ts";
import type { Datapath } from "../datapath/loader.ts";
import { NetlinkSocket } from "../net/socket.ts";
import { Links } from "../net/link.ts";
import { type Cidr, formatCidr, tryParseIpv4 } from "../spec/ipv4.ts";
import { errorMessage, quote } from "../spec/text.ts";
import type { AgentRequest, CniReply, CniRunner } from "../spec/agent_wire.ts";
import { Agent, AgentError } from "./agent_core.ts";
import type { Attachment } from "./local_view.ts";
import type { AgentLog } from "../log.ts";
import { Reconciler } from "./reconcile.ts";
import { Revoker } from "./ct_revoke.ts";
import { AgentServer, type Caller } from "./server.ts";
import { CniCounts, CniServer } from "./cni_serve.ts";
import { logTo } from "../log.ts";
import type { SourceSink } from "./source.ts";
import { importSource } from "./load_source.ts";
import { FlowLog, type FlowLogOptions } from "./flow_log.ts";
import { FlowService } from "./flow_serve.ts";
import { AgentMetrics } from "./metrics.ts";
import { datapathMaps, datapathStats, processFigures } from "./metrics_read.ts";
import { HttpServer } from "./http.ts";
import type { ListenAddress } from "./http_address.ts";
import type { RoutingMode } from "../spec/routing.ts";
import { type Routing, startRouting } from "./routing.ts";
import type { NodeSource } from "../spec/node.ts";
import { type Masquerade, startMasquerade } from "./masquerade.ts";

export type SourceChoice =
  | { kind: "manifests"; dir: string }
  | { kind: "kubernetes"; kubeconfig: string }
  | { kind: "kubernetes"; inCluster: true };

/** --routing and its vxlan settings. */
export interface RoutingChoice {
  mode: RoutingMode;
  vxlan: { port: number; vni: number };
}

export interface RunOptions {
  source: SourceChoice;
  /** This node's name (pods whose spec.nodeName it is are local). */
  node: string;
  pinDir: string;
  stateDir: string;
  /** Where the agent keeps its own records (default: `stateDir`). */
  dataDir?: string;
  socket: string;
  /** A group whose members may use the socket besides root (--socket-group). */
  socketGroup?: number;
  resyncMs: number;
  addWaitMs: number;
  /** Run CNI calls handed over by the plugin (else decline them: the plugin runs them). */
  cniHandoff: boolean;
  /** Runs a handed-over CNI call (the CNI dispatcher, src/cni/dispatch.ts). */
  runCni: CniRunner;
  /** Where drop verdicts are written (a file rotated by size, or "-": stdout). */
  flowLog?: FlowLogOptions;
  /** Keep tracked connections a change no longer allows (else they end: the default). */
  keepEstablished: boolean;
  /** Where `/metrics`, `/healthz` and `/readyz` are served; none: not served, nothing
   * counted. */
  metricsAddress?: ListenAddress | undefined;
  /** How remote nodes' pod CIDRs are reached (absent: as "none", nothing touched). */
  routing?: RoutingChoice;
  /** Masquerade this node's pods' traffic leaving the cluster (masquerade.ts); none: off. */
  masquerade?: { nonMasquerade: Cidr[] };
  log: AgentLog;
  /** Resolves when the agent should stop (the CLI: a signal). */
  stopSignal: Promise<unknown>;
}

export class AgentStartError extends Error {
  override name = "AgentStartError";
}

interface RunningSource {
  rescan?: () => Promise<void>;
  stop(): Promise<void>;
}

/** The attachments the CNI records say this pin directory has (an agent restarting must
 * keep every attached pod's entries). */
function recordedAttachments(stateDir: string, pinDir: string, log: AgentLog): Attachment[] {
  const out: Attachment[] = [];
  for (const r of StateStore.all(stateDir)) {
    if (r.pinDir !== pinDir) continue;
    if (r.podNamespace === undefined || r.podName === undefined) {
      log.debug("attachment without a pod name ignored", { containerId: r.containerId });
      continue;
    }
    const ips = r.ips.map(tryParseIpv4).filter((ip) => ip !== undefined);
    if (ips.length === 0) continue; // an ADD still running: it will ask
    out.push({
      containerId: r.containerId,
      ifname: r.ifname,
      namespace: r.podNamespace,
      name: r.podName,
      ips,
    });
  }
  return out;
}

/** The node's IPv4 addresses (every interface of the agent's network namespace). */
export function nodeAddresses(): Set<number> {
  using nl = new NetlinkSocket();
  return new Set(new Links(nl).addrs().map((a) => a.ip));
}

/** The Service CIDRs the datapath's config holds (kubernetes mode; set by CNI ADD). */
function serviceCidrsOf(dp: Datapath): Cidr[] {
  const bits = (mask: number) => {
    let n = 0;
    for (let m = mask >>> 0; m !== 0; m = (m << 1) >>> 0) n++;
    return n;
  };
  return new ConfigMap(dp.fd(CONFIG_MAP)).get().serviceCidrs.map((c) => ({
    network: c.addr >>> 0,
    prefix: bits(c.mask),
  }));
}

function checkMode(dp: Datapath): void {
  const config = new ConfigMap(dp.fd(CONFIG_MAP)).get();
  const attached = new VethMap(dp.fd(VETH_MAP)).list().length;
  if (config.mode !== MODE_KUBERNETES && attached > 0) {
    throw new AgentStartError(
      `Pin directory ${quote(dp.pinDir)} runs in ${
        modeName(config.mode)
      } mode with ${attached} pod(s) attached: the agent serves kubernetes mode ` +
        `("policyMode": "kubernetes" in the network config)`,
    );
  }
}

async function startSource(choice: SourceChoice, sink: SourceSink): Promise<RunningSource> {
  if (choice.kind === "manifests") {
    const { startManifestSource } = await importSource("source_manifests");
    return await startManifestSource(choice.dir, sink);
  }
  // The Kubernetes client is large: loaded only by an agent that talks to an API server.
  const { startKubeSource } = await importSource("source_kube");
  return await startKubeSource(
    "inCluster" in choice ? { inCluster: true } : { kubeconfig: choice.kubeconfig },
    sink,
  );
}

/** The metrics of this agent, reading its datapath and model at scrape time. */
function agentMetrics(source: string, dp: Datapath, agent: Agent): AgentMetrics {
  return new AgentMetrics({
    source,
    stats: () => datapathStats(dp),
    maps: () => {
      // The reconciler's mirror of the maps it writes (kept by every write, read again every
      // resync) spares a count of each through the kernel.
      const e = agent.status().entries;
      return datapathMaps(
        dp,
        new Map([
          [IPCACHE_MAP.name, e.ipcache],
          [ISOLATION_MAP.name, e.isolation],
          [RULE_MAP.name, e.rules],
          [CIDR_MAP.name, e.cidrs],
          [HOST_MAP.name, e.hosts],
        ]),
      );
    },
    model: () => ({ ...agent.status(), identities: agent.identityCounts() }),
    process: processFigures,
  });
}

/** `/readyz`: the source has delivered its whole view and still reaches its API server (or
 * directory), and the maps hold what it delivered once. */
function readiness(agent: Agent, metrics: AgentMetrics): string | undefined {
  const st = agent.status();
  if (!st.synced) return "the source has not synced yet";
  if (!metrics.sourceUp) return "the source is unreachable (retrying)";
  if (st.lastReconcile === null) return "the maps are not written yet";
  return undefined;
}

/** The agent's store as the source's sink, with the source's health and requests counted. */
function observedSink(agent: Agent, metrics: AgentMetrics): SourceSink {
  const store = agent.store;
  return {
    upsert: (obj) => store.upsert(obj),
    remove: (kind, namespace, name) => store.remove(kind, namespace, name),
    synced: () => store.synced(),
    problem: (message) => store.problem(message),
    problems: (source, messages) => store.problems(source, messages),
    begin: () => store.begin(),
    commit: () => store.commit(),
    health: (up) => metrics.sourceHealth(up),
    request: (resource, what, again) => metrics.sourceRequest(resource, what, again),
  };
}

/** The agent's nodes (valid Node objects, and a hook fired after a reconcile that changed
 * them) as routing's and masquerade's NodeSource. */
function agentNodeSource(agent: Agent): NodeSource {
  return {
    nodes: () => agent.nodes(),
    claimedPodCidrs: () => [...agent.store.model.nodes.values()].flatMap((n) => n.podCidrs),
    onChange: (cb) => void agent.onNodes(cb),
  };
}

/** Which policy each rule_map entry is for, one file per pin directory (agents of different
 * pin directories may share the directory). */
function ledgerFile(dir: string, pinDir: string): string {
  return `${dir}/agent-rules-${hex(sha256(pinDir)).slice(0, 16)}.json`;
}

export async function runAgent(o: RunOptions): Promise<void> {
  let flowLog: FlowLog | undefined;
  try {
    flowLog = o.flowLog && FlowLog.open(o.flowLog, o.log);
  } catch (err) {
    throw new AgentStartError(errorMessage(err), { cause: err });
  }
  let dp: Datapath;
  try {
    dp = loadNodeDatapath(o.pinDir, o.stateDir);
  } catch (err) {
    await flowLog?.close();
    throw new AgentStartError(`Cannot load the datapath in ${quote(o.pinDir)}: ${err}`, {
      cause: err,
    });
  }
  using _dp = dp;
  try {
    checkMode(dp);
  } catch (err) {
    await flowLog?.close();
    throw err;
  }
  const attachments = recordedAttachments(o.stateDir, o.pinDir, o.log);
  let metrics: AgentMetrics | undefined;
  const reconciler = new Reconciler(agentTables(dp), {
    ledgerFile: ledgerFile(o.dataDir ?? o.stateDir, o.pinDir),
    onLedgerFileError: (err) =>
      o.log.warn("cannot record which policy each rule_map entry is for", { error: err.message }),
  });
  const agent = new Agent(reconciler, attachments, {
    node: o.node,
    addWaitMs: o.addWaitMs,
    debounceMs: 5,
    log: o.log,
    hostAddresses: nodeAddresses,
    revoker: new Revoker(dp, { keepEstablished: o.keepEstablished, log: o.log }),
    observe: (e) => metrics?.reconciled(e),
    serviceCidrs: () => serviceCidrsOf(dp),
  });
  let http: HttpServer | undefined;
  if (o.metricsAddress !== undefined) {
    const m = metrics = agentMetrics(o.source.kind, dp, agent);
    try {
      http = HttpServer.listen(o.metricsAddress, {
        metrics: () => m.render((err) => o.log.warn("metrics", { error: String(err) })),
        ready: () => readiness(agent, m),
      }, o.log);
    } catch (err) {
      agent.stop();
      await flowLog?.close();
      throw new AgentStartError(
        `Cannot serve metrics on ${
          quote(`${o.metricsAddress.hostname}:${o.metricsAddress.port}`)
        }: ${errorMessage(err)}`,
        { cause: err },
      );
    }
  }
  let flows: FlowService;
  try {
    flows = await FlowService.start(dp, agent, flowLog, o.log);
  } catch (err) {
    await http?.close();
    agent.stop();
    await flowLog?.close();
    throw new AgentStartError(`Cannot read the events ring buffer: ${errorMessage(err)}`, {
      cause: err,
    });
  }
  let source: RunningSource;
  try {
    source = await startSource(o.source, metrics ? observedSink(agent, metrics) : agent.store);
  } catch (err) {
    await flows.close();
    await http?.close();
    agent.stop();
    throw new AgentStartError(errorMessage(err), { cause: err });
  }
  // Routing state per node for `agent status` is `routing?.state(name)`.
  let routing: Routing | undefined;
  const nodes = agentNodeSource(agent);
  if (o.routing) {
    try {
      const r = routing = startRouting(nodes, {
        mode: o.routing.mode,
        node: o.node,
        vxlan: o.routing.vxlan,
        resyncMs: o.resyncMs,
        log: o.log,
        toNode: dp.toNode,
      });
      agent.setRouteState((name) => r.state(name));
    } catch (err) {
      await source.stop();
      await flows.close();
      await http?.close();
      agent.stop();
      throw new AgentStartError(`Cannot route: ${errorMessage(err)}`, { cause: err });
    }
  }
  let masquerade: Masquerade | undefined;
  if (o.masquerade) {
    try {
      masquerade = await startMasquerade(nodes, {
        self: o.node,
        nonMasquerade: o.masquerade.nonMasquerade,
        log: o.log,
      });
    } catch (err) {
      await source.stop();
      await flows.close();
      await http?.close();
      agent.stop();
      routing?.stop();
      throw new AgentStartError(`Cannot masquerade: ${errorMessage(err)}`, { cause: err });
    }
  }
  const cni = new CniCounts();
  const cniServer = new CniServer(o.runCni, {
    podCidr: () => agent.podCidr(),
    routing: o.routing?.mode ?? "none",
  });
  const metricsAddress = http?.address ?? null;
  /** The agent's status with what the process adds: CNI calls, flow log, metrics, masquerade,
   * routing. */
  const fullStatus = () => ({
    ...agent.status(),
    cni,
    ...flows.status(),
    metricsAddress,
    masquerade: masquerade?.status() ?? null,
    ...(routing ? { routing: routing.status() } : {}),
  });
  const handler = async (req: AgentRequest, caller: Caller): Promise<unknown> => {
    const reply = await handle(req, caller);
    metrics?.request(req.op, !(typeof reply === "object" && reply !== null && "error" in reply));
    return reply;
  };
  const handle = async (req: AgentRequest, caller: Caller): Promise<unknown> => {
    try {
      switch (req.op) {
        case "cni": {
          const start = performance.now();
          const reply: CniReply = o.cniHandoff
            ? await cniServer.serve(req, { pid: caller.peer.pid, signal: caller.signal })
            : { fallback: "this agent does not run CNI calls (--no-cni-handoff)" };
          const ms = performance.now() - start;
          cni.count(reply, req.env.CNI_COMMAND!, ms);
          metrics?.cniCall(
            req.env.CNI_COMMAND!,
            "code" in reply ? String(reply.code) : "declined",
            ms,
          );
          return reply;
        }
        case "add": {
          const identity = await agent.add(req);
          if (caller.signal.aborted) {
            // The ADD that asked is gone (its process killed while the pod was awaited): no
            // DEL will come for what it never recorded as attached.
            agent.abandon(req);
            return { error: "the caller is gone" };
          }
          return { identity };
        }
        case "del":
          // DEL wins over an ADD of the same attachment still running here.
          cniServer.cancelAdds(req.containerId, req.ifname);
          agent.del(req);
          return { ok: true };
        case "status":
          return { status: fullStatus() };
        case "sync":
          await source.rescan?.();
          await agent.settled(5_000);
          return { status: fullStatus() };
        case "explain":
          return { explanation: agent.explain(req) };
        case "podcidr":
          return {
            podCidr: formatCidr(await agent.podCidr()),
            node: o.node,
            routing: o.routing?.mode ?? "none",
          };
        case "monitor":
          return flows.monitor(req);
      }
    } catch (err) {
      if (err instanceof AgentError) return { error: err.message };
      o.log.error("request failed", { op: req.op, error: String(err) });
      return { error: String(err) };
    }
  };
  let server: AgentServer | undefined;
  try {
    server = await AgentServer.listen(
      o.socket,
      handler,
      o.log,
      o.socketGroup === undefined ? {} : { group: o.socketGroup },
    );
  } catch (err) {
    routing?.stop();
    await source.stop();
    await http?.close();
    agent.stop();
    await flows.close();
    throw new AgentStartError(`Cannot serve ${quote(o.socket)}: ${errorMessage(err)}`, {
      cause: err,
    });
  }
  // The CNI calls it runs log through its own JSON log.
  logTo((level, msg) => o.log[level](msg, { from: "cni" }));
  o.log.info("agent started", {
    source: o.source.kind === "manifests" ? `manifests:${o.source.dir}` : "kubernetes",
    node: o.node,
    pinDir: o.pinDir,
    socket: o.socket,
    metrics: metricsAddress,
    attachments: attachments.length,
    established: o.keepEstablished ? "kept" : "revoked",
    routing: routing ? o.routing!.mode : "not running",
    masquerade: masquerade?.status().state ?? "off",
  });
  const ct = CtMap.of(dp);
  const resync = setInterval(() => {
    try {
      agent.resync();
    } catch (err) {
      o.log.error("resync failed", { error: String(err) });
    }
    try {
      masquerade?.sync(true);
    } catch (err) {
      o.log.error("masquerade resync failed", { error: String(err) });
    }
    // The datapath forgets an expired connection only when it meets it again: without this,
    // dead ones would hold their pod's share of ct_est_map until then.
    try {
      ct.sweep(monotonicNs());
    } catch (err) {
      o.log.error("conntrack sweep failed", { error: String(err) });
    }
  }, o.resyncMs);
  try {
    await o.stopSignal;
  } finally {
    clearInterval(resync);
    // The routes stay: pods keep reaching other nodes while no agent runs.
    routing?.stop();
    await server.close();
    await http?.close();
    logTo(undefined);
    await source.stop();
    agent.stop();
    await flows.close();
    o.log.info("agent stopped");
  }
}
