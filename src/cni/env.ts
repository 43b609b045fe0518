// The CNI_* environment: which variables each command needs and what their values may be,
// following libcni's pkg/skel and pkg/utils so the plugin rejects what a Go plugin would.

import { CniError, ErrCode } from "../spec/cni.ts";
import { ID_RE, ID_RULE, ifNameProblem, MAX_CONTAINER_ID } from "../spec/name_rules.ts";
import { quote } from "../spec/text.ts";

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
  /** CNI_ARGS unparsed; see cni_args.ts. */
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
