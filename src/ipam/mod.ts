// IPAM façade for the CNI commands: the built-in host-local-compatible allocator
// for `"type": "host-local"`, delegation to the plugin binary for any other type. Every
// function takes the ipam section already parsed (IpamConf, from ipam/ipam_conf.ts).
//
// API
//   ipamPlan(ctx): IpamPlan
//     The config and requested-IP errors of an ADD (7, 101), found without the store; the
//     plan is what ipamAdd then carries out.
//   ipamAdd(ctx, plan?): Promise<IpamResult>
//     One address per range set, written to the store before returning. Idempotent:
//     an attachment (containerId, ifname) that already holds a lease in a range set
//     gets that lease back (host-local instead fails with "duplicate allocation").
//     Errors: 7 bad config, 100 a range set is full, 101 a requested IP is taken,
//     is a gateway or lies outside the ranges, 5 store I/O.
//   ipamDel(ctx): Promise<void>
//     Releases the attachment's leases; succeeds when there are none.
//   ipamLeasedIps(ctx): Promise<string[] | undefined>
//     The addresses the built-in store leases to the attachment.
//   ipamCheck(ctx, expected: IpConfig[]): Promise<void>
//     Code 3 when a range set has no lease for the attachment, 999 when the leases
//     differ from `expected` (the prevResult's IPs; only IPv4 entries are compared).
//   ipamGc(network, conf, validAttachments, delegation?): Promise<string[]>
//     Releases every lease of the built-in store not owned by a valid attachment and
//     returns the released IPs; for a delegated type runs the plugin's GC, returns [].
//   ipamStatus(network, conf, delegation?): Promise<void>
//     Code 50 when the store directory is not usable; delegated types run STATUS.

import { CniError, ErrCode } from "../spec/cni.ts";
import type { Dns, IpamResult, IpConfig } from "../spec/cni.ts";
import { allocate, type Allocation, checkRequested, rangeFor } from "./allocator.ts";
import { formatIpv4, parseIpv4, parseIpv4Prefix, tryParseIpv4 } from "../spec/ipv4.ts";
import {
  awaitsPodCidr,
  formatRangeSet,
  type HostLocalConfig,
  hostLocalConfig,
  type IpamConf,
  parseResolvConf,
  type RangeSet,
} from "./ipam_conf.ts";
import { delegateAdd, delegateCommand } from "./delegate.ts";
import { type Lease, LeaseStore, ownedBy } from "./lease_store.ts";
import { log } from "../log.ts";
import { errorMessage } from "../spec/text.ts";

export interface IpamContext {
  /** Network name from the CNI config; names the store directory. */
  network: string;
  containerId: string;
  ifname: string;
  /** The config's ipam section, parsed. */
  conf: IpamConf;
  /** The whole stdin, passed to a delegated plugin. */
  rawConfig: Uint8Array;
  /** CNI_* variables (CNI_PATH included) for a delegated plugin; CNI_COMMAND is set here. */
  env: Record<string, string>;
  /** Bare IPv4 addresses from CNI_ARGS IP=, args.cni.ips and runtimeConfig.ips, merged and
   * checked by the caller. */
  requestedIps: string[];
}

export type IpamDelContext = Omit<IpamContext, "requestedIps">;

/** What an ADD will allocate: for the built-in store, the parsed ranges and which range set
 * gets which requested address. */
export interface IpamPlan {
  config?: HostLocalConfig;
  requested: (number | undefined)[];
}

export interface Attachment {
  containerId: string;
  ifname: string;
}

/** What GC and STATUS need to run a delegated plugin. */
export interface Delegation {
  rawConfig: Uint8Array;
  env: Record<string, string>;
}

function readResolvConf(path: string): Dns {
  try {
    return parseResolvConf(Deno.readTextFileSync(path));
  } catch (err) {
    const why = errorMessage(err);
    throw new CniError(ErrCode.IoFailure, `Cannot read resolvConf "${path}": ${why}`, "", {
      cause: err,
    });
  }
}

/** A requested address as a u32; "a.b.c.d/n" is accepted like host-local's ip.ParseIP. */
function parseRequested(text: string): number {
  const p = parseIpv4Prefix(text.trim());
  if (p === undefined) {
    throw new CniError(ErrCode.InvalidConfig, `Requested IP address "${text}" is not IPv4`);
  }
  return p.ip;
}

