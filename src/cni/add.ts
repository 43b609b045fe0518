// ADD: lease an address, build bridge + veth + addresses + routes, attach the classifier
// to the host veth, register the endpoint. Every step registers its undo; a failure
// anywhere reverts the steps before it and leaves the host as it was.
import { CniError, ErrCode } from "../spec/cni.ts";
import type { Result } from "../spec/cni.ts";
import { type Ctx, identityOf, ipamAddCtx, ipamDelCtx } from "./context.ts";
import { openNetns } from "./netns_open.ts";
import { Undo } from "./undo.ts";
import { faultPoint } from "./fault.ts";
import { ipamAdd, ipamDel, ipamPlan } from "../ipam/mod.ts";
import { formatIpv4 } from "../spec/ipv4.ts";
import { NetlinkSocket } from "../net/socket.ts";
import { Links } from "../net/link.ts";
import { podMtu, tunnelMtuMissing } from "./mtu.ts";
import type { Link } from "../net/rtnl_parse.ts";
import { applyDatapathConf, ensureNodeDatapath, sweepConntrack } from "./datapath.ts";
import { attach } from "../datapath/tc.ts";
import { PROGRAM_PROCESS_TC, PROGRAM_PROCESS_TC_EGRESS } from "../spec/bpf_abi.gen.ts";
import { containerRoutes, podAddresses } from "./routes.ts";
import { EndpointMap, HostMap, IpcacheMap, MapFullError, VethMap } from "../datapath/maps.ts";
import { HOST_MAP, IPCACHE_LOCAL, IPCACHE_MAP, VETH_MAP } from "../spec/bpf_layout.ts";
import type { AttachmentState } from "../node/attachment_store.ts";
import { podNameArg, podNamespaceArg } from "./cni_args.ts";
import { agentForget, agentIdentity } from "./agent_client.ts";
import { refuseSharedAddresses } from "./overlap.ts";
import { ipMasqAdd, ipMasqDel } from "./ipmasq.ts";
import { log } from "../log.ts";
import { resolvePodCidr } from "./pod_cidr.ts";

