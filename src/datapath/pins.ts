// Opening what is pinned under the pin directory, one pin at a time and never creating any: the
// one pin opener of the loader (loader.ts) and the CLI.
//
// The loader's openPinnedMaps() is all-or-nothing and also refuses a pinned program from another
// build; the CLI must still reach live maps then (after an upgrade, before the next CNI ADD
// reloads the program), and status must say which pin is missing. So each pin is opened here
// on its own and checked against its layout; a pin that is there but not ours, or unreadable,
// is a PinError (the CLI reports it as a failed command).
import { mapInfo, objGet, type ProgInfo, progInfo } from "../../ffi/bpf.ts";
import { closeFd } from "../../ffi/libc.ts";
import { mapDifferences, pinPath } from "../spec/pinned.ts";
import { Errno, SysError } from "../../ffi/errors.ts";
import { errorMessage } from "../spec/text.ts";
import { BPF_PROG_TYPE_SCHED_CLS, type MapSpec, PROGRAM_PIN } from "../spec/bpf_layout.ts";

/** A pin that is there but cannot be used: not ebpfcni's, or unreadable. */
export class PinError extends Error {
  override name = "PinError";
}

export interface PinnedMap extends Disposable {
  spec: MapSpec;
  path: string;
  fd: number;
  id: number;
}

/** A pinned tc program, open. */
export interface PinnedProgram {
  fd: number;
  id: number;
}

/** A pinned program opened on its own, with what the kernel says of it. */
export interface PinnedProgramInfo extends PinnedProgram {
  path: string;
  info: ProgInfo;
}

function permissionHint(err: unknown): string {
  return err instanceof SysError && (err.errno === Errno.EPERM || err.errno === Errno.EACCES)
    ? " (needs root, or CAP_BPF and read access to the pin)"
    : "";
}

/** Opens the pin at `path`; undefined when nothing is pinned there. Other failures are the
 * kernel's (SysError). */
export function objGetIfPinned(path: string): number | undefined {
  try {
    return objGet(path);
  } catch (err) {
    if (err instanceof SysError && err.notFound) return undefined;
    throw err;
  }
}

/** Opens the pin at `path`; undefined when nothing is pinned there. */
function openPin(path: string): number | undefined {
  try {
    return objGetIfPinned(path);
  } catch (err) {
    // ENOTDIR: a path component is a file, so nothing can be pinned below it.
    if (err instanceof SysError && (err.notFound || err.errno === Errno.ENOTDIR)) return undefined;
    throw new PinError(`Cannot open "${path}": ${errorMessage(err)}${permissionHint(err)}`, {
      cause: err,
    });
  }
}

/** Opens one pinned map, checking it is ours; undefined when it is not pinned. */
export function openMap(pinDir: string, spec: MapSpec): PinnedMap | undefined {
  const path = pinPath(pinDir, spec.name);
  const fd = openPin(path);
  if (fd === undefined) return undefined;
  try {
    const info = mapInfo(fd);
    const diff = mapDifferences(spec, info);
    if (diff.length > 0) {
      throw new PinError(`"${path}" is not ebpfcni's ${spec.name}: ${diff.join(", ")}`);
    }
    return { spec, path, fd, id: info.id, [Symbol.dispose]: () => closeFd(fd) };
  } catch (err) {
    closeFd(fd);
    if (err instanceof PinError) throw err;
    throw new PinError(`Cannot read map "${path}": ${errorMessage(err)}`, { cause: err });
  }
}

/** Opens a pinned program; undefined when none is pinned. */
export function openProgram(pinDir: string, pin = PROGRAM_PIN): PinnedProgramInfo | undefined {
  const path = pinPath(pinDir, pin);
  const fd = openPin(path);
  if (fd === undefined) return undefined;
  let info: ProgInfo;
  try {
    info = progInfo(fd);
  } catch (err) {
    closeFd(fd);
    throw new PinError(`Cannot read program "${path}": ${errorMessage(err)}`, {
      cause: err,
    });
  }
  // A map pinned under the program's name reads as garbage program info; its type tells.
  if (info.type !== BPF_PROG_TYPE_SCHED_CLS) {
    closeFd(fd);
    throw new PinError(`"${path}" is not ebpfcni's tc program (type ${info.type})`);
  }
  return { path, fd, id: info.id, info };
}

export function closePin(p: { fd: number } | undefined): void {
  if (p) closeFd(p.fd);
}
