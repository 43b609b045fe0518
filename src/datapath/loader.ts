// Gets the datapath into the kernel once per node and reuses it: the maps and the programs
// are pinned under a pin directory; later calls open the pins instead of loading again,
// and never replace a pinned map that holds policy (that would wipe it). Only a load needs
// libbpf; opening the pins is raw bpf(2).
//
// A load over pins of another build (an upgrade, or maps added to an old pin directory)
// keeps every policy map, adds the missing ones, lets the caller fill them (`prepare`, e.g.
// veth_map for pods attached before it existed), pins the new programs and then moves every
// veth still running an older ebpfcni program to them, in place: tc swaps a filter's program
// atomically, and old and new programs share the maps meanwhile.
import { BpfObject, requireLibbpf } from "../../ffi/libbpf.ts";
import { mapInfo, objPin, progFdById, progInfo } from "../../ffi/bpf.ts";
import { Errno, SysError } from "../../ffi/errors.ts";
import {
  closeFd,
  flock,
  guardFd,
  LOCK_EX,
  O_CLOEXEC,
  O_DIRECTORY,
  openFd,
  releaseFd,
} from "../../ffi/libc.ts";
import { embeddedObject } from "./object.ts";
import {
  OBJECT_NAME,
  PROGRAM_PROCESS_TC,
  PROGRAM_PROCESS_TC_EGRESS,
  PROGRAM_PROCESS_TC_TO_NODE,
} from "../spec/bpf_abi.gen.ts";
import {
  BPF_PROG_TYPE_SCHED_CLS,
  DEFAULT_PIN_DIR,
  ENDPOINT_MAP,
  MAPS,
  type MapSpec,
  POLICY_MAP,
  PROGRAM_PIN,
  PROGRAM_PIN_EGRESS,
  PROGRAM_PIN_TO_NODE,
  REPLACEABLE_MAPS,
  STATS_MAP,
} from "../spec/bpf_layout.ts";
import { mapDifferences, pinPath } from "../spec/pinned.ts";
import { NetlinkSocket } from "../net/socket.ts";
import { Links } from "../net/link.ts";
import { attach, attachedProgramId, type TcHook } from "./tc.ts";
import { objGetIfPinned, type PinnedProgram } from "./pins.ts";
import { log } from "../log.ts";
import { errorMessage } from "../spec/text.ts";

export { DEFAULT_PIN_DIR };

export type { PinnedProgram };

/** Open fds of the pinned datapath. Dispose of it when done (`using`); the pins stay. */
export interface Datapath extends Disposable {
  pinDir: string;
  /** The classifier of the tc ingress hook (frames from the pod). */
  ingress: PinnedProgram;
  /** The classifier of the tc egress hook (frames to the pod; kubernetes mode). */
  egress: PinnedProgram;
  /** The classifier of the tc egress hook of the device carrying pod traffic to other nodes
   * (the vxlan device, or the uplink): the egress of this node's pods after DNAT. */
  toNode: PinnedProgram;
  /** fds of every map, by name. */
  maps: ReadonlyMap<string, number>;
  /** The fd of a map of MAPS. */
  fd(spec: MapSpec): number;
  /** The kernel's id of a map of MAPS (it tells two pin directories' maps apart). */
  mapId(spec: MapSpec): number;
  /** Shorthands of the original's pins. */
  progFd: number;
  progId: number;
  endpointFd: number;
  policyFd: number;
  statsFd: number;
  /** True when this call loaded the object (no usable pinned program was there). */
  loaded: boolean;
  close(): void;
}

export interface LoadOptions {
  /** Runs after a load, with the new maps open, before any veth runs the new programs. */
  prepare?: (dp: Datapath) => void;
}

/** The datapath could not be loaded, pinned or opened; the message says what to do. */
export class DatapathError extends Error {
  override name = "DatapathError";
}

interface Hook {
  hook: TcHook;
  /** Attached to pods' veths (else to the node's device towards other nodes). */
  veth: boolean;
  pin: string;
  program: string;
  /** The kernel tags the embedded object's program can have. */
  tags(): readonly string[];
}