export async function cmdAdd(ctx: Ctx): Promise<Result> {
  const { env, conf, state } = ctx;
  const resolved = identityOf(ctx);
  // Kubernetes mode: the agent gives identities, unless the runtime names one explicitly.
  const fromAgent = conf.datapath.mode === "kubernetes" &&
    resolved.source !== "cni-args" && resolved.source !== "args";
  const podNamespace = podNamespaceArg(ctx.cniArgs);
  const podName = podNameArg(ctx.cniArgs);
  if (fromAgent && (podNamespace === undefined || podName === undefined)) {
    throw new CniError(
      ErrCode.InvalidEnv,
      "Kubernetes mode needs K8S_POD_NAMESPACE and K8S_POD_NAME in CNI_ARGS (or an explicit " +
        "EBPFCNI_IDENTITY) to give the pod its identity",
    );
  }
  // Before any change: no pod CIDR is code 11 with the host as it was.
  const pod = await resolvePodCidr(ctx);
  const ipamCtx = ipamAddCtx(ctx);
  const plan = ipamPlan(ipamCtx);
  using ns = openNetns(env.netns, ctx.caller?.pid);
  using dp = ensureNodeDatapath(conf);
  applyDatapathConf(dp, conf);
  sweepConntrack(dp, conf);
  using inner = ns.socket();
  using host = new NetlinkSocket();
  const undo = new Undo();
  // Between steps: an ADD the agent runs for a caller that is gone (or whose attachment a DEL
  // removed meanwhile) stops there and rolls back.
  const wanted = () => ctx.caller?.signal.throwIfAborted();
  const fault = async (p: Parameters<typeof faultPoint>[1]) => {
    await faultPoint(ctx.rawEnv, p);
    wanted();
  };
  const record = {
    containerId: env.containerId,
    ifname: env.ifname,
    netns: env.netns,
    hostVeth: ctx.hostVeth,
    bridge: conf.bridge,
    ips: [] as string[],
    identity: resolved.identity,
    pinDir: conf.pinDir,
  } as AttachmentState;
  if (podNamespace !== undefined) record.podNamespace = podNamespace;
  if (podName !== undefined) record.podName = podName;
  try {
    wanted();
    // Checked before any change: the rollback of a duplicate ADD must not undo the live
    // attachment it duplicates (its lease and state record have the same keys as ours).
    const prior = state.read(env.containerId, env.ifname);
    if (prior && prior.netns !== env.netns && pathExists(prior.netns)) {
      throw new CniError(
        ErrCode.InvalidEnv,
        `Container "${env.containerId}" interface "${env.ifname}" is already attached in ` +
          `"${prior.netns}": DEL it first`,
      );
    }
    const cl = new Links(inner);
    if (cl.get(env.ifname)) {
      throw new CniError(
        ErrCode.InvalidEnv,
        `Interface "${env.ifname}" already exists in CNI_NETNS "${env.netns}"`,
      );
    }

    const subnets = plan.config?.ranges.flat().map((r) => r.subnet) ?? [];
    refuseSharedAddresses(conf.stateDir, conf.name, conf.pinDir, subnets);

    state.write(record);
    undo.push("remove attachment state", () => state.remove(env.containerId, env.ifname));
    await fault("after-state");

    const ipam = await ipamAdd(ipamCtx, plan);
    undo.push("release the address", () => ipamDel(ipamDelCtx(ctx)));
    const v4 = podAddresses(ipam.ips);
    const first = v4[0];
    if (!first) {
      throw new CniError(
        ErrCode.InvalidConfig,
        `IPAM "${conf.ipam.type}" returned no IPv4 address`,
      );
    }
    record.ips = v4.map((a) => formatIpv4(a.ip));
    if (fromAgent) {
      record.identity = await agentIdentity(conf.agentSocket, {
        op: "add",
        namespace: podNamespace!,
        name: podName!,
        containerId: env.containerId,
        ifname: env.ifname,
        ips: record.ips,
      });
      undo.push("tell the agent", () =>
        agentForget(conf.agentSocket, {
          op: "del",
          namespace: podNamespace!,
          name: podName!,
          containerId: env.containerId,
          ifname: env.ifname,
          ips: record.ips,
        }));
    }
    const identity = record.identity;
    state.write(record);
    refuseSharedAddresses(conf.stateDir, conf.name, conf.pinDir, subnets, record.ips);
    await fault("after-lease");

    const links = new Links(host);
    const mtu = podMtu(conf, links);
    const small = tunnelMtuMissing(conf, pod?.routing, links);
    if (small !== undefined) log.warn(small);
    const bridge = links.ensureBridge(conf.bridge, mtu);
    if (conf.isGateway) {
      for (const a of v4) if (a.gateway !== undefined) links.addAddr(bridge, a.gateway, a.prefix);
    }
    if (conf.promiscMode) links.setPromisc(bridge, true);
    links.setUp(bridge);
    // The gateway is the node: the reserved identity "host" (shared, never removed by a DEL).
    if (conf.isGateway) {
      const hosts = new HostMap(dp.fd(HOST_MAP));
      for (const a of v4) if (a.gateway !== undefined) hosts.set(a.gateway, true);
    }
    await fault("after-bridge");

    // A host veth with our derived name is left over from an ADD that crashed: replace it.
    if (links.delete(ctx.hostVeth)) log.warn(`removed stale ${ctx.hostVeth}`);
    links.createVeth(ctx.hostVeth, env.ifname, ns.fd, mtu);
    undo.push(`delete ${ctx.hostVeth}`, () => links.delete(ctx.hostVeth));
    await fault("after-veth");

    const hv = mustGet(links, ctx.hostVeth);
    record.hostIfindex = hv.index;
    state.write(record);
    links.setMaster(hv, bridge.index);
    if (conf.hairpinMode) links.setHairpin(hv, true);

    // Everything that judges the pod's frames is in place before either end is up: its first
    // packet meets the classifier, its veth registration and its endpoint entry.
    const veths = new VethMap(dp.fd(VETH_MAP));
    veths.set(hv.index, { ips: v4.map((a) => a.ip), flags: 0 });
    undo.push(`unregister veth ${hv.name}`, () => veths.delete(hv.index));
    attach(host, hv.index, "ingress", dp.ingress.fd, PROGRAM_PROCESS_TC);
    if (conf.datapath.mode === "kubernetes") {
      attach(host, hv.index, "egress", dp.egress.fd, PROGRAM_PROCESS_TC_EGRESS);
    }
    await fault("after-attach");

    const endpoints = conf.datapath.mode === "kubernetes"
      ? podEndpoints(new IpcacheMap(dp.fd(IPCACHE_MAP)))
      : identityEndpoints(new EndpointMap(dp.endpointFd));
    for (const a of v4) {
      const undoIt = registerEndpoint(endpoints, a.ip, identity);
      undo.push(`unregister ${formatIpv4(a.ip)}`, undoIt);
    }
    await fault("after-endpoint");

    if (conf.ipMasq) {
      // Recorded first: a DEL after a crash here still removes the rules.
      record.ipMasq = true;
      state.write(record);
      await ipMasqAdd(conf.name, env.containerId, env.ifname, v4);
      undo.push("remove the ipMasq rules", () => ipMasqDel(conf.name, env.containerId, env.ifname));
    }

    links.setUp(hv);
    const c = mustGet(cl, env.ifname);
    cl.setUp(c);
    for (const a of v4) cl.addAddr(c, a.ip, a.prefix);
    const routes = containerRoutes(ipam.routes, first.gateway, conf.isDefaultGateway);
    for (const r of routes.specs) cl.addRoute({ ...r, oif: c.index }, env.ifname);
    await fault("after-addr");

    const bridgeNow = mustGet(links, conf.bridge);
    return {
      cniVersion: conf.cniVersion,
      interfaces: [
        { name: bridgeNow.name, mac: bridgeNow.mac },
        { name: hv.name, mac: hv.mac },
        { name: c.name, mac: c.mac, mtu: c.mtu, sandbox: env.netns },
      ],
      ips: v4.map((a) => ({ ...a.config, interface: 2 })),
      routes: routes.result,
      ...(ipam.dns ?? conf.dns ? { dns: ipam.dns ?? conf.dns } : {}),
    };
  } catch (err) {
    await undo.run();
    throw err;
  }
}

