// Gathers the status report from what is pinned and attached, opening each pin on its own
// and never creating anything.
import {
  CFG_CONNTRACK,
  CONFIG_MAP,
  holdsEntries,
  MAPS,
  type MapSpec,
  PROGRAM_PIN,
  PROGRAM_PIN_EGRESS,
  STATS_MAP,
} from "../spec/bpf_layout.ts";
import { ConfigMap, readStats } from "../datapath/maps.ts";
import { describeServiceCidrs, modeName } from "../datapath/config_plan.ts";
import { embeddedObject } from "../datapath/object.ts";
import { attachedProgramId } from "../datapath/tc.ts";
import { Links } from "../net/link.ts";
import { NetlinkSocket } from "../net/socket.ts";
import { SysError } from "../datapath/kernel.ts";
import { VERSION } from "../version.ts";
import { countEntries } from "../datapath/maps.ts";
import { CommandError } from "./errors.ts";
import { pinDirFs } from "./mounts.ts";
import {
  closePin,
  openMap,
  openProgram,
  PinError,
  type PinnedMap,
  type PinnedProgramInfo,
} from "../datapath/pins.ts";
import type { AttachedLink, MapStatus, ProgramStatus, Status } from "./status_view.ts";

/** Runs `open`, turning a PinError (wrong layout, unreadable) into a problem to report. */
function tryOpen<T>(open: () => T | undefined): { pin?: T; problem?: string } {
  try {
    const pin = open();
    return pin === undefined ? {} : { pin };
  } catch (err) {
    if (err instanceof PinError || err instanceof CommandError) return { problem: err.message };
    throw err;
  }
}

function mapStatus(spec: MapSpec, opened: { pin?: PinnedMap; problem?: string }): MapStatus {
  const { pin, problem } = opened;
  if (problem !== undefined) {
    return { name: spec.name, pinned: true, maxEntries: spec.maxEntries, problem };
  }
  if (!pin) return { name: spec.name, pinned: false, maxEntries: spec.maxEntries };
  const entries = holdsEntries(spec) ? countEntries(pin.fd, spec) : spec.maxEntries;
  return { name: spec.name, pinned: true, id: pin.id, entries, maxEntries: spec.maxEntries };
}

/** Links with a program at our tc place (handle and priority) on either hook
 * (NetlinkSocket.dump retries a dump that links racing by interrupted). */
function attachedLinks(
  progIds: { ingress: number | undefined; egress: number | undefined },
): AttachedLink[] {
  using nl = new NetlinkSocket();
  const out: AttachedLink[] = [];
  for (const link of new Links(nl).list()) {
    for (const hook of ["ingress", "egress"] as const) {
      let id: number;
      try {
        id = attachedProgramId(nl, link.index, hook);
      } catch (err) {
        if (err instanceof SysError && err.notFound) break; // deleted since the dump
        throw err;
      }
      if (id === 0) continue;
      out.push({
        name: link.name,
        ifindex: link.index,
        kind: link.kind,
        hook,
        programId: id,
        pinned: id === progIds[hook],
      });
    }
  }
  return out.sort((a, b) => a.ifindex - b.ifindex || a.hook.localeCompare(b.hook));
}

function countersJson(c: Record<string, bigint>): Record<string, number> {
  return Object.fromEntries(Object.entries(c).map(([k, v]) => [k, Number(v)]));
}

function programStatus(
  opened: { pin?: PinnedProgramInfo; problem?: string },
  tags: readonly string[],
  ids: (number | undefined)[],
): ProgramStatus {
  const info = opened.pin?.info;
  if (info) {
    return {
      pinned: true,
      id: info.id,
      tag: info.tag,
      thisBuild: tags.includes(info.tag),
      usesPinnedMaps: info.mapIds.every((id) => ids.includes(id)),
    };
  }
  return opened.problem !== undefined
    ? { pinned: true, problem: opened.problem }
    : { pinned: false };
}

/** Collects the status; never creates anything. */
export function collectStatus(pinDir: string): Status {
  const fs = pinDirFs(pinDir);
  const opened: { pin?: PinnedMap; problem?: string }[] = [];
  let ingress: { pin?: PinnedProgramInfo; problem?: string } = {};
  let egress: { pin?: PinnedProgramInfo; problem?: string } = {};
  try {
    for (const spec of MAPS) opened.push(tryOpen(() => openMap(pinDir, spec)));
    ingress = tryOpen(() => openProgram(pinDir, PROGRAM_PIN));
    egress = tryOpen(() => openProgram(pinDir, PROGRAM_PIN_EGRESS));
    const maps = MAPS.map((spec, i) => mapStatus(spec, opened[i] ?? {}));
    const ids = opened.map((o) => o.pin?.id);
    const pinOf = (spec: MapSpec) => opened[MAPS.indexOf(spec)]?.pin;
    const stats = pinOf(STATS_MAP);
    const config = pinOf(CONFIG_MAP);
    const cfg = config ? new ConfigMap(config.fd).get() : undefined;
    return {
      version: VERSION,
      pinDir,
      pinDirExists: fs.exists,
      bpffs: {
        mounted: fs.bpffs,
        mountPoint: fs.mount?.mountPoint ?? null,
        fsType: fs.mount?.fsType ?? null,
      },
      mode: cfg
        ? {
          policyMode: modeName(cfg.mode),
          conntrack: (cfg.flags & CFG_CONNTRACK) !== 0,
          serviceCIDRs: describeServiceCidrs(cfg),
        }
        : null,
      maps,
      program: programStatus(ingress, embeddedObject().PROGRAM_TAGS, ids),
      egressProgram: programStatus(egress, embeddedObject().PROGRAM_TAGS_EGRESS, ids),
      counters: stats ? countersJson(readStats(stats.fd)) : null,
      attached: attachedLinks({ ingress: ingress.pin?.info.id, egress: egress.pin?.info.id }),
    };
  } finally {
    opened.forEach((o) => closePin(o.pin));
    closePin(ingress.pin);
    closePin(egress.pin);
  }
}