/** Gives each range set at most one requested IP; leftovers are code 101 before anything is written. */
function assignRequested(cfg: HostLocalConfig, requested: string[]): (number | undefined)[] {
  const remaining = [...new Set(requested.map(parseRequested))];
  const assigned = cfg.ranges.map((set) => {
    const i = remaining.findIndex((ip) => rangeFor(set, ip) !== undefined);
    return i < 0 ? undefined : remaining.splice(i, 1)[0];
  });
  if (remaining.length > 0) {
    const list = remaining.map((ip) => `"${formatIpv4(ip)}"`).join(", ");
    const inSome = remaining.some((ip) => cfg.ranges.some((set) => rangeFor(set, ip)));
    throw new CniError(
      ErrCode.AddressUnavailable,
      inSome
        ? `Cannot allocate requested IP addresses ${list}: only one address is allocated per range set`
        : `Requested IP addresses ${list} are not in any range set (${
          cfg.ranges.map(formatRangeSet).join("; ")
        })`,
    );
  }
  return assigned;
}

function toIpConfig(a: Allocation): IpConfig {
  return {
    address: `${formatIpv4(a.ip)}/${a.range.subnet.prefix}`,
    gateway: formatIpv4(a.range.gateway),
  };
}

function leaseIn(set: RangeSet, leases: Lease[]): number | undefined {
  return leases.map((l) => parseIpv4(l.ip)).find((ip) => rangeFor(set, ip) !== undefined);
}

async function allocateFromSet(
  store: LeaseStore,
  ctx: IpamContext,
  set: RangeSet,
  index: number,
  requested: number | undefined,
  leased: Set<number>,
): Promise<Allocation> {
  if (requested !== undefined) {
    const a = checkRequested(set, requested, leased);
    if (!(await store.reserve(formatIpv4(a.ip), ctx.containerId, ctx.ifname, index))) {
      throw new CniError(
        ErrCode.AddressUnavailable,
        `Requested IP address "${formatIpv4(a.ip)}" is already allocated`,
      );
    }
    return a;
  }
  const lastText = await store.lastReservedIp(index);
  const last = lastText === undefined ? undefined : tryParseIpv4(lastText);
  for (;;) {
    const a = allocate(set, leased, last);
    if (await store.reserve(formatIpv4(a.ip), ctx.containerId, ctx.ifname, index)) return a;
    // Taken behind our back (a writer that ignores the lock): skip it and go on.
    leased.add(a.ip);
  }
}

/** Leases outside every range of a "usePodCidr" network: the node's pod CIDR changed under
 * pods still holding addresses of the old one, which other nodes no longer route here. They
 * are not reused (allocation stays in the ranges) and are reported, not dropped: their pods'
 * DEL (or GC) releases them. */
function reportForeignLeases(network: string, cfg: HostLocalConfig, all: Lease[]): void {
  const outside = all.filter((l) => {
    const ip = tryParseIpv4(l.ip);
    return ip !== undefined && !cfg.ranges.some((set) => rangeFor(set, ip) !== undefined);
  }).map((l) => l.ip).sort();
  if (outside.length === 0) return;
  const shown = outside.slice(0, 5).join(", ") + (outside.length > 5 ? ", ..." : "");
  log.warn(
    `Network "${network}" holds ${outside.length} lease(s) outside this node's pod CIDR ` +
      `${cfg.ranges.map(formatRangeSet).join("; ")} (${shown}): the node's pod CIDR changed; ` +
      "their pods keep addresses other nodes no longer route here until they are deleted",
  );
}

