// `ebpfcni cidr add|del|list`: CIDR identities of identity mode. An address no endpoint and no
// node address holds takes the identity of the longest registered prefix holding it (else it
// is "world"), so rules can name outside ranges; an `except` of a range is a longer prefix
// with another identity (or "world").
import { CidrMap, MapFullError } from "../datapath/maps.ts";
import { CIDR_MAP } from "../spec/bpf_layout.ts";
import { type Cidr, CidrError, formatCidr, parseCidr } from "../spec/ipv4.ts";
import { quote } from "../spec/text.ts";
import { identityText } from "../spec/bpf_layout.ts";
import { parsePeer, requireFlag } from "./args.ts";
import { type Command, command } from "./command.ts";
import { CommandError, EXIT_OK, UsageError } from "./errors.ts";
import { requireIdentityMode, requireMap } from "./pin_require.ts";
import { renderTable } from "./text_table.ts";
import { NEEDS_MAPS } from "./usage.ts";

function cidrArg(text: string | undefined): Cidr {
  if (text === undefined) throw new UsageError("Missing CIDR (e.g. 192.0.2.0/24)");
  try {
    return parseCidr(text);
  } catch (err) {
    throw new UsageError(`Invalid CIDR ${quote(text)}: ${(err as CidrError).message}`);
  }
}

const add = command({
  synopsis: "cidr add CIDR --identity ID|host|world",
  summary: "give addresses of CIDR the identity ID (longest prefix wins)",
  help: `Registers CIDR (IPv4, no host bits) in cidr_map with identity ID: a destination address
that is no endpoint and no node address takes the identity of the longest registered prefix
holding it. Replaces the identity of a prefix registered already. To leave a hole in a range
(NetworkPolicy's except), add the longer prefix with another identity or "world".

  --identity ID   an integer from 1 to 4294967295, "host" or "world"

${NEEDS_MAPS}`,
  flags: { identity: { type: "string", parse: (text: string) => parsePeer(text, "identity") } },
  positionals: { min: 1, max: 1, names: "CIDR" },
  run(ctx, { values, positionals }) {
    const cidr = cidrArg(positionals[0]);
    const identity = requireFlag(values, "identity", add.synopsis);
    requireIdentityMode(ctx.pinDir, "add a CIDR identity");
    using pin = requireMap(ctx.pinDir, CIDR_MAP);
    const m = new CidrMap(pin.fd);
    const before = m.get({ addr: cidr.network, prefix: cidr.prefix });
    try {
      m.set({ addr: cidr.network, prefix: cidr.prefix }, identity);
    } catch (err) {
      if (err instanceof MapFullError) {
        throw new CommandError(`${err.message}: cannot add ${formatCidr(cidr)}`, { cause: err });
      }
      throw err;
    }
    const text = formatCidr(cidr);
    ctx.io.out(
      before === undefined
        ? `added ${text} with identity ${identityText(identity)}\n`
        : before === identity
        ? `${text} already has identity ${identityText(identity)}\n`
        : `changed ${text} from identity ${identityText(before)} to ${identityText(identity)}\n`,
    );
    return EXIT_OK;
  },
});

const del: Command = {
  synopsis: "cidr del CIDR",
  summary: "forget a CIDR identity",
  help: `Removes CIDR from cidr_map (its addresses fall back to a shorter registered prefix, or
"world"). A CIDR that is not registered is not an error (a note goes to stderr).

${NEEDS_MAPS}`,
  flags: {},
  positionals: { min: 1, max: 1, names: "CIDR" },
  run(ctx, { positionals }) {
    const cidr = cidrArg(positionals[0]);
    requireIdentityMode(ctx.pinDir, "delete a CIDR identity");
    using pin = requireMap(ctx.pinDir, CIDR_MAP);
    const m = new CidrMap(pin.fd);
    const before = m.get({ addr: cidr.network, prefix: cidr.prefix });
    if (before === undefined) {
      ctx.io.err(`ebpfcni: ${formatCidr(cidr)} was not registered\n`);
    } else {
      m.delete({ addr: cidr.network, prefix: cidr.prefix });
      ctx.io.out(`deleted ${formatCidr(cidr)} (identity ${identityText(before)})\n`);
    }
    return EXIT_OK;
  },
};

const list: Command = {
  synopsis: "cidr list [--json]",
  summary: "list CIDR identities",
  help: `Prints cidr_map sorted by address, then prefix length: a CIDR and an IDENTITY column, or
with --json [{"cidr":"192.0.2.0/24","identity":500}] (identities as numbers: host is
4294967294, world 4294967295).

  --json   print JSON instead of a table`,
  flags: { json: { type: "boolean" } },
  run(ctx, { values }) {
    using pin = requireMap(ctx.pinDir, CIDR_MAP);
    const entries = new CidrMap(pin.fd).list().sort(([a], [b]) =>
      a.addr - b.addr || a.prefix - b.prefix
    );
    const rows = entries.map(([k, identity]) => ({
      cidr: formatCidr({ network: k.addr, prefix: k.prefix }),
      identity,
    }));
    if (values.json) {
      const id = (n: number) => (identityText(n) === String(n) ? n : identityText(n));
      const lines = rows.map((r) =>
        `  ${JSON.stringify({ cidr: r.cidr, identity: id(r.identity) })}`
      );
      ctx.io.out(rows.length ? `[\n${lines.join(",\n")}\n]\n` : "[]\n");
    } else {
      ctx.io.out(renderTable(
        [{ header: "CIDR" }, { header: "IDENTITY", align: "right" }],
        rows.map((r) => [r.cidr, identityText(r.identity)]),
      ));
    }
    return EXIT_OK;
  },
};

export const cidrCommands: Record<string, Command> = { add, del, list };
