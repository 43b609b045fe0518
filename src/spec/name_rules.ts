// The rules for names and paths the plugin turns into kernel objects and files: container IDs
// and network names (libcni's), interface names (the kernel's dev_valid_name), and directories
// the plugin creates and writes in. One place, so CNI, IPAM and the CLI cannot disagree.
import { CniError, ErrCode } from "./cni.ts";
import { quote } from "./text.ts";

/** libcni's rule for container IDs and network names. */
export const ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$/;
export const ID_RULE =
  'must start with a letter or digit and contain only letters, digits, "_", "." and "-"';

/** Linux IFNAMSIZ minus the terminating NUL. */
export const MAX_IFNAME_BYTES = 15;

/** Linux NAME_MAX: the network name names a directory in the lease and state stores. */
export const NAME_MAX = 255;

/** Linux PATH_MAX, the terminating NUL included. */
export const PATH_MAX = 4096;

/**
 * The longest container ID (IDs are ASCII): it names the attachment's state file,
 * "<id>_<ifname>.json", written through "<id>_<ifname>.json.tmp", which must fit NAME_MAX.
 */
export const MAX_CONTAINER_ID = NAME_MAX - "_".length - MAX_IFNAME_BYTES - ".json.tmp".length;

/** Throws code 7 unless `name` is a valid network name (libcni's ValidateNetworkName); returns
 * it. A valid name is also a safe single path component (no "/", no ".."). */
export function validateNetworkName(name: string): string {
  if (name === "") {
    throw new CniError(ErrCode.InvalidConfig, "Invalid network name: must not be empty");
  }
  if (!ID_RE.test(name)) {
    throw new CniError(ErrCode.InvalidConfig, `Invalid network name ${quote(name)}: ${ID_RULE}`);
  }
  if (name.length > NAME_MAX) {
    throw new CniError(
      ErrCode.InvalidConfig,
      `Invalid network name ${quote(name)}: must be at most ${NAME_MAX} characters long`,
    );
  }
  // Stricter than libcni: the name is a directory of the lease and state stores.
  if (name.includes("..")) {
    throw new CniError(
      ErrCode.InvalidConfig,
      `Invalid network name ${quote(name)}: must not contain ".." (it names directories)`,
    );
  }
  return name;
}

/**
 * Which of the kernel's interface name rules `name` breaks (libcni's ValidateInterfaceName,
 * which mirrors dev_valid_name), or undefined when it is valid.
 */
export function ifNameProblem(name: string): string | undefined {
  if (name === "") return "must not be empty";
  if (new TextEncoder().encode(name).length > MAX_IFNAME_BYTES) {
    return `must be at most ${MAX_IFNAME_BYTES} bytes long`;
  }
  if (name === "." || name === "..") return 'must not be "." or ".."';
  // \s covers the Unicode spaces Go's unicode.IsSpace does; NUL would truncate the name in netlink.
  if (/[/:\s\0]/u.test(name)) return 'must not contain "/", ":", whitespace or NUL';
  return undefined;
}

/**
 * Why `path` cannot be a directory the plugin creates and writes in (pinDir, stateDir, the
 * IPAM dataDir), or undefined: it must be absolute (a relative one would land wherever the
 * runtime runs the plugin from), without ".." segments (no escaping the intended tree) or NUL,
 * and fit the kernel's PATH_MAX and NAME_MAX.
 */
export function dirPathProblem(path: string): string | undefined {
  if (!path.startsWith("/")) return "not absolute";
  if (path.includes("\0")) return "contains NUL";
  const parts = path.split("/");
  if (parts.includes("..")) return 'has a ".." segment';
  const bytes = (s: string) => new TextEncoder().encode(s).length;
  if (bytes(path) >= PATH_MAX) return `longer than ${PATH_MAX - 1} bytes`;
  if (parts.some((p) => bytes(p) > NAME_MAX)) {
    return `has a component longer than ${NAME_MAX} bytes`;
  }
  return undefined;
}
