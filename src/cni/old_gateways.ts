// "subnet": "usePodCidr" after the node's pod CIDR changed: ADD put the new CIDR's gateway on
// the bridge, and the old one's stays while pods hold old addresses. Once no lease is left in
// an old subnet, DEL and GC remove its gateway address (and so its connected route) and its
// HOST_MAP entry: otherwise, when that CIDR is given to another node, this node's route to it
// would be the bridge's, and the other node's pods unreachable from here. The current CIDR
// (asked of the agent; without an answer nothing is removed) and the config's other ranges
// are never touched, and no ADD leases in an old subnet, so none races with this.
import type { Ctx } from "./context.ts";
import { ipamDelCtx } from "./context.ts";
import { ipamLeases } from "../ipam/mod.ts";
import { awaitsPodCidr } from "../ipam/ipam_conf.ts";
import { type Cidr, cidrContains, formatIpv4, prefixMask, tryParseIpv4 } from "../spec/ipv4.ts";
import { resolvePodCidr } from "./pod_cidr.ts";
import { NetlinkSocket } from "../net/socket.ts";
import { Links } from "../net/link.ts";
import * as M from "../net/messages.ts";
import { SysError } from "../../ffi/errors.ts";
import { openDatapath } from "./datapath.ts";
import { HostMap } from "../datapath/maps.ts";
import { HOST_MAP } from "../spec/bpf_layout.ts";
import { errorMessage } from "../spec/text.ts";
import { log } from "../log.ts";

const overlap = (a: Cidr, b: Cidr) => cidrContains(a, b.network) || cidrContains(b, a.network);

/** The bridge addresses to remove: those whose subnet is none of `current` and holds none of
 * `leased`. Pure. */
export function staleGateways(
  addrs: readonly { ip: number; prefix: number }[],
  current: readonly Cidr[],
  leased: readonly number[],
): { ip: number; prefix: number }[] {
  return addrs.filter((a) => {
    if (a.prefix >= 31) return false; // not a gateway of a pod subnet
    const subnet = { network: (a.ip & prefixMask(a.prefix)) >>> 0, prefix: a.prefix };
    return !current.some((c) => overlap(c, subnet)) &&
      !leased.some((ip) => cidrContains(subnet, ip));
  });
}

/** Removes old pod CIDRs' gateways from the bridge (see above). Never fails the call: a
 * problem is logged, and the next DEL or GC tries again. */
export async function dropOldGateways(ctx: Ctx): Promise<void> {
  const ipam = ctx.conf.ipam;
  if (!ctx.conf.isGateway || !ipam.builtIn || !awaitsPodCidr(ipam)) return;
  try {
    await resolvePodCidr(ctx);
  } catch (err) {
    log.info(`old pod CIDR gateways not checked: ${errorMessage(err)}`);
    return;
  }
  try {
    const resolved = ctx.conf.ipam;
    if (!resolved.builtIn || resolved.config instanceof Error) return;
    const current = resolved.config.ranges.flat().map((r) => r.subnet);
    const leases = await ipamLeases(ipamDelCtx(ctx));
    const leased = [...(leases?.mine ?? []), ...(leases?.others ?? [])]
      .map((t) => tryParseIpv4(t)).filter((ip) => ip !== undefined);
    using nl = new NetlinkSocket();
    const links = new Links(nl);
    const bridge = links.get(ctx.conf.bridge);
    if (!bridge) return;
    const stale = staleGateways(
      links.addrs(bridge.index).map((a) => ({
        ip: a.ip,
        prefix: a.prefixlen,
      })),
      current,
      leased,
    );
    if (stale.length === 0) return;
    using dp = openDatapath(ctx.conf.pinDir);
    const hosts = dp?.maps.has(HOST_MAP.name) ? new HostMap(dp.fd(HOST_MAP)) : undefined;
    for (const a of stale) {
      try {
        nl.request(M.delAddr(bridge.index, a.ip, a.prefix, bridge.name));
      } catch (err) {
        if (!(err instanceof SysError && err.notFound)) throw err;
      }
      hosts?.delete(a.ip);
      log.info(
        `removed ${formatIpv4(a.ip)}/${a.prefix} from ${bridge.name}: no pod holds an address ` +
          "of that old pod CIDR any more",
      );
    }
  } catch (err) {
    log.warn(`old pod CIDR gateways not removed: ${errorMessage(err)}`);
  }
}
