// GC (cni.dev/valid-attachments): every attachment we recorded that is not in the valid
// list is torn down like a DEL; then leases held by no valid attachment are released and
// their endpoint entries removed.
import { CniError, ErrCode } from "../spec/cni.ts";
import type { Ctx } from "./context.ts";
import { ipamDelCtx } from "./context.ts";
import { endpointStores, teardown, teardownOf } from "./del.ts";
import { ipamGc } from "../ipam/mod.ts";
import { NetlinkSocket } from "../net/socket.ts";
import { Links } from "../net/link.ts";
import { openDatapath } from "./datapath.ts";
import { tryParseIpv4 } from "../spec/ipv4.ts";
import { endConnectionsOf } from "../datapath/tracked.ts";
import { causeChain } from "../spec/cni.ts";
import { log } from "../log.ts";
import { AttachmentLock } from "./lock.ts";
import { ipMasqGc } from "./ipmasq.ts";
import { faultPoint } from "./fault.ts";
import { dropOldGateways } from "./old_gateways.ts";

interface Valid {
  containerId: string;
  ifname: string;
}

export function validAttachments(json: Record<string, unknown>): Valid[] {
  const raw = json["cni.dev/valid-attachments"] ?? json["cni.dev/attachments"] ?? [];
  if (!Array.isArray(raw)) {
    throw new CniError(ErrCode.InvalidConfig, '"cni.dev/valid-attachments" must be a list');
  }
  return raw.map((a, i) => {
    const o = a as Record<string, unknown>;
    if (typeof o?.containerID !== "string" || typeof o?.ifname !== "string") {
      throw new CniError(
        ErrCode.InvalidConfig,
        `"cni.dev/valid-attachments"[${i}] needs string "containerID" and "ifname"`,
      );
    }
    return { containerId: o.containerID, ifname: o.ifname };
  });
}

export async function cmdGc(ctx: Ctx): Promise<void> {
  const valid = validAttachments(ctx.conf.json);
  const key = (a: Valid) => `${a.containerId}\n${a.ifname}`;
  const keep = new Set(valid.map(key));
  const errors: string[] = [];
  // The runtime made its list before it started this process: an attachment added since
  // (its record written after the process started), or being added or removed now (its lock
  // held), is not ours to judge.
  const started = Math.floor(performance.timeOrigin);
  const busy = (containerId: string, ifname: string): boolean => {
    const at = ctx.state.modifiedAt(containerId, ifname);
    if (at === undefined) return false;
    if (at >= started - 1) return true; // mtime granularity: err on the side of keeping
    const lock = AttachmentLock.tryAcquire(ctx.state.dir, containerId, ifname);
    if (lock === undefined) return true;
    lock[Symbol.dispose]();
    return false;
  };
  {
    using host = new NetlinkSocket();
    const links = new Links(host);
    for (const s of ctx.state.list()) {
      if (keep.has(key(s))) continue;
      using lock = AttachmentLock.tryAcquire(ctx.state.dir, s.containerId, s.ifname);
      const at = ctx.state.modifiedAt(s.containerId, s.ifname);
      if (lock === undefined || at === undefined || at >= started - 1) {
        log.info(`gc: ${s.containerId}/${s.ifname} is being added or removed: left alone`);
        continue;
      }
      try {
        await teardown(ctx, teardownOf(s), links);
        lock.discard();
      } catch (err) {
        errors.push(`${s.containerId}/${s.ifname}: ${causeChain(err)}`);
      }
    }
  }
  const d = ipamDelCtx(ctx);
  using dp = openDatapath(ctx.conf.pinDir);
  const stores = dp ? endpointStores(dp) : [];
  const leaving = new Set<number>();
  const released = await ipamGc(
    ctx.conf.name,
    ctx.conf.ipam,
    valid,
    { rawConfig: d.rawConfig, env: d.env },
    (text) => {
      const ip = tryParseIpv4(text);
      if (ip === undefined) return;
      for (const s of stores) s.delete(ip);
      leaving.add(ip);
    },
    busy,
  );
  if (dp && leaving.size > 0) {
    const ended = endConnectionsOf(dp, leaving);
    if (ended > 0) log.info(`gc ended ${ended} tracked connection(s) of released addresses`);
  }
  if (released.length) log.info(`gc released ${released.join(", ")}`);
  if (ctx.conf.ipMasq) {
    // What stays: the valid attachments, and those whose record is still here (being added
    // now: ADD records an attachment before it adds its rules).
    try {
      const n = await ipMasqGc(
        ctx.conf.name,
        [...valid, ...ctx.state.list()],
        () => faultPoint(ctx.rawEnv, "gc-ipmasq-listed"),
      );
      if (n > 0) log.info(`gc removed ${n} ipMasq rule(s)`);
    } catch (err) {
      errors.push(causeChain(err));
    }
  }
  await dropOldGateways(ctx);
  if (errors.length) {
    throw new CniError(
      ErrCode.Internal,
      `GC could not remove ${errors.length} attachment(s)`,
      errors.join("; "),
    );
  }
}
