// The CNI_* environment: which variables each command needs and what their values may be,
// following libcni's pkg/skel and pkg/utils so the plugin rejects what a Go plugin would.

import { CniError, ErrCode } from "./errors.ts";

/** The commands of spec 1.1.0. */
export const COMMANDS = ["ADD", "DEL", "CHECK", "STATUS", "GC", "VERSION"] as const;
export type Command = typeof COMMANDS[number];

/**
 * The validated environment. Variables a command does not need are not validated and come back
 * as "" (so is CNI_NETNS for a DEL without one): runtimes fill them with placeholders or leave
 * them out for VERSION, STATUS and GC.
 */
export interface CniEnv {
  command: Command;
  containerId: string;
  netns: string;
  ifname: string;
  /** CNI_ARGS unparsed; see args.ts. */
  args: string;
  /** CNI_PATH split on ":", empty entries dropped. */
  path: string[];
}

type Var = "CNI_CONTAINERID" | "CNI_NETNS" | "CNI_IFNAME" | "CNI_PATH";

/** The variables each command requires, in skel's order (error messages list them so). */
const REQUIRED: Record<Command, readonly Var[]> = {
  ADD: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"],
  CHECK: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"],
  DEL: ["CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"],
  STATUS: [],
  GC: [],
  VERSION: [],
};

/** Commands that act on one attachment and so use the container, netns and interface. */
const ATTACHMENT_COMMANDS: readonly Command[] = ["ADD", "DEL", "CHECK"];

/** libcni's rule for container IDs and network names. */
const ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$/;
const ID_RULE =
  'must start with a letter or digit and contain only letters, digits, "_", "." and "-"';

/** Linux IFNAMSIZ minus the terminating NUL. */
export const MAX_IFNAME_BYTES = 15;

/** Linux NAME_MAX: the network name names a directory in the lease and state stores. */
export const NAME_MAX = 255;

/**
 * The longest container ID (IDs are ASCII): it names the attachment's state file,
 * "<id>_<ifname>.json", written through "<id>_<ifname>.json.tmp", which must fit NAME_MAX.
 */
export const MAX_CONTAINER_ID = NAME_MAX - "_".length - MAX_IFNAME_BYTES - ".json.tmp".length;

/**
 * Quotes a value for an error message: JSON string syntax (so control characters cannot forge
 * log lines) and cut to `max` characters, since env and config values can be arbitrarily long.
 */
export function quote(value: string, max = 64): string {
  if (value.length <= max) return JSON.stringify(value);
  return `${JSON.stringify(value.slice(0, max))}... (${value.length} characters)`;
}

/**
 * Describes a JSON value for a type error: numbers and booleans quoted bare ("-5"), strings
 * marked as such so `"1500"` and `1500` read differently, containers by kind only.
 */
export function describeValue(value: unknown): string {
  if (typeof value === "string") return `the string ${quote(value)}`;
  if (typeof value === "number" || typeof value === "boolean") return quote(String(value));
  if (value === null) return "null";
  if (value === undefined) return "nothing";
  return Array.isArray(value) ? "an array" : "an object";
}

function isCommand(s: string): s is Command {
  return (COMMANDS as readonly string[]).includes(s);
}

/**
 * Reads and validates the CNI_* variables for the command in CNI_COMMAND. Missing (unset or
 * empty, as skel treats them) required variables are reported together, code 4.
 */
export function parseEnv(env: Record<string, string | undefined>): CniEnv {
  const command = env.CNI_COMMAND ?? "";
  if (command === "") {
    throw new CniError(ErrCode.InvalidEnv, "Required environment variables missing: CNI_COMMAND");
  }
  if (!isCommand(command)) {
    throw new CniError(
      ErrCode.InvalidEnv,
      `Unknown CNI_COMMAND ${quote(command)}: expected one of ${COMMANDS.join(", ")}`,
    );
  }
  const missing = REQUIRED[command].filter((name) => (env[name] ?? "") === "");
  if (missing.length > 0) {
    throw new CniError(
      ErrCode.InvalidEnv,
      `Required environment variables missing: ${missing.join(", ")}`,
    );
  }

  const out: CniEnv = {
    command,
    containerId: "",
    netns: "",
    ifname: "",
    args: env.CNI_ARGS ?? "",
    path: (env.CNI_PATH ?? "").split(":").filter((p) => p !== ""),
  };
  if (!ATTACHMENT_COMMANDS.includes(command)) return out;

  out.containerId = validateContainerId(env.CNI_CONTAINERID ?? "");
  out.ifname = validateIfName(env.CNI_IFNAME ?? "", "CNI_IFNAME");
  const netns = env.CNI_NETNS ?? "";
  if (netns !== "") out.netns = validateNetnsPath(netns);
  return out;
}

/** Throws code 4 unless `id` is a valid container ID; returns it. */
export function validateContainerId(id: string): string {
  if (!ID_RE.test(id)) {
    throw new CniError(ErrCode.InvalidEnv, `Invalid CNI_CONTAINERID ${quote(id)}: ${ID_RULE}`);
  }
  if (id.length > MAX_CONTAINER_ID) {
    throw new CniError(
      ErrCode.InvalidEnv,
      `Invalid CNI_CONTAINERID ${quote(id)}: must be at most ${MAX_CONTAINER_ID} characters long`,
    );
  }
  return id;
}

/** Throws code 7 unless `name` is a valid network name (libcni's ValidateNetworkName); returns it. */
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
 * Throws unless `name` is a valid interface name; returns it. `field` names the source in the
 * message ("CNI_IFNAME"); `code` is 4 for the environment, 7 for config fields such as bridge.
 */
export function validateIfName(
  name: string,
  field: string,
  code: number = ErrCode.InvalidEnv,
): string {
  const problem = ifNameProblem(name);
  if (problem !== undefined) {
    throw new CniError(code, `Invalid ${field} ${quote(name)}: ${problem}`);
  }
  return name;
}

/** Linux PATH_MAX, the terminating NUL included. */
export const PATH_MAX = 4096;

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

/**
 * Throws code 4 unless `netns` is an absolute path without NUL; returns it. Whether it names a
 * network namespace is for the netns code to find out, with the syscalls that needs.
 */
export function validateNetnsPath(netns: string): string {
  if (!netns.startsWith("/")) {
    throw new CniError(
      ErrCode.InvalidEnv,
      `Invalid CNI_NETNS ${quote(netns)}: must be an absolute path`,
    );
  }
  if (netns.includes("\0")) {
    throw new CniError(
      ErrCode.InvalidEnv,
      `Invalid CNI_NETNS ${quote(netns)}: must not contain NUL`,
    );
  }
  return netns;
}