async function hostLocalAdd(
  ctx: IpamContext,
  cfg: HostLocalConfig,
  requested: (number | undefined)[],
): Promise<IpamResult> {
  const dns = cfg.resolvConf === undefined ? undefined : readResolvConf(cfg.resolvConf);
  const store = LeaseStore.open(cfg.dataDir, ctx.network);

  const ips = await store.locked(async () => {
    const all = await store.leases();
    if (ctx.conf.builtIn && ctx.conf.podCidr !== undefined) {
      reportForeignLeases(ctx.network, cfg, all);
    }
    const leased = new Set(all.map((l) => parseIpv4(l.ip)));
    const mine = all.filter((l) => ownedBy(l, ctx.containerId, ctx.ifname));
    const reservedNow: string[] = [];
    try {
      const out: IpConfig[] = [];
      for (const [index, set] of cfg.ranges.entries()) {
        const want = requested[index];
        const held = leaseIn(set, mine);
        if (held !== undefined) {
          if (want !== undefined && want !== held) {
            throw new CniError(
              ErrCode.AddressUnavailable,
              `Requested IP address "${formatIpv4(want)}" conflicts with "${
                formatIpv4(held)
              }", already leased to container "${ctx.containerId}" interface "${ctx.ifname}"`,
            );
          }
          out.push(toIpConfig({ ip: held, range: rangeFor(set, held)! }));
          continue;
        }
        const a = await allocateFromSet(store, ctx, set, index, want, leased);
        reservedNow.push(formatIpv4(a.ip));
        leased.add(a.ip);
        out.push(toIpConfig(a));
      }
      return out;
    } catch (err) {
      // All or nothing, like host-local: drop what this call reserved.
      for (const ip of reservedNow) {
        try {
          store.releaseByIp(ip);
        } catch {
          // the original error matters more
        }
      }
      throw err;
    }
  });

  const result: IpamResult = { ips, routes: cfg.routes };
  if (dns !== undefined) result.dns = dns;
  return result;
}

/**
 * Finds what ipamAdd would refuse for a bad built-in config or requested IPs (7, 101), without
 * touching the store, so ADD can refuse bad input before it changes the host. Delegated types
 * validate their own config when run.
 */
export function ipamPlan(ctx: IpamContext): IpamPlan {
  if (!ctx.conf.builtIn) return { requested: [] };
  const config = hostLocalConfig(ctx.conf);
  const requested = assignRequested(config, ctx.requestedIps);
  LeaseStore.checkDirs(config.dataDir, ctx.network);
  return { config, requested };
}

/** Allocates (or returns the existing) addresses for the attachment. */
export async function ipamAdd(ctx: IpamContext, plan = ipamPlan(ctx)): Promise<IpamResult> {
  if (!ctx.conf.builtIn || plan.config === undefined) {
    return await delegateAdd(ctx.conf.type, ctx.rawConfig, ctx.env);
  }
  return await hostLocalAdd(ctx, plan.config, plan.requested);
}

/** Releases the attachment's addresses; only dataDir is read so a broken range config cannot block DEL. */
export async function ipamDel(ctx: IpamDelContext): Promise<void> {
  if (!ctx.conf.builtIn) {
    return await delegateCommand(ctx.conf.type, "DEL", ctx.rawConfig, ctx.env);
  }
  const store = LeaseStore.openExisting(ctx.conf.dataDir, ctx.network);
  if (store === undefined) return;
  await store.locked(() => store.releaseByAttachment(ctx.containerId, ctx.ifname));
}

/** The addresses the built-in store leases to the attachment; undefined for a delegated
 * IPAM type, whose leases only that plugin knows. */
export async function ipamLeasedIps(ctx: IpamDelContext): Promise<string[] | undefined> {
  return (await ipamLeases(ctx))?.mine;
}

/** The attachment's leases and the addresses leased to anyone else, from the built-in
 * store; undefined for a delegated IPAM type, whose leases only that plugin knows. */
export async function ipamLeases(
  ctx: IpamDelContext,
): Promise<{ mine: string[]; others: Set<string> } | undefined> {
  if (!ctx.conf.builtIn) return undefined;
  const store = LeaseStore.openExisting(ctx.conf.dataDir, ctx.network);
  if (store === undefined) return { mine: [], others: new Set() };
  return await store.locked(() => {
    const all = store.leases();
    const mine = all.filter((l) => ownedBy(l, ctx.containerId, ctx.ifname)).map((l) => l.ip);
    const others = new Set(
      all.filter((l) => !ownedBy(l, ctx.containerId, ctx.ifname)).map((l) => l.ip),
    );
    return { mine, others };
  });
}

