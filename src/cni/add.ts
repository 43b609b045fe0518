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
import type { Link } from "../net/parse.ts";
import { openDatapath } from "./datapath.ts";
import { attach } from "../datapath/tc.ts";
import { PROGRAM_PROCESS_TC } from "../datapath/bpf_object.gen.ts";
import { containerRoutes, podAddresses } from "./routes.ts";
import { EndpointMap, MapFullError } from "../datapath/maps.ts";
import { log } from "../log.ts";

export async function cmdAdd(ctx: Ctx): Promise<Result> {
  const { env, conf, state } = ctx;
  const { identity } = identityOf(ctx);
  const ipamCtx = ipamAddCtx(ctx);
  const plan = ipamPlan(ipamCtx);
  using ns = openNetns(env.netns);
  using dp = openDatapath(conf.pinDir, true);
  using inner = ns.socket();
  using host = new NetlinkSocket();
  const undo = new Undo();
  const fault = (p: Parameters<typeof faultPoint>[1]) => faultPoint(ctx.rawEnv, p);
  const record = {
    containerId: env.containerId,
    ifname: env.ifname,
    netns: env.netns,
    hostVeth: ctx.hostVeth,
    bridge: conf.bridge,
    ips: [] as string[],
    identity,
    pinDir: conf.pinDir,
  };
  try {
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
    state.write(record);
    await fault("after-lease");

    const links = new Links(host);
    const bridge = links.ensureBridge(conf.bridge, conf.mtu);
    if (conf.isGateway) {
      for (const a of v4) if (a.gateway !== undefined) links.addAddr(bridge, a.gateway, a.prefix);
    }
    if (conf.promiscMode) links.setPromisc(bridge, true);
    links.setUp(bridge);
    await fault("after-bridge");

    // A host veth with our derived name is left over from an ADD that crashed: replace it.
    if (links.delete(ctx.hostVeth)) log.warn(`removed stale ${ctx.hostVeth}`);
    links.createVeth(ctx.hostVeth, env.ifname, ns.fd, conf.mtu);
    undo.push(`delete ${ctx.hostVeth}`, () => links.delete(ctx.hostVeth));
    await fault("after-veth");

    const hv = mustGet(links, ctx.hostVeth);
    links.setMaster(hv, bridge.index);
    if (conf.hairpinMode) links.setHairpin(hv, true);
    links.setUp(hv);
    const c = mustGet(cl, env.ifname);
    cl.setUp(c);
    for (const a of v4) cl.addAddr(c, a.ip, a.prefix);
    const routes = containerRoutes(ipam.routes, first.gateway, conf.isDefaultGateway);
    for (const r of routes.specs) cl.addRoute({ ...r, oif: c.index }, env.ifname);
    await fault("after-addr");

    attach(host, hv.index, "ingress", dp.progFd, PROGRAM_PROCESS_TC);
    await fault("after-attach");

    const endpoints = new EndpointMap(dp.endpointFd);
    for (const a of v4) {
      const before = endpoints.get(a.ip);
      try {
        endpoints.set(a.ip, identity);
      } catch (err) {
        if (err instanceof MapFullError) {
          throw new CniError(
            ErrCode.MapFull,
            `Cannot register ${formatIpv4(a.ip)}: ${err.message}`,
            "",
            {
              cause: err,
            },
          );
        }
        throw err;
      }
      undo.push(
        `unregister ${formatIpv4(a.ip)}`,
        () => before === undefined ? endpoints.delete(a.ip) : endpoints.set(a.ip, before),
      );
    }
    await fault("after-endpoint");

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
