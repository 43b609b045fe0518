// Gets the datapath into the kernel once per node and reuses it: the maps and the program
// are pinned under a pin directory; later calls open the pins instead of loading again,
// and never replace a pinned map (that would wipe live policy). Only a load needs libbpf;
// opening the pins is raw bpf(2).
import { BpfObject, requireLibbpf } from "../../ffi/libbpf.ts";
import { mapInfo, objGet, objPin, progInfo } from "../../ffi/bpf.ts";
import { SysError } from "../../ffi/errors.ts";
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
import * as gen from "./bpf_object.gen.ts";
import {
  DEFAULT_PIN_DIR,
  ENDPOINT_MAP,
  type MapSpec,
  POLICY_MAP,
  PROGRAM_PIN,
  STATS_MAP,
} from "./layout.ts";
import { mapDifferences, pinPath } from "../spec/pinned.ts";
import { log } from "../log.ts";

export { DEFAULT_PIN_DIR };

/** Open fds of the pinned datapath. Dispose of it when done (`using`); the pins stay. */
export interface Datapath extends Disposable {
  pinDir: string;
  progFd: number;
  progId: number;
  endpointFd: number;
  policyFd: number;
  statsFd: number;
  /** True when this call loaded the object (no usable pinned program was there). */
  loaded: boolean;
  close(): void;
}

/** The datapath could not be loaded, pinned or opened; the message says what to do. */
export class DatapathError extends Error {
  override name = "DatapathError";
}

function tryObjGet(path: string): number | undefined {
  try {
    return objGet(path);
  } catch (err) {
    if (err instanceof SysError && err.notFound) return undefined;
    throw err;
  }
}

/** The map's id, after checking it is the map `spec` describes. */
function checkMap(fd: number, spec: MapSpec, path: string): number {
  const info = mapInfo(fd);
  const diff = mapDifferences(spec, info);
  if (diff.length > 0) {
    throw new DatapathError(
      `Pinned map "${path}" is not ebpfcni's ${spec.name}: ${diff.join(", ")}`,
    );
  }
  return info.id;
}

/** Fds opened together and closed together, unless handed on with `keep()`. */
class FdSet implements Disposable {
  readonly fds: number[] = [];
  #kept = false;

  add(fd: number | undefined): number | undefined {
    if (fd !== undefined) this.fds.push(fd);
    return fd;
  }

  close(): void {
    for (const fd of this.fds.splice(0)) closeFd(fd);
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
    if (!this.#kept) this.close();
  }
}

/** Opens the pinned program and maps if they are all there and belong together and the
 * program is the embedded one; otherwise undefined (and nothing left open). */
function openPinned(pinDir: string, justLoaded = false): Datapath | undefined {
  using fds = new FdSet();
  const open = (name: string) => fds.add(tryObjGet(pinPath(pinDir, name)));
  const progFd = open(PROGRAM_PIN);
  const endpointFd = open(ENDPOINT_MAP.name);
  const policyFd = open(POLICY_MAP.name);
  const statsFd = open(STATS_MAP.name);
  if (
    progFd === undefined || endpointFd === undefined || policyFd === undefined ||
    statsFd === undefined
  ) {
    return undefined;
  }
  const prog = progInfo(progFd);
  const ids = [
    checkMap(endpointFd, ENDPOINT_MAP, pinPath(pinDir, ENDPOINT_MAP.name)),
    checkMap(policyFd, POLICY_MAP, pinPath(pinDir, POLICY_MAP.name)),
    checkMap(statsFd, STATS_MAP, pinPath(pinDir, STATS_MAP.name)),
  ];
  // A program from another build, or one bound to maps that were re-pinned since, is
  // replaced; the maps themselves are kept.
  const ours = gen.PROGRAM_TAGS.includes(prog.tag);
  if (justLoaded && !ours) {
    // The tag prediction does not hold on this kernel: everything works, but each call
    // will reload the program. Say so rather than fail.
    log.warn(`kernel tag ${prog.tag} of the program just loaded is not the predicted one`);
  }
  if ((!ours && !justLoaded) || !ids.every((id) => prog.mapIds.includes(id))) {
    log.info(`pinned program ${prog.id} (tag ${prog.tag}) is stale; reloading`);
    return undefined;
  }
  const dp: Datapath = {
    pinDir,
    progFd,
    progId: prog.id,
    endpointFd,
    policyFd,
    statsFd,
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
    throw new DatapathError(`Cannot create pin directory "${pinDir}": ${(err as Error).message}`, {
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

function loadAndPin(pinDir: string): Datapath {
  using obj = BpfObject.openMem(gen.objectBytes(), gen.OBJECT_NAME);
  try {
    for (const spec of [ENDPOINT_MAP, POLICY_MAP, STATS_MAP]) {
      obj.setMapPinPath(spec.name, pinPath(pinDir, spec.name));
    }
    obj.load();
  } finally {
    for (const m of obj.messages) log.debug(`libbpf: ${m.text}`);
  }
  const progPath = pinPath(pinDir, PROGRAM_PIN);
  try {
    Deno.removeSync(progPath);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  objPin(obj.programFd(gen.PROGRAM_PROCESS_TC), progPath);
  // Reopen through the pins so the returned fds outlive the object.
  const dp = openPinned(pinDir, true);
  if (!dp) throw new DatapathError(`Pins under "${pinDir}" vanished right after loading`);
  dp.loaded = true; // the same object: its fds are guarded by it
  return dp;
}

/** Opens the pinned datapath under `pinDir`, loading and pinning it first if needed. */
export function ensureDatapath(pinDir = DEFAULT_PIN_DIR): Datapath {
  try {
    const fast = openPinned(pinDir);
    if (fast) return fast;
    requireLibbpf(); // before anything is created: a node without it gets nothing half-made
    ensureDir(pinDir);
    return withDirLock(pinDir, () => openPinned(pinDir) ?? loadAndPin(pinDir));
  } catch (err) {
    if (err instanceof DatapathError) throw err;
    throw new DatapathError(`Cannot load the datapath into "${pinDir}": ${hint(err)}`, {
      cause: err,
    });
  }
}

/** Opens the pinned maps only (for DEL, CHECK and GC), without loading anything. */
export function openPinnedMaps(pinDir = DEFAULT_PIN_DIR): Datapath | undefined {
  return openPinned(pinDir);
}

/** One line saying what failed and, where we can tell, what to do; the libbpf and
 * verifier log stays on the cause (BpfError.log). */
function hint(err: unknown): string {
  const full = err instanceof Error ? err.message : String(err);
  const msg = full.split("\n")[0] ?? full;
  if (err instanceof SysError) {
    if (err.errno === 1 || err.errno === 13) {
      return `${msg} (needs root or CAP_BPF and CAP_NET_ADMIN)`;
    }
    if (/not on BPF FS|pin/.test(full) && (err.errno === 22 || err.errno === 1)) {
      return `${msg} (the pin directory is not on BPF FS: mount -t bpf bpf /sys/fs/bpf)`;
    }
  }
  return msg;
}