/** Verifies the attachment still holds its leases and that they match `expected`. */
export async function ipamCheck(ctx: IpamDelContext, expected: IpConfig[]): Promise<void> {
  if (!ctx.conf.builtIn) {
    return await delegateCommand(ctx.conf.type, "CHECK", ctx.rawConfig, ctx.env);
  }
  const cfg = hostLocalConfig(ctx.conf);
  const who = `container "${ctx.containerId}" interface "${ctx.ifname}"`;
  const store = LeaseStore.openExisting(cfg.dataDir, ctx.network);
  const mine = store === undefined
    ? []
    : await store.locked(() => store.findByAttachment(ctx.containerId, ctx.ifname));

  const held = new Set<number>();
  for (const set of cfg.ranges) {
    const ip = leaseIn(set, mine);
    if (ip === undefined) {
      throw new CniError(
        ErrCode.UnknownContainer,
        `No address is leased to ${who} in range set ${formatRangeSet(set)}`,
      );
    }
    held.add(ip);
  }

  const want = expected.map((c) => parseIpv4Prefix(c.address)).filter((e) => e !== undefined);
  if (want.length === 0) return;
  const differs = (why: string) =>
    new CniError(ErrCode.Internal, `Addresses leased to ${who} differ from the result: ${why}`);
  for (const e of want) {
    const set = cfg.ranges.find((s) => rangeFor(s, e.ip) !== undefined);
    const text = formatIpv4(e.ip);
    if (set === undefined) throw differs(`${text} is not in any range set`);
    if (!held.has(e.ip)) throw differs(`${text} is not leased`);
    const prefix = rangeFor(set, e.ip)!.subnet.prefix;
    if (e.prefix !== prefix) throw differs(`${text}/${e.prefix} should have prefix /${prefix}`);
  }
  for (const ip of held) {
    if (!want.some((e) => e.ip === ip)) throw differs(`leased ${formatIpv4(ip)} is missing`);
  }
}

function needDelegation(what: string, type: string, d: Delegation | undefined): Delegation {
  if (d === undefined) {
    throw new CniError(
      ErrCode.Internal,
      `${what} of IPAM plugin "${type}" needs the raw network config and environment`,
    );
  }
  return d;
}

/** Releases leases of the built-in store not owned by one of `validAttachments`; returns their IPs. */
export async function ipamGc(
  network: string,
  conf: IpamConf,
  validAttachments: Attachment[],
  delegation?: Delegation,
  /** Called for each released IP while the store is still locked, so what the caller undoes
   * for it cannot race an ADD that leases the IP next. */
  onReleased: (ip: string) => void = () => {},
  /** An attachment being added or removed right now (or since the list was made): its
   * lease stays. */
  busy: (containerId: string, ifname: string) => boolean = () => false,
): Promise<string[]> {
  if (!conf.builtIn) {
    const d = needDelegation("GC", conf.type, delegation);
    await delegateCommand(conf.type, "GC", d.rawConfig, d.env);
    return [];
  }
  const store = LeaseStore.openExisting(conf.dataDir, network);
  if (store === undefined) return [];
  const valid = new Set(validAttachments.map((a) => `${a.containerId.trim()}\n${a.ifname}`));
  const validIds = new Set(validAttachments.map((a) => a.containerId.trim()));
  return await store.locked(async () => {
    const released: string[] = [];
    for (const l of await store.leases()) {
      // A legacy lease names no interface: keep it while its container has any attachment.
      const keep = l.ifname === undefined
        ? validIds.has(l.containerId)
        : valid.has(`${l.containerId}\n${l.ifname}`);
      if (keep || (l.ifname !== undefined && busy(l.containerId, l.ifname))) continue;
      if (await store.releaseByIp(l.ip)) {
        released.push(l.ip);
        onReleased(l.ip);
      }
    }
    return released;
  });
}

/** Code 50 unless the store directory can be created, locked and written. */
export async function ipamStatus(
  network: string,
  conf: IpamConf,
  delegation?: Delegation,
): Promise<void> {
  if (!conf.builtIn) {
    const d = needDelegation("STATUS", conf.type, delegation);
    return await delegateCommand(conf.type, "STATUS", d.rawConfig, d.env);
  }
  // STATUS needs no pod CIDR: the store is the same whatever the node's CIDR is.
  if (!awaitsPodCidr(conf)) hostLocalConfig(conf);
  try {
    const store = LeaseStore.open(conf.dataDir, network);
    await store.locked(() => store.probeWritable());
  } catch (err) {
    // An unusable (5) or refused (7: one others could write into) directory alike.
    const refused = err instanceof CniError &&
      (err.code === ErrCode.IoFailure || err.code === ErrCode.InvalidConfig);
    if (!refused) throw err;
    throw new CniError(
      ErrCode.PluginNotAvailable,
      `IPAM store for network "${network}" is not usable: ${err.message}`,
      "",
      { cause: err },
    );
  }
}
