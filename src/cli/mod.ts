// The operator CLI (ebpfcni without CNI_COMMAND): finds the command in the arguments, handles
// help and the global flags, runs it, and turns failures into one stderr line and an exit
// status (0 ok, 1 failed, 2 usage error).
import { LibraryError } from "../datapath/kernel.ts";
import { PinError } from "../datapath/pins.ts";
import { log } from "../log.ts";
import { VERSION } from "../version.ts";
import { parseFlags, resolvePinDir, takeLeadingOptions, wantsHelp } from "./args.ts";
import type { Command } from "./command.ts";
import { endpointCommands } from "./endpoint.ts";
import { CommandError, EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError } from "./errors.ts";
import { type Io, processIo } from "./io.ts";
import { policyCommands } from "./policy.ts";
import { agentCommands } from "./agent.ts";
import { explainCommand } from "./policy_explain.ts";
import { cidrCommands } from "./cidr.ts";
import { ctCommands } from "./ct.ts";
import { masqueradeCommands } from "./masquerade.ts";
import { monitorCommand } from "./monitor.ts";
import { statusCommand } from "./status.ts";
import { commandHelp, groupHelp, topHelp } from "./usage.ts";
import { errorMessage } from "../spec/text.ts";

const versionCommand: Command = {
  synopsis: "version",
  summary: "print the version (also --version)",
  help: "Prints the version of ebpfcni.",
  flags: {},
  run(ctx) {
    ctx.io.out(`ebpfcni ${VERSION}\n`);
    return EXIT_OK;
  },
};

const GROUPS: Record<string, Record<string, Command>> = {
  endpoint: endpointCommands,
  policy: { ...policyCommands, explain: explainCommand },
  agent: agentCommands,
  cidr: cidrCommands,
  ct: ctCommands,
  masquerade: masqueradeCommands,
};
const COMMANDS: Record<string, Command> = {
  status: statusCommand,
  monitor: monitorCommand,
  version: versionCommand,
};

const GLOBAL_FLAGS = {
  "pin-dir": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

function expected(names: string[]): string {
  return names.length < 2
    ? names.join("")
    : `${names.slice(0, -1).join(", ")} or ${names[names.length - 1]}`;
}

function lookup(table: Record<string, Command>, name: string): Command | undefined {
  return Object.hasOwn(table, name) ? table[name] : undefined;
}

async function runCommand(
  name: string,
  c: Command,
  args: string[],
  pinDirFlag: string | undefined,
  env: Record<string, string>,
  io: Io,
): Promise<number> {
  const usesPinDir = c !== versionCommand;
  if (wantsHelp(args)) {
    io.out(commandHelp(c, usesPinDir));
    return EXIT_OK;
  }
  const parsed = parseFlags(args, { ...c.flags, ...GLOBAL_FLAGS }, name, c.positionals);
  const flag = parsed.values["pin-dir"];
  if (typeof flag === "string" && pinDirFlag !== undefined) {
    throw new UsageError("Flag --pin-dir given twice");
  }
  const pinDir = usesPinDir ? resolvePinDir(typeof flag === "string" ? flag : pinDirFlag, env) : "";
  return await c.run({ pinDir, io, env }, parsed);
}

async function dispatch(args: string[], env: Record<string, string>, io: Io): Promise<number> {
  const top = takeLeadingOptions(args, true);
  if (top.help) {
    io.out(topHelp(GROUPS, COMMANDS));
    return EXIT_OK;
  }
  if (top.version) return await runCommand("version", versionCommand, [], undefined, env, io);
  const [word, ...rest] = top.rest;
  if (word === undefined) throw new UsageError("Missing command (see ebpfcni --help)");
  const group = Object.hasOwn(GROUPS, word) ? GROUPS[word] : undefined;
  if (group === undefined) {
    const c = lookup(COMMANDS, word);
    if (c === undefined) {
      const names = [...Object.keys(GROUPS), ...Object.keys(COMMANDS)];
      throw new UsageError(`Unknown command ${JSON.stringify(word)}: expected ${expected(names)}`);
    }
    return await runCommand(word, c, rest, top.pinDir, env, io);
  }
  const inner = takeLeadingOptions(rest, false);
  if (inner.pinDir !== undefined && top.pinDir !== undefined) {
    throw new UsageError("Flag --pin-dir given twice");
  }
  const [sub, ...leafArgs] = inner.rest;
  const names = expected(Object.keys(group));
  if (inner.help) {
    io.out(groupHelp(word, group));
    return EXIT_OK;
  }
  if (sub === undefined) throw new UsageError(`Missing ${word} command: expected ${names}`);
  const c = lookup(group, sub);
  if (c === undefined) {
    throw new UsageError(`Unknown ${word} command ${JSON.stringify(sub)}: expected ${names}`);
  }
  return await runCommand(`${word} ${sub}`, c, leafArgs, top.pinDir ?? inner.pinDir, env, io);
}

/** The failure as one line: messages from the kernel layer may carry a verifier log. */
function firstLine(err: unknown): string {
  const msg = errorMessage(err);
  return msg.split("\n")[0] ?? msg;
}

/** Runs the CLI with `io` (tests pass their own). */
export async function run(args: string[], env: Record<string, string>, io: Io): Promise<number> {
  try {
    return await dispatch(args, env, io);
  } catch (err) {
    io.err(`ebpfcni: ${firstLine(err)}\n`);
    if (err instanceof UsageError) return EXIT_USAGE;
    if (!(err instanceof CommandError || err instanceof PinError || err instanceof LibraryError)) {
      // Unexpected: the full error and its causes go to the debug log.
      log.debug(err instanceof Error ? (err.stack ?? err.message) : String(err));
    }
    return EXIT_FAILED;
  }
}

export function runCli(args: string[], env: Record<string, string>): Promise<number> {
  return run(args, env, processIo);
}
