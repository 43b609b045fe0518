// `ebpfcni policy allow|deny|list|import`: the {src, dst} identity pairs policy_map allows
// (what policyctl did; allow and deny print the whole table afterwards, as policyctl did).
// Writes need the map pinned already; they never load the datapath.
import { MapFullError, type Policy, PolicyMap } from "../datapath/maps.ts";
import { POLICY_MAP } from "../datapath/layout.ts";
import { parsePolicyFile, planPolicyImport } from "../policy/import.ts";
import { formatRecordsJson, policyRecords } from "../policy/records.ts";
import { type ParsedFlags, parseIdentity, requireFlag } from "./args.ts";
import type { Command, Ctx } from "./command.ts";
import { countEntries } from "../datapath/maps.ts";
import { CommandError, EXIT_OK } from "./errors.ts";
import { readSource, sourceName, validateSource, writeChunked } from "./import_file.ts";
import { closePin, type PinnedMap, requireMap } from "./pins.ts";
import { renderTable } from "./table.ts";
import { NEEDS_MAPS } from "./usage.ts";

function withPolicies<T>(ctx: Ctx, fn: (m: PolicyMap, pin: PinnedMap) => T): T {
  const pin = requireMap(ctx.pinDir, POLICY_MAP);
  try {
    return fn(new PolicyMap(pin.fd), pin);
  } finally {
    closePin(pin);
  }
}

function renderPolicies(entries: readonly Policy[], json: boolean): string {
  const records = policyRecords(entries);
  if (json) return formatRecordsJson(records);
  return renderTable(
    [{ header: "SRC", align: "right" }, { header: "DST", align: "right" }],
    records.map((r) => [String(r.src), String(r.dst)]),
  );
}

/** The pairs a --src/--dst[/--symmetric] command line names: one, or both directions. */
function pairs(values: ParsedFlags["values"], synopsis: string): Policy[] {
  const srcText = requireFlag(values, "src", synopsis);
  const dstText = requireFlag(values, "dst", synopsis);
  const src = parseIdentity(srcText, "--src identity");
  const dst = parseIdentity(dstText, "--dst identity");
  const out = [{ src, dst }];
  if (values.symmetric && src !== dst) out.push({ src: dst, dst: src });
  return out;
}

const PAIR_FLAGS = {
  src: { type: "string" },
  dst: { type: "string" },
  symmetric: { type: "boolean" },
  json: { type: "boolean" },
} as const;

const PAIR_HELP = `  --src ID      source identity, an integer from 1 to 4294967295
  --dst ID      destination identity, same range
  --symmetric   also the reverse direction (there is no connection tracking: a reply needs
                its own rule)
  --json        print the table as JSON (as "policy list --json")`;

const allow: Command = {
  synopsis: "policy allow --src ID --dst ID [--symmetric] [--json]",
  summary: "allow traffic from identity --src to --dst, then print the policy table",
  help: `Adds the allow entry {src, dst} to policy_map (already allowed is fine), then prints the
whole policy table. With --symmetric both directions are allowed, or neither if the map
fills up on the second.

${PAIR_HELP}

${NEEDS_MAPS}`,
  flags: PAIR_FLAGS,
  run(ctx, { values }) {
    const want = pairs(values, allow.synopsis);
    const table = withPolicies(ctx, (m) => {
      const added: Policy[] = [];
      for (const p of want) {
        if (m.allowed(p.src, p.dst)) continue;
        try {
          m.allow(p.src, p.dst);
          added.push(p);
        } catch (err) {
          for (const a of added) m.deny(a.src, a.dst);
          if (err instanceof MapFullError) {
            throw new CommandError(`${err.message}: cannot allow ${p.src} -> ${p.dst}`, {
              cause: err,
            });
          }
          throw err;
        }
      }
      return m.list();
    });
    ctx.io.out(renderPolicies(table, values.json === true));
    return EXIT_OK;
  },
};

const deny: Command = {
  synopsis: "policy deny --src ID --dst ID [--symmetric] [--json]",
  summary: "remove the allow entry (default deny), then print the policy table",
  help: `Deletes the allow entry {src, dst} from policy_map, so that traffic is dropped again
(policy is default deny), then prints the whole policy table. A pair that was not allowed
is not an error (a note goes to stderr). With --symmetric both directions are removed.

${PAIR_HELP}

${NEEDS_MAPS}`,
  flags: PAIR_FLAGS,
  run(ctx, { values }) {
    const want = pairs(values, deny.synopsis);
    const table = withPolicies(ctx, (m) => {
      for (const p of want) {
        if (!m.deny(p.src, p.dst)) ctx.io.err(`ebpfcni: ${p.src} -> ${p.dst} was not allowed\n`);
      }
      return m.list();
    });
    ctx.io.out(renderPolicies(table, values.json === true));
    return EXIT_OK;
  },
};

const list: Command = {
  synopsis: "policy list [--json]",
  summary: "list allowed identity pairs",
  help: `Prints the allow entries of policy_map sorted by src, then dst: a table with SRC and DST
columns, or with --json an array with one object per line, the format "policy import" reads:
  [
    {"src":1001,"dst":1002}
  ]

  --json   print JSON instead of a table

Fails (exit 1) without creating anything when policy_map is not pinned.`,
  flags: { json: { type: "boolean" } },
  run(ctx, { values }) {
    ctx.io.out(renderPolicies(withPolicies(ctx, (m) => m.list()), values.json === true));
    return EXIT_OK;
  },
};

const importCmd: Command = {
  synopsis: "policy import FILE",
  summary: 'bulk-allow identity pairs from "policy list --json" output (FILE or - for stdin)',
  help: `Allows every {"src","dst"} entry of FILE ("-" reads stdin), the format "policy list --json"
prints. Entries already allowed, and entries not in the file, are left alone. Does not print
the table; prints a one-line summary.

The whole file is checked first: malformed JSON, an identity that is not an integer from 1
to 4294967295, or an unknown key rejects it (exit 2) naming the entry's index and value.
A file that would take policy_map past ${POLICY_MAP.maxEntries} entries is rejected (exit 1).
Either way nothing is changed.

${NEEDS_MAPS}`,
  flags: {},
  positionals: { min: 1, max: 1, names: "FILE (a path, or - for stdin)" },
  async run(ctx, { positionals }) {
    const path = positionals[0] ?? "-";
    const text = await readSource(path, ctx.io);
    const file = validateSource("policy", path, text, parsePolicyFile);
    const plan = withPolicies(ctx, (m, pin) => {
      const entries = countEntries(pin.fd, POLICY_MAP);
      const p = planPolicyImport(m.list(), entries, file.entries, POLICY_MAP.maxEntries);
      if (!p.fits) {
        throw new CommandError(
          `policy file ${sourceName(path)} would overflow policy_map: ${entries} entries + ` +
            `${p.added.length} new > ${POLICY_MAP.maxEntries}; nothing changed`,
        );
      }
      try {
        writeChunked(p.write, (chunk) => m.allowMany(chunk), (tried) => {
          for (const e of tried) m.deny(e.src, e.dst);
        });
      } catch (err) {
        if (err instanceof MapFullError) {
          throw new CommandError(
            `${err.message}: cannot import ${sourceName(path)}; nothing changed`,
            {
              cause: err,
            },
          );
        }
        throw err;
      }
      return p;
    });
    ctx.io.out(
      `imported ${file.entries.length} policies (${plan.added.length} new, ${plan.unchanged} already allowed)\n`,
    );
    return EXIT_OK;
  },
};

export const policyCommands: Record<string, Command> = {
  allow,
  deny,
  list,
  import: importCmd,
};