const HOOKS: readonly Hook[] = [
  {
    hook: "ingress",
    veth: true,
    pin: PROGRAM_PIN,
    program: PROGRAM_PROCESS_TC,
    tags: () => embeddedObject().PROGRAM_TAGS,
  },
  {
    hook: "egress",
    veth: true,
    pin: PROGRAM_PIN_EGRESS,
    program: PROGRAM_PROCESS_TC_EGRESS,
    tags: () => embeddedObject().PROGRAM_TAGS_EGRESS,
  },
  {
    hook: "egress",
    veth: false,
    pin: PROGRAM_PIN_TO_NODE,
    program: PROGRAM_PROCESS_TC_TO_NODE,
    tags: () => embeddedObject().PROGRAM_TAGS_TO_NODE,
  },
];

/** Why the map pinned at `fd` is not `spec`'s, or undefined when it is. */
function mapProblem(fd: number, spec: MapSpec): { id: number; problem?: string } {
  // A program (or link) pinned under a map's name: its info is not a map's.
  const kind = bpfObjectKind(fd);
  if (kind !== "map") return { id: 0, problem: `it is a BPF ${kind}, not a map` };
  const info = mapInfo(fd);
  const diff = mapDifferences(spec, info);
  return diff.length === 0 ? { id: info.id } : { id: info.id, problem: diff.join(", ") };
}

/** What the bpf fd is ("map", "prog", "link", ...), from its anon inode's name. */
function bpfObjectKind(fd: number): string {
  try {
    const target = Deno.readLinkSync(`/proc/self/fd/${fd}`);
    return target.match(/^anon_inode:bpf[-_](\w+)/)?.[1] ?? target;
  } catch {
    return "map"; // no /proc: let the info call judge
  }
}

/** Fds opened together and closed together, unless handed on with `keep()`. */
class FdSet implements Disposable {
  readonly fds: number[] = [];
  #kept = false;

  add(fd: number | undefined): number | undefined {
    if (fd !== undefined) this.fds.push(fd);
    return fd;
  }

  /** `owner` owns the fds now (closed when it is collected, should it never close them);
   * returns how to close them, once. */
  keep(owner: object): () => void {
    this.#kept = true;
    const fds = [...this.fds];
    fds.forEach((fd) => guardFd(owner, fd, "datapath"));
    let open = true;
    return () => {
      if (!open) return;
      open = false;
      releaseFd(owner);
      fds.forEach((fd) => closeFd(fd));
    };
  }

