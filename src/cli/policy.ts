// `ebpfcni policy allow|deny|list|import`: identity mode's rules. An identity pair allowed
// for all traffic is the original policy_map entry (what policyctl wrote); a pair allowed for
// a protocol and port range is a set of rule_map keys. allow and deny print what changed (the
// whole table with --show, which is what policyctl always printed: at 60,000 entries that
// is most of the command's cost). Writes need the maps pinned already and refuse a pin
// directory in kubernetes mode; they never load the datapath.
import {
  countEntries,
  MapFullError,
  type Policy,
  PolicyMap,
  readPairStats,
  RuleMap,
} from "../datapath/maps.ts";
import { PAIR_STATS_MAP, POLICY_MAP, RULE_MAP, type RuleKey } from "../spec/bpf_layout.ts";
import { parsePolicyFile, planPolicyImport } from "../identity_mode/import_plan.ts";
import { formatRecordsJson, ruleRecords } from "../identity_mode/map_records.ts";
import {
  denyPlan,
  identityText,
  keysOf,
  type PolicyRule,
  portsText,
  rulesOf,
  ruleText,
} from "../identity_mode/pair_rules.ts";
import {
  IPPROTO,
  parsePortRange,
  parseProtocol,
  PROTOCOL_NAMES,
  protocolName,
} from "../spec/rule_key.ts";
import {
  type FlagSpecs,
  FlagValueError,
  type FlagValues,
  type ParsedFlags,
  parsePeer,
  requireFlag,
} from "./args.ts";
import { type Command, command, type Ctx } from "./command.ts";
import { CommandError, EXIT_OK, UsageError } from "./errors.ts";
import { readSource, sourceName, validateSource, writeChunked } from "./import_file.ts";
import { openMap } from "../datapath/pins.ts";
import { requireIdentityMode, requireMap } from "./pin_require.ts";
import { renderTable } from "./text_table.ts";
import { NEEDS_MAPS } from "./usage.ts";

/** The rules a --src/--dst[/--proto/--port][/--symmetric] command line names. */
function rulesOfFlags(values: FlagValues<typeof PAIR_FLAGS>, synopsis: string): PolicyRule[] {
  const src = requireFlag(values, "src", synopsis);
  const dst = requireFlag(values, "dst", synopsis);
  const base: PolicyRule = { src, dst };
  if (values.proto !== undefined) base.proto = values.proto;
  if (values.port !== undefined) {
    if (base.proto === undefined) throw new UsageError("--port needs --proto tcp, udp or sctp");
    if (base.proto === IPPROTO.icmp) throw new UsageError("--port cannot go with --proto icmp");
    base.ports = values.port;
  }
  const out = [base];
  if (values.symmetric && src !== dst) out.push({ ...base, src: dst, dst: src });
  return out;
}

interface PolicyMaps {
  pairs: PolicyMap;
  /** Absent in a pin directory of the original's build: only pairs there. */
  rules?: RuleMap;
}

function withPolicyMaps<T>(ctx: Ctx, fn: (m: PolicyMaps) => T): T {
  using pairs = requireMap(ctx.pinDir, POLICY_MAP);
  using rules = openMap(ctx.pinDir, RULE_MAP);
  return fn(
    rules ? { pairs: new PolicyMap(pairs.fd), rules: new RuleMap(rules.fd) } : {
      pairs: new PolicyMap(pairs.fd),
    },
  );
}

function requireRules(m: PolicyMaps, ctx: Ctx): RuleMap {
  if (!m.rules) {
    throw new CommandError(
      `No rule_map pinned under "${ctx.pinDir}" (an older build's pins): run a CNI ADD or ` +
        `"ebpfcni status --init" to add it`,
    );
  }
  return m.rules;
}

/** The identity pair of a rule (policy_map's key). */
function pairOf(r: { src: number; dst: number }): Policy {
  return { src: r.src, dst: r.dst };
}