/** Where a pod's address -> identity entry goes: endpoint_map (identity mode) or
 * ipcache_map as a local pod (kubernetes mode). */
interface EndpointStore {
  name: string;
  get(ip: number): number | undefined;
  set(ip: number, identity: number): void;
  delete(ip: number): void;
}

function identityEndpoints(m: EndpointMap): EndpointStore {
  return {
    name: "endpoint_map",
    get: (ip) => m.get(ip),
    set: (ip, id) => m.set(ip, id),
    delete: (ip) => m.delete(ip),
  };
}

function podEndpoints(m: IpcacheMap): EndpointStore {
  return {
    name: "ipcache_map",
    get: (ip) => m.get(ip)?.identity,
    set: (ip, id) => m.set(ip, { identity: id, flags: IPCACHE_LOCAL }),
    delete: (ip) => m.delete(ip),
  };
}

/** Registers the address; returns how to put back what was there. A full map is code 102. */
function registerEndpoint(store: EndpointStore, ip: number, identity: number): () => void {
  const before = store.get(ip);
  try {
    store.set(ip, identity);
  } catch (err) {
    if (err instanceof MapFullError) {
      throw new CniError(ErrCode.MapFull, `Cannot register ${formatIpv4(ip)}: ${err.message}`, "", {
        cause: err,
      });
    }
    throw err;
  }
  return () => before === undefined ? store.delete(ip) : store.set(ip, before);
}

function pathExists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function mustGet(links: Links, name: string): Link {
  const l = links.get(name);
  if (!l) throw new CniError(ErrCode.Internal, `Link "${name}" vanished during setup`);
  return l;
}