  [Symbol.dispose](): void {
    if (!this.#kept) { for (const fd of this.fds.splice(0)) closeFd(fd); }
  }
}

/** Opens the pins. Complete (the default): every map and program there, of this build and
 * bound together, else undefined (and nothing left open). Partial: whatever is pinned (for
 * DEL, CHECK and GC on a pin directory an older build made), undefined only when no map is.
 * A pinned policy map of the wrong layout is an error either way: loading over it would
 * wipe policy. */
function openPinned(
  pinDir: string,
  how: { justLoaded?: boolean; partial?: boolean } = {},
): Datapath | undefined {
  const { justLoaded = false, partial = false } = how;
  using fds = new FdSet();
  const maps = new Map<string, number>();
  const ids: number[] = [];
  for (const spec of MAPS) {
    const path = pinPath(pinDir, spec.name);
    const fd = fds.add(objGetIfPinned(path));
    if (fd === undefined) {
      if (partial) continue;
      return undefined;
    }
    const { id, problem } = mapProblem(fd, spec);
    if (problem !== undefined) {
      if (REPLACEABLE_MAPS.has(spec.name) && !justLoaded) {
        if (partial) continue;
        return undefined;
      }
      throw new DatapathError(`Pinned map "${path}" is not ebpfcni's ${spec.name}: ${problem}`);
    }
    maps.set(spec.name, fd);
    ids.push(id);
  }
  if (maps.size === 0) return undefined;
  const progs: PinnedProgram[] = [];
  for (const h of HOOKS) {
    const fd = fds.add(objGetIfPinned(pinPath(pinDir, h.pin)));
    if (fd === undefined) {
      if (!partial) return undefined;
      progs.push({ fd: -1, id: 0 });
      continue;
    }
    const info = progInfo(fd);
    // A program from another build, or one bound to maps that were re-pinned since, is
    // replaced; the maps themselves are kept.
    const ours = h.tags().includes(info.tag);
    if (justLoaded && !ours) {
      // The tag prediction does not hold on this kernel: everything works, but each call
      // will reload the programs. Say so rather than fail.
      log.warn(`kernel tag ${info.tag} of ${h.program} just loaded is not the predicted one`);
    }
    const bound = info.mapIds.every((id) => ids.includes(id));
    if (!partial && ((!ours && !justLoaded) || !bound)) {
      log.info(`pinned ${h.program} ${info.id} (tag ${info.tag}) is stale; reloading`);
      return undefined;
    }
    progs.push({ fd, id: info.id });
  }
  const [ingress, egress, toNode] = progs as [PinnedProgram, PinnedProgram, PinnedProgram];
  const fdOf = (spec: MapSpec) => {
    const fd = maps.get(spec.name);
    if (fd === undefined) {
      throw new DatapathError(`No ${spec.name} is pinned under "${pinDir}" (an older build's)`);
    }
    return fd;
  };
  const dp: Datapath = {
    pinDir,
    ingress,
    egress,
    toNode,
    maps,
    fd: fdOf,
    mapId: (spec) => mapInfo(fdOf(spec)).id,
    progFd: ingress.fd,
    progId: ingress.id,
    endpointFd: maps.get(ENDPOINT_MAP.name) ?? -1,
    policyFd: maps.get(POLICY_MAP.name) ?? -1,
    statsFd: maps.get(STATS_MAP.name) ?? -1,
    loaded: false,
    close: () => close(),
    [Symbol.dispose]: () => close(),
  };
  const close = fds.keep(dp);
  return dp;
}

function ensureDir(pinDir: string): void {
  try {
    Deno.mkdirSync(pinDir, { recursive: true });
  } catch (err) {
    throw new DatapathError(`Cannot create pin directory "${pinDir}": ${errorMessage(err)}`, {
      cause: err,
    });
  }
}

/** Serialises loaders on one node: flock on the pin directory itself. */
function withDirLock<T>(dir: string, fn: () => T): T {
  const fd = openFd(dir, O_CLOEXEC | O_DIRECTORY);
  try {
    flock(fd, LOCK_EX);
    return fn();
  } finally {
    closeFd(fd); // closing drops the lock
  }
}

function unlinkIfPresent(path: string): void {
  try {
    Deno.removeSync(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}

/** Ids of the programs pinned now (before a load replaces them). */
function pinnedProgramIds(pinDir: string): number[] {
  const out: number[] = [];
  for (const h of HOOKS) {
    const fd = objGetIfPinned(pinPath(pinDir, h.pin));
    if (fd === undefined) continue;
    try {
      out.push(progInfo(fd).id);
    } finally {
      closeFd(fd);
    }
  }
  return out;
}

/** Points each map at its pin: an existing compatible map is reused by libbpf, a missing
 * one created and pinned; an incompatible replaceable one is unpinned first. */
function pinMaps(obj: BpfObject, pinDir: string): void {
  for (const spec of MAPS) {
    const path = pinPath(pinDir, spec.name);
    const fd = objGetIfPinned(path);
    if (fd !== undefined) {
      try {
        const { problem } = mapProblem(fd, spec);
        if (problem !== undefined) {
          if (!REPLACEABLE_MAPS.has(spec.name)) {
            throw new DatapathError(
              `Pinned map "${path}" is not ebpfcni's ${spec.name}: ${problem}`,
            );
          }
          log.info(`replacing ${path} (${problem})`);
          unlinkIfPresent(path);
        }
      } finally {
        closeFd(fd);
      }
    }
    obj.setMapPinPath(spec.name, path);
  }
}

/** Is the program with this id one of this pin directory's classifiers (of any build)? One
 * of another pin directory's (another network's) is bound to none of its maps: not ours to
 * move. */
function isOurs(id: number, known: readonly number[], mapIds: ReadonlySet<number>): boolean {
  if (known.includes(id)) return true;
  let fd: number;
  try {
    fd = progFdById(id);
  } catch {
    return false; // gone meanwhile
  }
  try {
    const info = progInfo(fd);
    return info.type === BPF_PROG_TYPE_SCHED_CLS && info.name.startsWith("process_tc") &&
      info.mapIds.some((m) => mapIds.has(m));
  } finally {
    closeFd(fd);
  }
}

/** Moves every veth (and node device) running an older ebpfcni program at our tc place to
 * `dp`'s programs. */
function moveAttached(dp: Datapath, oldIds: readonly number[]): number {
  using nl = new NetlinkSocket();
  let moved = 0;
  const mapIds = new Set([...dp.maps.values()].map((fd) => mapInfo(fd).id));
  for (const link of new Links(nl).list()) {
    const veth = link.kind === "veth";
    for (const h of HOOKS) {
      if (h.veth !== veth) continue;
      const prog = !h.veth ? dp.toNode : h.hook === "ingress" ? dp.ingress : dp.egress;
      let id: number;
      try {
        id = attachedProgramId(nl, link.index, h.hook);
      } catch (err) {
        if (err instanceof SysError && err.notFound) continue; // deleted since the dump
        throw err;
      }
      if (id === 0 || id === prog.id || !isOurs(id, oldIds, mapIds)) continue;
      attach(nl, link.index, h.hook, prog.fd, h.program);
      moved++;
    }
  }
  return moved;
}

function loadAndPin(pinDir: string, opts: LoadOptions): Datapath {
  const oldIds = pinnedProgramIds(pinDir);
  {
    using obj = BpfObject.openMem(embeddedObject().objectBytes(), OBJECT_NAME);
    try {
      pinMaps(obj, pinDir);
      obj.load();
    } finally {
      for (const m of obj.messages) log.debug(`libbpf: ${m.text}`);
    }
    for (const h of HOOKS) {
      const path = pinPath(pinDir, h.pin);
      unlinkIfPresent(path);
      objPin(obj.programFd(h.program), path);
    }
  }
  // Reopen through the pins so the returned fds outlive the object.
  const dp = openPinned(pinDir, { justLoaded: true });
  if (!dp) throw new DatapathError(`Pins under "${pinDir}" vanished right after loading`);
  dp.loaded = true; // the same object: its fds are guarded by it
  try {
    opts.prepare?.(dp);
    const moved = moveAttached(dp, oldIds);
    if (moved > 0) log.info(`moved ${moved} attached hook(s) to the new programs`);
  } catch (err) {
    dp.close();
    throw err;
  }
  return dp;
}

/** Opens the pinned datapath under `pinDir`, loading and pinning it first if needed. */
export function ensureDatapath(pinDir = DEFAULT_PIN_DIR, opts: LoadOptions = {}): Datapath {
  try {
    const fast = openPinned(pinDir);
    if (fast) return fast;
    requireLibbpf(); // before anything is created: a node without it gets nothing half-made
    ensureDir(pinDir);
    return withDirLock(pinDir, () => openPinned(pinDir) ?? loadAndPin(pinDir, opts));
  } catch (err) {
    if (err instanceof DatapathError) throw err;
    throw new DatapathError(`Cannot load the datapath into "${pinDir}": ${hint(err, pinDir)}`, {
      cause: err,
    });
  }
}

/** Opens what is pinned (for DEL, CHECK and GC), without loading anything; undefined when
 * nothing is. Maps an older build did not have are absent from `maps` (`fd()` throws). */
export function openPinnedMaps(pinDir = DEFAULT_PIN_DIR): Datapath | undefined {
  return openPinned(pinDir, { partial: true });
}

/** One line saying what failed and, where we can tell, what to do; the libbpf and
 * verifier log stays on the cause (BpfError.log). */
function hint(err: unknown, pinDir: string): string {
  const full = errorMessage(err);
  const msg = full.split("\n")[0] ?? full;
  if (err instanceof SysError) {
    // bpffs refuses to create or look up any name with a "." in it, to root too (EPERM).
    const dotted = pinDir.split("/").find((c) => c.includes("."));
    if (err.errno === Errno.EPERM && dotted !== undefined) {
      return `${msg} (bpffs refuses names with a ".": "${dotted}" in the pin directory; ` +
        "choose one without)";
    }
    if (err.errno === Errno.EPERM || err.errno === Errno.EACCES) {
      return `${msg} (needs root or CAP_BPF and CAP_NET_ADMIN)`;
    }
    // libbpf's own words (in the log) when the directory is not on bpffs.
    if (/not on BPF FS/.test(full)) {
      return `${msg} (the pin directory is not on BPF FS: mount -t bpf bpf /sys/fs/bpf)`;
    }
    const libbpf = full.split("\n").slice(1).find((l) => /pin/.test(l))?.trim();
    if (libbpf) return `${msg} (libbpf: ${libbpf})`;
  }
  return msg;
}