function ruleKeys(rules: RuleMap): RuleKey[] {
  return rules.list().map(([k]) => k);
}

function currentRules(m: PolicyMaps): PolicyRule[] {
  return rulesOf(m.pairs.pairs(), m.rules ? ruleKeys(m.rules) : []);
}

interface Counted {
  packets: bigint;
  bytes: bigint;
}

function renderRules(rules: readonly PolicyRule[], json: boolean, stats?: Map<string, Counted>) {
  const pairKey = (r: PolicyRule) => `${r.src}/${r.dst}`;
  if (json) {
    const records = ruleRecords(rules);
    if (!stats) return formatRecordsJson(records);
    return formatRecordsJson(records.map((rec, i) => {
      const c = stats.get(pairKey(rules[i]!));
      return { ...rec, packets: Number(c?.packets ?? 0n), bytes: Number(c?.bytes ?? 0n) };
    }));
  }
  const l4 = rules.some((r) => r.proto !== undefined);
  const columns = [
    { header: "SRC", align: "right" as const },
    { header: "DST", align: "right" as const },
    ...(l4 ? [{ header: "PROTO" }, { header: "PORTS" }] : []),
    ...(stats
      ? [{ header: "PACKETS", align: "right" as const }, {
        header: "BYTES",
        align: "right" as const,
      }]
      : []),
  ];
  return renderTable(
    columns,
    rules.map((r) => {
      const c = stats?.get(pairKey(r));
      return [
        identityText(r.src),
        identityText(r.dst),
        ...(l4 ? [r.proto === undefined ? "any" : protocolName(r.proto), portsText(r.ports)] : []),
        ...(stats ? [String(c?.packets ?? 0n), String(c?.bytes ?? 0n)] : []),
      ];
    }),
  );
}

function protocolFlag(text: string): number {
  const proto = parseProtocol(text);
  if (proto === undefined) throw new FlagValueError(`must be one of ${PROTOCOL_NAMES}`);
  return proto;
}

function portsFlag(text: string): Exclude<ReturnType<typeof parsePortRange>, string> {
  const ports = parsePortRange(text);
  if (typeof ports === "string") throw new FlagValueError(ports);
  return ports;
}

const PAIR_FLAGS = {
  src: { type: "string", parse: (text: string) => parsePeer(text, "--src identity") },
  dst: { type: "string", parse: (text: string) => parsePeer(text, "--dst identity") },
  proto: { type: "string", parse: protocolFlag },
  port: { type: "string", parse: portsFlag },
  symmetric: { type: "boolean" },
  show: { type: "boolean" },
  json: { type: "boolean" },
} as const satisfies FlagSpecs;

const PAIR_HELP =
  `  --src ID       source identity: an integer from 1 to 4294967295, "host" (the node's
                 addresses) or "world" (any address no endpoint, node or CIDR has)
  --dst ID       destination identity, the same
  --proto P      only this protocol: tcp, udp, sctp or icmp (default: all traffic)
  --port N|N-M   only these destination ports (with --proto tcp, udp or sctp)
  --symmetric    also the reverse direction (with conntrack on, replies need no rule)
  --show         then print the whole policy table (what policyctl always did)
  --json         print as JSON (the table with --show, the changed rules otherwise)`;

function report(
  ctx: Ctx,
  changed: PolicyRule[],
  values: ParsedFlags["values"],
  table: () => PolicyRule[],
) {
  if (values.show) ctx.io.out(renderRules(table(), values.json === true));
  else if (values.json) ctx.io.out(formatRecordsJson(ruleRecords(changed)));
}

