// `ebpfcni status [--json] [--init]`: what is pinned under the pin directory and how full it
// is, the pinned program, the verdict counters, the links with the program attached, and the
// version. Read-only unless --init, which loads and pins the datapath as a CNI ADD would.
import { DatapathError, ensureDatapath } from "../datapath/loader.ts";
import { BpfError, LibraryError } from "../datapath/kernel.ts";
import type { Command, Ctx } from "./command.ts";
import { CommandError, EXIT_FAILED, EXIT_OK } from "./errors.ts";
import { pinDirFs } from "./mounts.ts";
import { collectStatus } from "./status_collect.ts";
import { renderStatus, statusJson, statusTrouble } from "./status_view.ts";

/** Loads and pins the datapath unless it is there (what the first CNI ADD does). */
function init(ctx: Ctx): void {
  const fs = pinDirFs(ctx.pinDir);
  if (!fs.bpffs) {
    const on = fs.mount?.fsType ?? "an unknown filesystem";
    throw new CommandError(
      `Cannot pin under "${ctx.pinDir}": it is on ${on}, not bpffs ` +
        "(mount -t bpf bpf /sys/fs/bpf, or choose a --pin-dir on bpffs)",
    );
  }
  try {
    using dp = ensureDatapath(ctx.pinDir);
    if (dp.loaded) {
      ctx.io.err(`ebpfcni: loaded the datapath and pinned it under "${ctx.pinDir}"\n`);
    }
  } catch (err) {
    if (err instanceof DatapathError || err instanceof LibraryError) {
      // libbpf explains a failed load in warnings over several lines (BpfError.log); the CLI
      // reports one line, with the first warning in it.
      const first = err.message.split("\n")[0] ?? err.message;
      const warning = err.cause instanceof BpfError ? err.cause.log.split("\n")[0] : "";
      const why = warning ? ` (libbpf: ${warning})` : "";
      throw new CommandError(first.charAt(0).toLowerCase() + first.slice(1) + why, { cause: err });
    }
    throw err;
  }
}

export const statusCommand: Command = {
  synopsis: "status [--json] [--init]",
  summary: "mode, pins, map fill levels, programs, counters, attached links, version",
  help: `Shows the pin directory and whether bpffs is mounted there, its mode (config_map), each map
with its entries and fill level, the pinned programs (id, tag, whether they are this build's),
the verdict counters of stats_map, the links whose tc hooks have a program at ebpfcni's place,
and the version.
Exits 1 (after printing) when the maps are not pinned; it never creates anything, unless:

  --init   first load the datapath and pin it under the pin directory if it is not there,
           as the first CNI ADD on a node does: pinned maps are kept (never replaced), a
           pinned program from another build is replaced
  --json   print JSON: {"version", "pinDir", "pinDirExists",
           "bpffs": {"mounted", "mountPoint", "fsType"},
           "mode": {"policyMode", "conntrack", "serviceCIDRs"} or null,
           "maps": [{"name", "pinned", "id", "entries", "maxEntries", "problem"}],
           "program": {"pinned", "id", "tag", "thisBuild", "usesPinnedMaps", "problem"},
           "egressProgram": {...the same},
           "counters": {"pass_non_ipv4", ..., "events_lost"} or null,
           "attached": [{"name", "ifindex", "kind", "hook", "programId", "pinned"}]}
           ("problem" only when something else is pinned under the name; absent
           fields are unknown)`,
  flags: { json: { type: "boolean" }, init: { type: "boolean" } },
  run(ctx, { values }) {
    if (values.init) init(ctx);
    const s = collectStatus(ctx.pinDir);
    ctx.io.out(values.json ? statusJson(s) : renderStatus(s));
    const problem = statusTrouble(s);
    if (problem === undefined) return EXIT_OK;
    ctx.io.err(`ebpfcni: ${problem}\n`);
    return EXIT_FAILED;
  },
};
