// `ebpfcni ct list|flush`: the connections the datapath tracks (conntrack on in identity
// mode, always in kubernetes mode).
import { CtMap } from "../datapath/maps.ts";
import { CT_FLAGS, CT_MAP } from "../datapath/layout.ts";
import { protocolName } from "../datapath/rules.ts";
import { identityText } from "../policy/rules.ts";
import { formatIpv4 } from "../spec/ipv4.ts";
import type { Command } from "./command.ts";
import { EXIT_OK } from "./errors.ts";
import { requireMap } from "./pins.ts";
import { renderTable } from "./table.ts";
import { NEEDS_MAPS } from "./usage.ts";
import { monotonicNs } from "../../ffi/libc.ts";

/** The state of a connection in words, from its flags. */
export function ctState(proto: number, flags: number): string {
  const f = CT_FLAGS;
  const parts: string[] = [];
  if (flags & f.pending) parts.push(flags & f.service ? "to-service" : "to-remote-pod");
  if (proto === 6) {
    if (flags & f.rst) parts.push("reset");
    else if (flags & (f.finFwd | f.finRev)) parts.push("closing");
    else parts.push(flags & f.seenReply ? "established" : "syn-sent");
  } else {
    parts.push(flags & f.seenReply ? "replied" : "new");
  }
  return parts.join(",");
}

const list: Command = {
  synopsis: "ct list [--json]",
  summary: "list tracked connections",
  help: `Prints ct_map: each connection's first packet's addresses, protocol and ports (ICMP echo:
the identifier as source port), its state, the seconds left before it expires, the identities
it was judged with and its packet and byte counts. --json prints an array of objects with
"src", "sport", "dst", "dport", "proto", "state", "expiresIn", "srcIdentity", "dstIdentity",
"packets" and "bytes".

${NEEDS_MAPS}`,
  flags: { json: { type: "boolean" } },
  run(ctx, { values }) {
    using pin = requireMap(ctx.pinDir, CT_MAP);
    const now = monotonicNs();
    const rows = new CtMap(pin.fd).list().map(({ key, entry }) => ({
      src: formatIpv4(key.saddr),
      sport: key.sport,
      dst: formatIpv4(key.daddr),
      dport: key.dport,
      proto: protocolName(key.proto),
      state: ctState(key.proto, entry.flags),
      expiresIn: Math.max(0, Math.round(Number(entry.expires - now) / 1e9)),
      srcIdentity: identityText(entry.srcId),
      dstIdentity: entry.dstId === 0 ? "-" : identityText(entry.dstId),
      packets: Number(entry.packets),
      bytes: Number(entry.bytes),
    })).sort((a, b) => a.src.localeCompare(b.src) || a.sport - b.sport);
    if (values.json) {
      ctx.io.out(JSON.stringify(rows, null, 2) + "\n");
      return EXIT_OK;
    }
    ctx.io.out(renderTable(
      [
        { header: "PROTO" },
        { header: "SOURCE" },
        { header: "DESTINATION" },
        { header: "STATE" },
        { header: "EXPIRES", align: "right" },
        { header: "IDENTITIES" },
        { header: "PACKETS", align: "right" },
        { header: "BYTES", align: "right" },
      ],
      rows.map((r) => [
        r.proto,
        `${r.src}:${r.sport}`,
        `${r.dst}:${r.dport}`,
        r.state,
        `${r.expiresIn}s`,
        `${r.srcIdentity} -> ${r.dstIdentity}`,
        String(r.packets),
        String(r.bytes),
      ]),
    ));
    return EXIT_OK;
  },
};

const flush: Command = {
  synopsis: "ct flush",
  summary: "forget every tracked connection",
  help: `Removes every entry of ct_map. Established connections are judged again by policy on their
next packet (a reply-direction packet may then be dropped where the rules allow only the
other direction).

${NEEDS_MAPS}`,
  flags: {},
  run(ctx) {
    using pin = requireMap(ctx.pinDir, CT_MAP);
    ctx.io.out(`flushed ${new CtMap(pin.fd).flush()} connections\n`);
    return EXIT_OK;
  },
};

export const ctCommands: Record<string, Command> = { list, flush };