const allow = command({
  synopsis:
    "policy allow --src ID --dst ID [--proto P] [--port N|N-M] [--symmetric] [--show] [--json]",
  summary: "allow traffic from identity --src to --dst (all of it, or a protocol and ports)",
  help: `Allows the traffic --src sends to --dst: all of it (an entry {src, dst} in policy_map, as
policyctl made), or with --proto only that protocol, and with --port only those destination
ports (rule_map entries). Allowed already is fine. Prints what it added; --show prints the
whole table afterwards. With --symmetric both directions are allowed, or neither if a map
fills up on the second.

${PAIR_HELP}

${NEEDS_MAPS}`,
  flags: PAIR_FLAGS,
  run(ctx, { values }) {
    const want = rulesOfFlags(values, allow.synopsis);
    requireIdentityMode(ctx.pinDir, "allow policy");
    withPolicyMaps(ctx, (m) => {
      const added: { rule: PolicyRule; undo: () => void }[] = [];
      let current = want[0]!;
      try {
        for (const r of want) {
          current = r;
          if (r.proto === undefined) {
            if (m.pairs.get(pairOf(r))) continue;
            m.pairs.set(pairOf(r), true);
            added.push({ rule: r, undo: () => m.pairs.delete(pairOf(r)) });
          } else {
            const rules = requireRules(m, ctx);
            const keys = keysOf(r).filter((k) => rules.get(k) === undefined);
            if (keys.length === 0) continue;
            const written: typeof keys = [];
            added.push({ rule: r, undo: () => written.forEach((k) => rules.delete(k)) });
            for (const k of keys) {
              rules.set(k, true);
              written.push(k);
            }
          }
        }
      } catch (err) {
        for (const a of added.reverse()) a.undo();
        if (err instanceof MapFullError) {
          throw new CommandError(`${err.message}: cannot allow ${ruleText(current)}`, {
            cause: err,
          });
        }
        throw err;
      }
      const addedRules = added.map((a) => a.rule);
      for (const r of want) {
        if (!addedRules.includes(r)) ctx.io.err(`ebpfcni: ${ruleText(r)} was already allowed\n`);
      }
      if (!values.show && !values.json) {
        for (const r of addedRules) ctx.io.out(`allowed ${ruleText(r)}\n`);
      }
      report(ctx, addedRules, values, () => currentRules(m));
    });
    return EXIT_OK;
  },
});

const deny = command({
  synopsis:
    "policy deny --src ID --dst ID [--proto P] [--port N|N-M] [--symmetric] [--show] [--json]",
  summary: "remove what allows --src to reach --dst (all of it, or a protocol and ports)",
  help: `Removes the rules that let --src reach --dst, so that traffic is dropped again (policy is
default deny): without --proto every rule of the pair (its policy_map entry and its
rule_map entries), with --proto those of the protocol, with --port those ports (what a rule
allowed outside them stays allowed). A pair with nothing to remove is not an error (a note
goes to stderr). Prints what it removed; --show prints the whole table afterwards.

${PAIR_HELP}

${NEEDS_MAPS}`,
  flags: PAIR_FLAGS,
  run(ctx, { values }) {
    const want = rulesOfFlags(values, deny.synopsis);
    requireIdentityMode(ctx.pinDir, "deny policy");
    withPolicyMaps(ctx, (m) => {
      const removed: PolicyRule[] = [];
      for (const r of want) {
        let did = r.proto === undefined && m.pairs.delete(pairOf(r));
        if (m.rules) {
          const plan = denyPlan(r, ruleKeys(m.rules));
          for (const k of plan.add) m.rules.set(k, true);
          for (const k of plan.remove) did = m.rules.delete(k) || did;
        }
        if (did) removed.push(r);
        else ctx.io.err(`ebpfcni: ${ruleText(r)} was not allowed\n`);
      }
      if (!values.show && !values.json) {
        for (const r of removed) ctx.io.out(`denied ${ruleText(r)}\n`);
      }
      report(ctx, removed, values, () => currentRules(m));
    });
    return EXIT_OK;
  },
});

