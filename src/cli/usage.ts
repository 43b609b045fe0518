// Help texts: the top level, each command group, and each command, built from the command
// tables so the lists cannot drift from what the dispatcher accepts.
import { VERSION } from "../version.ts";
import { DEFAULT_PIN_DIR, PIN_DIR_ENV } from "./args.ts";
import type { Command } from "./command.ts";

const PIN_DIR_HELP =
  `  --pin-dir DIR   where the maps and the program are pinned (default: $${PIN_DIR_ENV},
                  else ${DEFAULT_PIN_DIR})
  -h, --help      show this help`;

/** How to get the maps created, for messages about missing pins. */
export function createHint(pinDir: string): string {
  const flag = pinDir === DEFAULT_PIN_DIR ? "" : ` --pin-dir ${pinDir}`;
  return `run a CNI ADD first or "ebpfcni status --init${flag}"`;
}

/** The closing paragraph of every command that needs the maps. */
export const NEEDS_MAPS =
  `This command never creates the maps: when they are not pinned it fails (exit 1). The first
CNI ADD on the node creates them, or "ebpfcni status --init".`;

function listing(prefix: string, commands: readonly Command[]): string {
  return commands
    .map((c) => `  ${c.synopsis.slice(prefix.length)}\n      ${c.summary}`)
    .join("\n");
}

export function topHelp(
  groups: Record<string, Record<string, Command>>,
  others: Record<string, Command>,
): string {
  const all = [...Object.values(groups).flatMap((g) => Object.values(g)), ...Object.values(others)];
  return `Usage: ebpfcni [--pin-dir DIR] COMMAND [FLAGS]

The operator CLI of ebpfcni ${VERSION}, the eBPF CNI plugin: it edits and shows the pinned
maps, runs the node's NetworkPolicy agent and asks it why a flow is allowed. (With
CNI_COMMAND set, the same binary is the CNI plugin.)

Commands:
${listing("", all)}

Flags accepted by every command:
${PIN_DIR_HELP}
  --version       same as "ebpfcni version"

Identities are integers from 1 to 4294967295; addresses are IPv4 dotted quads.
The endpoint and policy commands need the maps pinned already: the first CNI ADD on the
node creates them, or "ebpfcni status --init". They never create them themselves, so a
mistyped --pin-dir fails instead of creating maps no pod uses; list and status never
create anything.

Exit status: 0 ok; 1 the operation failed; 2 usage error or invalid input (nothing changed).
Run "ebpfcni COMMAND --help" for a command's flags.
`;
}

export function groupHelp(group: string, commands: Record<string, Command>): string {
  return `Usage: ebpfcni ${group} COMMAND [FLAGS]

Commands:
${listing(`${group} `, Object.values(commands))}

${PIN_DIR_HELP}

Run "ebpfcni ${group} COMMAND --help" for a command's flags.
`;
}

export function commandHelp(c: Command, pinDir = true): string {
  return `Usage: ebpfcni ${c.synopsis}

${c.help}

${pinDir ? PIN_DIR_HELP : "  -h, --help   show this help"}
`;
}
