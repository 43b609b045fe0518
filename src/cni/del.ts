// DEL: best effort and idempotent. Removes the endpoint entries, the host veth (which takes
// the container end with it) and the per-attachment state, and releases the lease, whether
// or not the netns or the links still exist. A second DEL, or a DEL after a failed ADD,
// finds nothing to do and succeeds.
import type { Ctx } from "./context.ts";
import { ipamDelCtx } from "./context.ts";
import { ipamDel, ipamLeases } from "../ipam/mod.ts";
import { openDatapath } from "./datapath.ts";
import { EndpointMap, IpcacheMap, VethMap } from "../datapath/maps.ts";
import { ENDPOINT_MAP, IPCACHE_MAP, VETH_MAP } from "../spec/bpf_layout.ts";
import type { Datapath } from "../datapath/loader.ts";
import { NetlinkSocket } from "../net/socket.ts";
import { Links } from "../net/link.ts";
import type { LinkTable } from "../net/link_table.ts";
import { hostVethName } from "../net/veth_names.ts";
import { tryParseIpv4 } from "../spec/ipv4.ts";
import { endConnectionsOf } from "../datapath/tracked.ts";
import { type AttachmentState, StateStore } from "../node/attachment_store.ts";
import { agentForget } from "./agent_client.ts";
import { faultPoint } from "./fault.ts";
import { ipMasqDel } from "./ipmasq.ts";
import { dropOldGateways } from "./old_gateways.ts";
import { log } from "../log.ts";
import { errorMessage } from "../spec/text.ts";

export interface Teardown {
  containerId: string;
  ifname: string;
  /** Addresses to unregister; from the state record and the prevResult. */
  ips: string[];
  identity?: number;
  /** Where ADD registered the endpoint (the config's pinDir may have changed since). */
  pinDir?: string;
  /** The host veth's ifindex when ADD got that far. */
  hostIfindex?: number;
  /** ADD masqueraded the pod. */
  ipMasq?: boolean;
}

/** Undoes one attachment on the host. Shared by DEL and GC. */
export async function teardown(ctx: Ctx, t: Teardown, links: LinkTable): Promise<void> {
  using dp = openDatapath(t.pinDir ?? ctx.conf.pinDir);
  const veth = hostVethName(t.containerId, t.ifname);
  const link = links.get(veth);
  if (dp?.maps.has(VETH_MAP.name)) {
    // The veth's registration: its index, or the recorded one if no link has that any more.
    const veths = new VethMap(dp.fd(VETH_MAP));
    if (link) veths.delete(link.index);
    else if (t.hostIfindex !== undefined && !links.byIndex(t.hostIfindex)) {
      veths.delete(t.hostIfindex);
    }
  }
  if (link && links.delete(veth)) log.info(`deleted ${veth}`);
  // A failure here (libnftables missing, a transient error) must not keep the lease: the
  // rest goes on, and the error is reported at the end.
  let masqError: unknown;
  if (t.ipMasq || ctx.conf.ipMasq) {
    try {
      const n = await ipMasqDel(ctx.conf.name, t.containerId, t.ifname);
      if (n > 0) log.info(`removed ${n} ipMasq rule(s)`);
    } catch (err) {
      // Without a record saying ADD added rules there may be none: a DEL after the state is
      // gone succeeds.
      if (t.ipMasq) masqError = err;
      else log.warn(`ipMasq rules not checked: ${errorMessage(err)}`);
    }
  }

  const ipamCtx = ipamDelCtx(ctx, t.containerId, t.ifname);
  // An address the lease store still gives this attachment is ours to unregister, whatever
  // identity an operator gave it since. One only recorded goes only if nobody leases it now
  // and it still holds this pod's identity: after a DEL that died between releasing and
  // forgetting, the address may be another pod's (with the same identity, even). A delegated
  // IPAM plugin's leases are unknown: there, another attachment's record naming the address
  // on this pin dir is what says it has moved on.
  const leases = await ipamLeases(ipamCtx);
  const mine = new Set(leases?.mine ?? []);
  let recorded = t.identity === undefined
    ? []
    : t.ips.filter((ip) => !mine.has(ip) && !leases?.others.has(ip));
  if (recorded.length > 0) {
    const pinDir = t.pinDir ?? ctx.conf.pinDir;
    const taken = new Set(
      StateStore.all(ctx.conf.stateDir)
        .filter((s) =>
          s.pinDir === pinDir && !(s.containerId === t.containerId && s.ifname === t.ifname)
        )
        .flatMap((s) => s.ips),
    );
    recorded = recorded.filter((ip) => !taken.has(ip));
  }
  if (dp) {
    const stores = endpointStores(dp);
    const leaving = new Set<number>();
    for (const text of new Set([...mine, ...recorded])) {
      const ip = tryParseIpv4(text);
      if (ip === undefined) continue;
      // An address another identity holds now is another pod's, and so are its connections.
      let ours = true;
      for (const store of stores) {
        const id = store.get(ip);
        if (id !== undefined && (mine.has(text) || id === t.identity)) store.delete(ip);
        else if (id !== undefined) ours = false;
      }
      if (ours) leaving.add(ip);
    }
    // After the entries: a packet of the pod still in flight finds no identity, so it
    // cannot record a connection again.
    const ended = endConnectionsOf(dp, leaving);
    if (ended > 0) log.info(`ended ${ended} tracked connection(s) of the pod's addresses`);
  }
  await ipamDel(ipamCtx);
  await faultPoint(ctx.rawEnv, "del-after-release");
  if (masqError !== undefined) {
    // The record stays with only the rules left to remove, so a retry does just that (and
    // no address: those are released and may be another pod's by then).
    const saved = ctx.state.read(t.containerId, t.ifname);
    if (saved) {
      const { hostIfindex: _, ...rest } = saved;
      ctx.state.write({ ...rest, ips: [], ipMasq: true });
    }
    throw masqError;
  }
  ctx.state.remove(t.containerId, t.ifname);
}

/** The maps that hold pod address -> identity entries, whichever are pinned. */
export function endpointStores(
  dp: Datapath,
): { get(ip: number): number | undefined; delete(ip: number): void }[] {
  const out = [];
  if (dp.maps.has(ENDPOINT_MAP.name)) out.push(new EndpointMap(dp.fd(ENDPOINT_MAP)));
  if (dp.maps.has(IPCACHE_MAP.name)) {
    const m = new IpcacheMap(dp.fd(IPCACHE_MAP));
    out.push({ get: (ip: number) => m.get(ip)?.identity, delete: (ip: number) => m.delete(ip) });
  }
  return out;
}

export function teardownOf(s: AttachmentState): Teardown {
  return {
    containerId: s.containerId,
    ifname: s.ifname,
    ips: s.ips,
    identity: s.identity,
    pinDir: s.pinDir,
    ...(s.hostIfindex !== undefined ? { hostIfindex: s.hostIfindex } : {}),
    ...(s.ipMasq ? { ipMasq: true } : {}),
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
  await dropOldGateways(ctx);
  if (ctx.conf.datapath.mode === "kubernetes") {
    // Best effort: the agent also finds out from its source, and DEL must not need it.
    const problem = await agentForget(ctx.conf.agentSocket, {
      op: "del",
      ...(saved?.podNamespace !== undefined ? { namespace: saved.podNamespace } : {}),
      ...(saved?.podName !== undefined ? { name: saved.podName } : {}),
      containerId: env.containerId,
      ifname: env.ifname,
      ips: t.ips,
    });
    if (problem !== undefined) log.info(`DEL did not reach the agent: ${problem}`);
  }
}
