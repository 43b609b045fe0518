// Gathers the status report from what is pinned and attached, opening each pin on its own
// and never creating anything.
import { ENDPOINT_MAP, type MapSpec, POLICY_MAP, STATS_MAP } from "../datapath/layout.ts";
import { readStats } from "../datapath/maps.ts";
import { PROGRAM_TAGS } from "../datapath/bpf_object.gen.ts";
import { attachedProgramId } from "../datapath/tc.ts";
import { Links } from "../net/link.ts";
import { NetlinkSocket } from "../net/socket.ts";
import { SysError } from "../../ffi/errors.ts";
import { VERSION } from "../version.ts";
import { countEntries } from "../datapath/maps.ts";
import { CommandError } from "./errors.ts";
import { pinDirFs } from "./mounts.ts";
import { closePin, openMap, openProgram, type PinnedMap, type PinnedProgram } from "./pins.ts";
import type { AttachedLink, MapStatus, ProgramStatus, Status } from "./status_view.ts";

/** Runs `open`, turning a CommandError (wrong layout, unreadable) into a problem to report. */
function tryOpen<T>(open: () => T | undefined): { pin?: T; problem?: string } {
  try {
    const pin = open();
    return pin === undefined ? {} : { pin };
  } catch (err) {
    if (err instanceof CommandError) return { problem: err.message };
    throw err;
  }
}

function mapStatus(spec: MapSpec, opened: { pin?: PinnedMap; problem?: string }): MapStatus {
  const { pin, problem } = opened;
  if (problem !== undefined) {
    return { name: spec.name, pinned: true, maxEntries: spec.maxEntries, problem };
  }
  if (!pin) return { name: spec.name, pinned: false, maxEntries: spec.maxEntries };
  // stats_map is an array: every slot always exists.
  const entries = spec === STATS_MAP ? spec.maxEntries : countEntries(pin.fd, spec);
  return { name: spec.name, pinned: true, id: pin.id, entries, maxEntries: spec.maxEntries };
}

/** Links with a program at our tc place (handle and priority) on their ingress hook
 * (NetlinkSocket.dump retries a dump that links racing by interrupted). */
function attachedLinks(progId: number | undefined): AttachedLink[] {
  using nl = new NetlinkSocket();
  const out: AttachedLink[] = [];
  for (const link of new Links(nl).list()) {
    let id: number;
    try {
      id = attachedProgramId(nl, link.index, "ingress");
    } catch (err) {
      if (err instanceof SysError && err.notFound) continue; // deleted since the dump
      throw err;
    }
    if (id === 0) continue;
    out.push({
      name: link.name,
      ifindex: link.index,
      kind: link.kind,
      programId: id,
      pinned: id === progId,
    });
  }
  return out.sort((a, b) => a.ifindex - b.ifindex);
}

function countersJson(c: Record<string, bigint>): Record<string, number> {
  return Object.fromEntries(Object.entries(c).map(([k, v]) => [k, Number(v)]));
}

/** Collects the status; never creates anything. */
export function collectStatus(pinDir: string): Status {
  const fs = pinDirFs(pinDir);
  const specs = [ENDPOINT_MAP, POLICY_MAP, STATS_MAP];
  const opened: { pin?: PinnedMap; problem?: string }[] = [];
  let prog: { pin?: PinnedProgram; problem?: string } = {};
  try {
    for (const spec of specs) opened.push(tryOpen(() => openMap(pinDir, spec)));
    prog = tryOpen(() => openProgram(pinDir));
    const maps = specs.map((spec, i) => mapStatus(spec, opened[i] ?? {}));
    const ids = opened.map((o) => o.pin?.id);
    const info = prog.pin?.info;
    const program: ProgramStatus = info
      ? {
        pinned: true,
        id: info.id,
        tag: info.tag,
        thisBuild: PROGRAM_TAGS.includes(info.tag),
        usesPinnedMaps: ids.every((id) => id !== undefined && info.mapIds.includes(id)),
      }
      : prog.problem !== undefined
      ? { pinned: true, problem: prog.problem }
      : { pinned: false };
    const stats = opened[2]?.pin;
    return {
      version: VERSION,
      pinDir,
      pinDirExists: fs.exists,
      bpffs: {
        mounted: fs.bpffs,
        mountPoint: fs.mount?.mountPoint ?? null,
        fsType: fs.mount?.fsType ?? null,
      },
      maps,
      program,
      counters: stats ? countersJson(readStats(stats.fd)) : null,
      attached: attachedLinks(info?.id),
    };
  } finally {
    opened.forEach((o) => closePin(o.pin));
    closePin(prog.pin);
  }
}
