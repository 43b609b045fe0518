// `ebpfcni endpoint add|del|list|import`: the pod address -> identity entries of endpoint_map
// (what endpointctl did). Writes need the map pinned already; they never load the datapath.
import { type Endpoint, EndpointMap, MapFullError } from "../datapath/maps.ts";
import { ENDPOINT_MAP } from "../spec/bpf_layout.ts";
import { parseEndpointFile, planEndpointImport } from "../identity_mode/import_plan.ts";
import { endpointRecords, formatRecordsJson } from "../identity_mode/map_records.ts";
import { parseIdentity, parseIpv4, requireFlag } from "./args.ts";
import { type Command, command, type Ctx } from "./command.ts";
import { CommandError, EXIT_OK } from "./errors.ts";
import { readSource, sourceName, validateSource, writeChunked } from "./import_file.ts";
import { closePin } from "../datapath/pins.ts";
import { requireIdentityMode, requireMap } from "./pin_require.ts";
import { renderTable } from "./text_table.ts";
import { NEEDS_MAPS } from "./usage.ts";

function withEndpoints<T>(ctx: Ctx, fn: (m: EndpointMap) => T, write?: string): T {
  if (write !== undefined) requireIdentityMode(ctx.pinDir, write);
  const pin = requireMap(ctx.pinDir, ENDPOINT_MAP);
  try {
    return fn(new EndpointMap(pin.fd));
  } finally {
    closePin(pin);
  }
}

function listEndpoints(m: EndpointMap): Endpoint[] {
  return m.list().map(([ip, identity]) => ({ ip, identity }));
}

function full(err: unknown, what: string): never {
  if (err instanceof MapFullError) {
    throw new CommandError(`${err.message}: cannot ${what}`, { cause: err });
  }
  throw err;
}

const add = command({
  synopsis: "endpoint add --ip IP --identity ID",
  summary: "register a pod address with an identity (replaces its identity if registered)",
  help: `Registers IPv4 address IP with identity ID in endpoint_map, or changes the identity
of an address already registered.

  --ip IP         IPv4 address, dotted quad (e.g. 10.13.0.2)
  --identity ID   identity, an integer from 1 to 4294967295

${NEEDS_MAPS}`,
  flags: {
    ip: { type: "string" },
    identity: { type: "string", parse: (text: string) => parseIdentity(text) },
  },
  run(ctx, { values }) {
    const ipText = requireFlag(values, "ip", add.synopsis);
    const ip = parseIpv4(ipText);
    const identity = requireFlag(values, "identity", add.synopsis);
    const old = withEndpoints(ctx, (m) => {
      const before = m.get(ip);
      if (before !== identity) {
        try {
          m.set(ip, identity);
        } catch (err) {
          full(err, `add ${ipText}`);
        }
      }
      return before;
    }, "add an endpoint");
    ctx.io.out(
      old === undefined
        ? `added endpoint ${ipText} with identity ${identity}\n`
        : old === identity
        ? `endpoint ${ipText} already has identity ${identity}\n`
        : `changed endpoint ${ipText} from identity ${old} to ${identity}\n`,
    );
    return EXIT_OK;
  },
});

const del = command({
  synopsis: "endpoint del --ip IP",
  summary: "forget a pod address",
  help: `Removes IPv4 address IP from endpoint_map; its traffic is dropped from then on. An address
that is not registered is not an error (a note goes to stderr).

  --ip IP   IPv4 address, dotted quad

${NEEDS_MAPS}`,
  flags: { ip: { type: "string" } },
  run(ctx, { values }) {
    const ipText = requireFlag(values, "ip", del.synopsis);
    const ip = parseIpv4(ipText);
    const old = withEndpoints(ctx, (m) => {
      const before = m.get(ip);
      if (before !== undefined) m.delete(ip);
      return before;
    }, "delete an endpoint");
    if (old === undefined) ctx.io.err(`ebpfcni: endpoint ${ipText} was not registered\n`);
    else ctx.io.out(`deleted endpoint ${ipText} (identity ${old})\n`);
    return EXIT_OK;
  },
});

const list: Command = {
  synopsis: "endpoint list [--json]",
  summary: "list registered addresses",
  help: `Prints endpoint_map sorted by address: a table with an IP and an IDENTITY column, or with
--json an array with one object per line, the format "endpoint import" reads:
  [
    {"ip":"10.13.0.2","identity":1001}
  ]

  --json   print JSON instead of a table

Fails (exit 1) without creating anything when endpoint_map is not pinned.`,
  flags: { json: { type: "boolean" } },
  run(ctx, { values }) {
    const records = endpointRecords(withEndpoints(ctx, (m) => listEndpoints(m)));
    ctx.io.out(
      values.json ? formatRecordsJson(records) : renderTable(
        [{ header: "IP" }, { header: "IDENTITY", align: "right" }],
        records.map((r) => [r.ip, String(r.identity)]),
      ),
    );
    return EXIT_OK;
  },
};

const importCmd: Command = {
  synopsis: "endpoint import FILE",
  summary: 'bulk-register addresses from "endpoint list --json" output (FILE or - for stdin)',
  help: `Registers every {"ip","identity"} entry of FILE ("-" reads stdin), the format
"endpoint list --json" prints; addresses already registered get the identity from the file,
and entries not in the file are left alone.

The whole file is checked first: malformed JSON, a bad address or identity, an unknown key
or one address given two identities rejects it (exit 2) naming the entry's index and value.
A file that would take endpoint_map past ${ENDPOINT_MAP.maxEntries} entries is rejected (exit 1).
Either way nothing is changed. Prints a one-line summary.

${NEEDS_MAPS}`,
  flags: {},
  positionals: { min: 1, max: 1, names: "FILE (a path, or - for stdin)" },
  async run(ctx, { positionals }) {
    const path = positionals[0] ?? "-";
    const text = await readSource(path, ctx.io);
    const file = validateSource("endpoint", path, text, parseEndpointFile);
    const plan = withEndpoints(ctx, (m) => {
      const current = listEndpoints(m);
      const p = planEndpointImport(current, file.entries, ENDPOINT_MAP.maxEntries);
      if (!p.fits) {
        throw new CommandError(
          `Endpoint file ${sourceName(path)} would overflow endpoint_map: ${
            p.after - p.added.length
          } ` +
            `entries + ${p.added.length} new > ${ENDPOINT_MAP.maxEntries}; nothing changed`,
        );
      }
      const before = new Map(current.map((e) => [e.ip, e.identity]));
      try {
        writeChunked(
          p.write,
          (chunk) => m.setMany(chunk.map((e) => [e.ip, e.identity])),
          (tried) => {
            for (const e of tried) {
              const old = before.get(e.ip);
              if (old === undefined) m.delete(e.ip);
              else m.set(e.ip, old);
            }
          },
        );
      } catch (err) {
        full(err, `import ${sourceName(path)} (nothing changed)`);
      }
      return p;
    }, "import endpoints");
    ctx.io.out(
      `imported ${file.entries.length} endpoints (${plan.added.length} new, ${plan.changed} changed, ` +
        `${plan.unchanged} unchanged)\n`,
    );
    return EXIT_OK;
  },
};

export const endpointCommands: Record<string, Command> = {
  add,
  del,
  list,
  import: importCmd,
};
