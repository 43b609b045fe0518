// Gets the datapath into the kernel once per node and reuses it: the maps and the program
// are pinned under a pin directory; later calls open the pins instead of loading again,
// and never replace a pinned map (that would wipe live policy).
import {
  BpfObject,
  closeFd,
  mapInfo,
  objGet,
  objPin,
  progInfo,
  setLibbpfLog,
} from "../../ffi/libbpf.ts";
import { SysError } from "../../ffi/errors.ts";
import {
  closeFd as closeRaw,
  flock,
  LOCK_EX,
  O_CLOEXEC,
  O_DIRECTORY,
  openFd,
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

export { DEFAULT_PIN_DIR };
import { log } from "../log.ts";

/** Open fds of the pinned datapath. Close it when done; the pins stay. */
export interface Datapath {
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

setLibbpfLog((level, msg) => {
  if (level === 0) log.warn(`libbpf: ${msg}`);
  else log.debug(`libbpf: ${msg}`);
});

function pinPath(pinDir: string, name: string): string {
  return `${pinDir}/${name}`;
}

function tryObjGet(path: string): number | undefined {
  try {
    return objGet(path);
  } catch (err) {
    if (err instanceof SysError && err.notFound) return undefined;
    throw err;
  }
}

function checkMap(fd: number, spec: MapSpec, path: string): number {
  const info = mapInfo(fd);
  if (
    info.type !== spec.type || info.keySize !== spec.keySize ||
    info.valueSize !== spec.valueSize || info.maxEntries !== spec.maxEntries
  ) {
    throw new DatapathError(
      `Pinned map "${path}" does not match ${spec.name}: type ${info.type}, key ${info.keySize}, ` +
        `value ${info.valueSize}, max ${info.maxEntries}; expected type ${spec.type}, key ` +
        `${spec.keySize}, value ${spec.valueSize}, max ${spec.maxEntries}`,
    );
  }
  return info.id;
}

/** Opens the pinned program and maps if they are all there and belong together and the
 * program is the embedded one; otherwise undefined (and nothing left open). */
function openPinned(pinDir: string, justLoaded = false): Datapath | undefined {
  const fds: number[] = [];
  const closeAll = () => fds.forEach((fd) => closeFd(fd));
  try {
    const open = (name: string) => {
      const fd = tryObjGet(pinPath(pinDir, name));
      if (fd !== undefined) fds.push(fd);
      return fd;
    };
    const progFd = open(PROGRAM_PIN);
    const endpointFd = open(ENDPOINT_MAP.name);
    const policyFd = open(POLICY_MAP.name);
    const statsFd = open(STATS_MAP.name);
    if (
      progFd === undefined || endpointFd === undefined || policyFd === undefined ||
      statsFd === undefined
    ) {
      closeAll();
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
      closeAll();
      return undefined;
    }
    return {
      pinDir,
      progFd,
      progId: prog.id,
      endpointFd,
      policyFd,
      statsFd,
      loaded: false,
      close: closeAll,
    };
  } catch (err) {
    closeAll();
    throw err;
  }
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
    closeRaw(fd); // closing drops the lock
  }
}

function loadAndPin(pinDir: string): Datapath {
  const obj = BpfObject.openMem(gen.objectBytes(), gen.OBJECT_NAME);
  try {
    for (const spec of [ENDPOINT_MAP, POLICY_MAP, STATS_MAP]) {
      obj.setMapPinPath(spec.name, pinPath(pinDir, spec.name));
    }
    obj.load();
    const progPath = pinPath(pinDir, PROGRAM_PIN);
    try {
      Deno.removeSync(progPath);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    const progFd = obj.programFd(gen.PROGRAM_PROCESS_TC);
    objPin(progFd, progPath);
    // Reopen through the pins so the returned fds outlive the object.
    const dp = openPinned(pinDir, true);
    if (!dp) throw new DatapathError(`Pins under "${pinDir}" vanished right after loading`);
    return { ...dp, loaded: true };
  } finally {
    obj.close();
  }
}

/** Opens the pinned datapath under `pinDir`, loading and pinning it first if needed. */
export function ensureDatapath(pinDir = DEFAULT_PIN_DIR): Datapath {
  try {
    const fast = openPinned(pinDir);
    if (fast) return fast;
    ensureDir(pinDir);
    return withDirLock(pinDir, () => openPinned(pinDir) ?? loadAndPin(pinDir));
  } catch (err) {
    if (err instanceof DatapathError) throw err;
    throw new DatapathError(`Cannot load the datapath into "${pinDir}": ${hint(err)}`, {
      cause: err,
    });
  }
}

/** Opens the pinned maps only (for the CLI), without loading anything. */
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
