// Opening what is pinned under the pin directory, one pin at a time and never creating any.
//
// The loader's openPinnedMaps() is all-or-nothing and also refuses a pinned program from another
// build; the CLI must still reach live maps then (after an upgrade, before the next CNI ADD
// reloads the program), and status must say which pin is missing. So each pin is opened here
// on its own and checked against its layout.
import { mapInfo, objGet, type ProgInfo, progInfo } from "../../ffi/bpf.ts";
import { closeFd } from "../../ffi/libc.ts";
import { mapDifferences, pinPath } from "../spec/pinned.ts";
import { Errno, SysError } from "../../ffi/errors.ts";
import {
  BPF_PROG_TYPE_SCHED_CLS,
  CONFIG_MAP,
  type MapSpec,
  MODE_KUBERNETES,
  PROGRAM_PIN,
} from "../datapath/layout.ts";
import { ConfigMap } from "../datapath/maps.ts";
import { CommandError } from "./errors.ts";
import { createHint } from "./usage.ts";
import { errorMessage } from "../spec/text.ts";

export interface PinnedMap extends Disposable {
  spec: MapSpec;
  path: string;
  fd: number;
  id: number;
}

export interface PinnedProgram {
  path: string;
  fd: number;
  info: ProgInfo;
}

function permissionHint(err: unknown): string {
  return err instanceof SysError && (err.errno === Errno.EPERM || err.errno === Errno.EACCES)
    ? " (needs root, or CAP_BPF and read access to the pin)"
    : "";
}

/** Opens the pin at `path`; undefined when nothing is pinned there. */
function openPin(path: string): number | undefined {
  try {
    return objGet(path);
  } catch (err) {
    // ENOTDIR: a path component is a file, so nothing can be pinned below it.
    if (err instanceof SysError && (err.notFound || err.errno === Errno.ENOTDIR)) return undefined;
    const msg = errorMessage(err);
    throw new CommandError(`Cannot open "${path}": ${msg}${permissionHint(err)}`, { cause: err });
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
      throw new CommandError(`"${path}" is not ebpfcni's ${spec.name}: ${diff.join(", ")}`);
    }
    return { spec, path, fd, id: info.id, [Symbol.dispose]: () => closeFd(fd) };
  } catch (err) {
    closeFd(fd);
    if (err instanceof CommandError) throw err;
    throw new CommandError(`Cannot read map "${path}": ${errorMessage(err)}`, { cause: err });
  }
}

/** Opens a map the command needs; its absence fails the command with how to create it. */
export function requireMap(pinDir: string, spec: MapSpec): PinnedMap {
  const map = openMap(pinDir, spec);
  if (map) return map;
  throw new CommandError(`No ${spec.name} pinned under "${pinDir}": ${createHint(pinDir)}`);
}

/** Opens a pinned program; undefined when none is pinned. */
export function openProgram(pinDir: string, pin = PROGRAM_PIN): PinnedProgram | undefined {
  const path = pinPath(pinDir, pin);
  const fd = openPin(path);
  if (fd === undefined) return undefined;
  let info: ProgInfo;
  try {
    info = progInfo(fd);
  } catch (err) {
    closeFd(fd);
    throw new CommandError(`Cannot read program "${path}": ${errorMessage(err)}`, {
      cause: err,
    });
  }
  // A map pinned under the program's name reads as garbage program info; its type tells.
  if (info.type !== BPF_PROG_TYPE_SCHED_CLS) {
    closeFd(fd);
    throw new CommandError(`"${path}" is not ebpfcni's tc program (type ${info.type})`);
  }
  return { path, fd, info };
}

export function closePin(p: { fd: number } | undefined): void {
  if (p) closeFd(p.fd);
}

/** Refuses to write policy entries of a pin directory in kubernetes mode: the agent owns
 * them there, and would undo (or be confused by) what an operator writes by hand. */
export function requireIdentityMode(pinDir: string, what: string): void {
  using config = openMap(pinDir, CONFIG_MAP);
  if (!config) return;
  if (new ConfigMap(config.fd).get().mode === MODE_KUBERNETES) {
    throw new CommandError(
      `Cannot ${what}: "${pinDir}" is in kubernetes mode, where the policy agent owns the ` +
        `entries (write NetworkPolicies instead; "ebpfcni agent status" shows the agent)`,
    );
  }
}
