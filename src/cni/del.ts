// DEL: best effort and idempotent. Removes the endpoint entries, the host veth (which takes
// the container end with it) and the per-attachment state, and releases the lease, whether
// or not the netns or the links still exist. A second DEL, or a DEL after a failed ADD,
// finds nothing to do and succeeds.
import type { Ctx } from "./context.ts";
import { ipamDelCtx } from "./context.ts";
import { ipamDel, ipamLeasedIps } from "../ipam/mod.ts";
import { openDatapath } from "./datapath.ts";
import { EndpointMap } from "../datapath/maps.ts";
import { NetlinkSocket } from "../net/socket.ts";
import { Links } from "../net/link.ts";
import { hostVethName } from "../net/names.ts";
import { tryParseIpv4 } from "../spec/ipv4.ts";
import type { AttachmentState } from "./state.ts";
import { log } from "../log.ts";

export interface Teardown {
  containerId: string;
  ifname: string;
  /** Addresses to unregister; from the state record and the prevResult. */
  ips: string[];
  identity?: number;
  /** Where ADD registered the endpoint (the config's pinDir may have changed since). */
  pinDir?: string;
}

/** Undoes one attachment on the host. Shared by DEL and GC. */
export async function teardown(ctx: Ctx, t: Teardown, links: Links): Promise<void> {
  const veth = hostVethName(t.containerId, t.ifname);
  if (links.delete(veth)) log.info(`deleted ${veth}`);

  const ipamCtx = ipamDelCtx(ctx, t.containerId, t.ifname);
  // An address still leased to this attachment is ours whatever identity an operator has
  // given it since; one only recorded (a DEL that crashed after releasing) may already be
  // another pod's, so it goes only if it still holds this pod's identity.
  const leased = new Set(await ipamLeasedIps(ipamCtx) ?? []);
  using dp = openDatapath(t.pinDir ?? ctx.conf.pinDir, false);
  if (dp) {
    const endpoints = new EndpointMap(dp.endpointFd);
    for (const text of new Set<string>([...t.ips, ...leased])) {
      const ip = tryParseIpv4(text);
      if (ip === undefined) continue;
      const id = endpoints.get(ip);
      if (id === undefined) continue;
      if (leased.has(text) || t.identity === undefined || id === t.identity) {
        endpoints.delete(ip);
      }
    }
  }
  await ipamDel(ipamCtx);
  ctx.state.remove(t.containerId, t.ifname);
}

export function teardownOf(s: AttachmentState): Teardown {
  return {
    containerId: s.containerId,
    ifname: s.ifname,
    ips: s.ips,
    identity: s.identity,
    pinDir: s.pinDir,
  };
}

export async function cmdDel(ctx: Ctx): Promise<void> {
  const { env } = ctx;
  const saved = ctx.state.read(env.containerId, env.ifname);
  const t: Teardown = saved
    ? teardownOf(saved)
    : { containerId: env.containerId, ifname: env.ifname, ips: [] };
  // Without a state record (an earlier DEL finished, or ADD never began) there is no
  // endpoint entry of ours to remove: a prevResult address may already be another pod's.
  using host = new NetlinkSocket();
  await teardown(ctx, t, new Links(host));
}
