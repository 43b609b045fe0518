// CHECK: verifies what ADD built is still there: the bridge, both veth ends, the address
// and routes inside the netns, the lease, and the classifier on the host veth.
import { CniError, ErrCode } from "../spec/cni.ts";
import type { Ctx } from "./context.ts";
import { ipamDelCtx } from "./context.ts";
import { openNetns } from "./netns_open.ts";
import { openDatapath } from "./datapath.ts";
import { ipamCheck } from "../ipam/mod.ts";
import { resolvePodCidr } from "./pod_cidr.ts";
import { NetlinkSocket } from "../net/socket.ts";
import { Links } from "../net/link.ts";
import { attachedProgramId } from "../datapath/tc.ts";
import { formatIpv4 } from "../spec/ipv4.ts";
import { EndpointMap, IpcacheMap, VethMap } from "../datapath/maps.ts";
import { IPCACHE_MAP, VETH_MAP } from "../spec/bpf_layout.ts";
import { containerRoutes, podAddresses } from "./routes.ts";
import type { Interface } from "../spec/cni.ts";

function fail(msg: string): never {
  throw new CniError(ErrCode.Internal, msg);
}

export async function cmdCheck(ctx: Ctx): Promise<void> {
  const { env, conf } = ctx;
  const prev = conf.prevResult;
  if (!prev) throw new CniError(ErrCode.InvalidConfig, "CHECK needs a prevResult in the config");
  const ips = prev.ips ?? [];
  await resolvePodCidr(ctx);
  await ipamCheck(ipamDelCtx(ctx), ips);

  using ns = openNetns(env.netns, ctx.caller?.pid);
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
  checkInterfaces(prev.interfaces ?? [], {
    bridge: conf.bridge,
    netns: env.netns,
    host: { name: hv.name, mac: hv.mac },
    container: { name: c.name, mac: c.mac },
    hostLinkExists: (name) => links.get(name) !== undefined,
  });
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

/** The prevResult's interfaces against the links, as the reference bridge plugin compares
 * them: the container interface (its sandbox and MAC), this attachment's host veth (its MAC),
 * and any other host-side one must exist (a chained plugin's, say). The bridge's MAC is not
 * compared: the kernel moves it as ports come and go. */
function checkInterfaces(
  listed: Interface[],
  now: {
    bridge: string;
    netns: string;
    host: { name: string; mac: string };
    container: { name: string; mac: string };
    hostLinkExists: (name: string) => boolean;
  },
): void {
  if (listed.length === 0) return;
  const sameMac = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
  const inner = listed.filter((i) => i.sandbox !== undefined && i.name === now.container.name);
  if (inner.length === 0) fail(`Container interface "${now.container.name}" is not in prevResult`);
  for (const i of inner) {
    if (i.sandbox !== now.netns) {
      fail(`Sandbox "${i.sandbox}" of "${i.name}" in prevResult is not CNI_NETNS "${now.netns}"`);
    }
    if (i.mac !== undefined && !sameMac(i.mac, now.container.mac)) {
      fail(`Interface "${i.name}" has MAC ${now.container.mac}, not ${i.mac} as in prevResult`);
    }
  }
  const outer = listed.filter((i) => i.sandbox === undefined && i.name !== now.bridge);
  for (const i of outer) {
    if (i.name !== now.host.name && !now.hostLinkExists(i.name)) {
      fail(`Host interface "${i.name}" in prevResult is missing`);
    }
  }
  const veth = outer.find((i) => i.name === now.host.name) ??
    fail(`Host veth "${now.host.name}" is not in prevResult`);
  if (veth.mac !== undefined && !sameMac(veth.mac, now.host.mac)) {
    fail(`Host veth "${veth.name}" has MAC ${now.host.mac}, not ${veth.mac} as in prevResult`);
  }
}
