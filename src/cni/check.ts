// CHECK: verifies what ADD built is still there: the bridge, both veth ends, the address
// and routes inside the netns, the lease, and the classifier on the host veth.
import { CniError, ErrCode } from "../spec/cni.ts";
import type { Ctx } from "./context.ts";
import { ipamDelCtx } from "./context.ts";
import { openNetns } from "./netns_open.ts";
import { openDatapath } from "./datapath.ts";
import { ipamCheck } from "../ipam/mod.ts";
import { NetlinkSocket } from "../net/socket.ts";
import { Links } from "../net/link.ts";
import { attachedProgramId } from "../datapath/tc.ts";
import { formatIpv4 } from "../spec/ipv4.ts";
import { EndpointMap, IpcacheMap, VethMap } from "../datapath/maps.ts";
import { IPCACHE_MAP, VETH_MAP } from "../datapath/layout.ts";
import { containerRoutes, podAddresses } from "./routes.ts";

function fail(msg: string): never {
  throw new CniError(ErrCode.Internal, msg);
}

export async function cmdCheck(ctx: Ctx): Promise<void> {
  const { env, conf } = ctx;
  const prev = conf.prevResult;
  if (!prev) throw new CniError(ErrCode.InvalidConfig, "CHECK needs a prevResult in the config");
  const ips = prev.ips ?? [];
  await ipamCheck(ipamDelCtx(ctx), ips);

  using ns = openNetns(env.netns);
  using host = new NetlinkSocket();
  using dp = openDatapath(conf.pinDir);
  const links = new Links(host);
  const bridge = links.get(conf.bridge) ?? fail(`Bridge "${conf.bridge}" is missing`);
  if (bridge.kind !== "bridge") fail(`"${conf.bridge}" is not a bridge`);
  const hv = links.get(ctx.hostVeth) ?? fail(`Host veth "${ctx.hostVeth}" is missing`);
  if (hv.master !== bridge.index) {
    fail(`Host veth "${hv.name}" is not attached to "${bridge.name}"`);
  }
  if (!dp) fail(`No datapath is pinned under "${conf.pinDir}"`);
  const attached = attachedProgramId(host, hv.index, "ingress");
  if (attached !== dp.progId) {
    fail(`Classifier is not attached to "${hv.name}" (found program id ${attached || "none"})`);
  }
  const k8s = conf.datapath.mode === "kubernetes";
  if (k8s) {
    const egress = attachedProgramId(host, hv.index, "egress");
    if (egress !== dp.egress.id) {
      fail(
        `Classifier is not attached to "${hv.name}" egress (found program id ${egress || "none"})`,
      );
    }
  }
  const veth = dp.maps.has(VETH_MAP.name) ? new VethMap(dp.fd(VETH_MAP)).get(hv.index) : undefined;
  if (!veth) fail(`Host veth "${hv.name}" is not registered in veth_map`);

  using inner = ns.socket();
  const cl = new Links(inner);
  const c = cl.get(env.ifname) ?? fail(`Interface "${env.ifname}" is missing in the netns`);
  if (!(c.flags & 1)) fail(`Interface "${env.ifname}" is down`);
  const have = cl.addrs(c.index);
  const endpoints = k8s
    ? { name: "ipcache_map", get: (ip: number) => new IpcacheMap(dp.fd(IPCACHE_MAP)).get(ip) }
    : { name: "endpoint_map", get: (ip: number) => new EndpointMap(dp.endpointFd).get(ip) };
  const addrs = podAddresses(ips);
  for (const a of addrs) {
    if (!have.some((h) => h.ip === a.ip && h.prefixlen === a.prefix)) {
      fail(`Address ${a.config.address} is missing on "${env.ifname}"`);
    }
    if (endpoints.get(a.ip) === undefined) {
      fail(`${formatIpv4(a.ip)} is not registered in ${endpoints.name}`);
    }
    if (!veth.ips.includes(a.ip)) {
      fail(`${formatIpv4(a.ip)} is not registered for "${hv.name}" in veth_map`);
    }
  }
  const gateway = addrs.find((a) => a.gateway !== undefined)?.gateway;
  const routes = cl.routes();
  for (const r of containerRoutes(prev.routes ?? [], gateway, false).specs) {
    const found = routes.some((x) =>
      x.dst === r.dst && x.dstLen === r.dstLen && x.oif === c.index &&
      (r.gw === undefined || x.gw === r.gw)
    );
    if (!found) fail(`Route to ${formatIpv4(r.dst)}/${r.dstLen} is missing in the netns`);
  }
}