const list: Command = {
  synopsis: "policy list [--json] [--stats]",
  summary: "list the allowed identity pairs and L4 rules",
  help: `Prints the rules sorted by src, dst, protocol and port: a table with SRC and DST columns
(and PROTO and PORTS when some rule has a protocol), or with --json an array with one object
per line, the format "policy import" reads:
  [
    {"src":1001,"dst":1002},
    {"src":1001,"dst":4294967294,"proto":"tcp","ports":"8000-8100"}
  ]
(identities as numbers: host is 4294967294, world 4294967295; import also reads the names)

  --json    print JSON instead of a table
  --stats   add the packets and bytes the datapath counted for each pair (pair_stats_map,
            summed over CPUs; the L4 rules of a pair share its counters)

Fails (exit 1) without creating anything when policy_map is not pinned.`,
  flags: { json: { type: "boolean" }, stats: { type: "boolean" } },
  run(ctx, { values }) {
    const rules = withPolicyMaps(ctx, (m) => currentRules(m));
    let stats: Map<string, Counted> | undefined;
    if (values.stats) {
      using pin = requireMap(ctx.pinDir, PAIR_STATS_MAP);
      stats = new Map(readPairStats(pin.fd).map((p) => [`${p.src}/${p.dst}`, p]));
    }
    ctx.io.out(renderRules(rules, values.json === true, stats));
    return EXIT_OK;
  },
};

const importCmd: Command = {
  synopsis: "policy import FILE",
  summary: 'bulk-allow rules from "policy list --json" output (FILE or - for stdin)',
  help: `Allows every rule of FILE ("-" reads stdin), the format "policy list --json" prints:
{"src","dst"} pairs, with "proto" (and "ports") for L4 rules. Rules already allowed, and
rules not in the file, are left alone. Prints a one-line summary.

The whole file is checked first: malformed JSON, an identity that is not an integer from 1
to 4294967295 (or "host" or "world"), a bad protocol or port range, or an unknown key
rejects it (exit 2) naming the entry's index and value. A file that would take policy_map
past ${POLICY_MAP.maxEntries} entries is rejected (exit 1). Either way nothing is changed.

${NEEDS_MAPS}`,
  flags: {},
  positionals: { min: 1, max: 1, names: "FILE (a path, or - for stdin)" },
  async run(ctx, { positionals }) {
    const path = positionals[0] ?? "-";
    const text = await readSource(path, ctx.io);
    const file = validateSource("policy", path, text, parsePolicyFile);
    requireIdentityMode(ctx.pinDir, "import policy");
    using pin = requireMap(ctx.pinDir, POLICY_MAP);
    const pairs = new PolicyMap(pin.fd);
    const entries = countEntries(pin.fd, POLICY_MAP);
    const plan = planPolicyImport(pairs.pairs(), entries, file.entries, POLICY_MAP.maxEntries);
    if (!plan.fits) {
      throw new CommandError(
        `Policy file ${sourceName(path)} would overflow policy_map: ${entries} entries + ` +
          `${plan.added.length} new > ${POLICY_MAP.maxEntries}; nothing changed`,
      );
    }
    using rulePin = file.rules.length ? requireMap(ctx.pinDir, RULE_MAP) : undefined;
    const rules = rulePin ? new RuleMap(rulePin.fd) : undefined;
    const newKeys = rules
      ? file.rules.flatMap(keysOf).filter((k) => rules.get(k) === undefined)
      : [];
    const undoPairs = (tried: readonly Policy[]) => {
      for (const e of tried) pairs.delete(pairOf(e));
    };
    try {
      writeChunked(plan.write, (chunk) => pairs.allowMany(chunk), undoPairs);
      const written: typeof newKeys = [];
      try {
        for (const k of newKeys) {
          rules!.set(k, true);
          written.push(k);
        }
      } catch (err) {
        for (const k of written) rules!.delete(k);
        undoPairs(plan.write);
        throw err;
      }
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
    const l4 = file.rules.length ? `, ${file.rules.length} L4 rules` : "";
    ctx.io.out(
      `imported ${file.entries.length} policies (${plan.added.length} new, ${plan.unchanged} already allowed)${l4}\n`,
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
