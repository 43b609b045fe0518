// `ebpfcni ct list|flush`: the connections the datapath tracks (conntrack on in identity
// mode, always in kubernetes mode).
import { CtMap } from "../datapath/maps.ts";
import { CT_EST_MAP, CT_FLAGS, CT_MAP, CT_QUOTA_MAP } from "../spec/bpf_layout.ts";
import { protocolName } from "../spec/rule_key.ts";
import { identityText } from "../spec/bpf_layout.ts";
import { formatIpv4 } from "../spec/ipv4.ts";
import type { Command } from "./command.ts";
import { EXIT_OK } from "./errors.ts";
import { openMap, type PinnedMap } from "../datapath/pins.ts";
import { requireMap } from "./pin_require.ts";
import { renderTable } from "./text_table.ts";
import { NEEDS_MAPS } from "./usage.ts";
import { monotonicNs } from "../datapath/kernel.ts";

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

/** ct_map and, when pinned (not in an older build's pin directory), ct_est_map and
 * ct_quota_map. */
function openCt(pinDir: string): { ct: CtMap } & Disposable {
  const pins: PinnedMap[] = [requireMap(pinDir, CT_MAP)];
  const est = openMap(pinDir, CT_EST_MAP);
  if (est) pins.push(est);
  const quota = openMap(pinDir, CT_QUOTA_MAP);
  if (quota) pins.push(quota);
  return {
    ct: new CtMap(pins[0]!.fd, est?.fd ?? -1, quota?.fd ?? -1),
    [Symbol.dispose]: () => pins.forEach((p) => p[Symbol.dispose]()),
  };
}

const list: Command = {
  synopsis: "ct list [--json]",
  summary: "list tracked connections",
  help: `Prints ct_map and ct_est_map: each connection's first packet's addresses, protocol and
ports (ICMP echo: the identifier as source port), its state ("kept" when it is in ct_est_map,
where no other flow can evict it), the seconds left before it expires, the identities it was
judged with and its packet and byte counts. --json prints an array of objects with "src",
"sport", "dst", "dport", "proto", "state", "kept", "expiresIn", "srcIdentity", "dstIdentity",
"packets" and "bytes".

${NEEDS_MAPS}`,
  flags: { json: { type: "boolean" } },
  run(ctx, { values }) {
    using pins = openCt(ctx.pinDir);
    const now = monotonicNs();
    const rows = pins.ct.list().map(({ key, entry, established }) => ({
      src: formatIpv4(key.saddr),
      sport: key.sport,
      dst: formatIpv4(key.daddr),
      dport: key.dport,
      proto: protocolName(key.proto),
      state: ctState(key.proto, entry.flags) + (established ? ",kept" : ""),
      kept: established,
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
  help:
    `Removes every entry of ct_map and ct_est_map. Established connections are judged again by policy on their
next packet (a reply-direction packet may then be dropped where the rules allow only the
other direction).

${NEEDS_MAPS}`,
  flags: {},
  run(ctx) {
    using pins = openCt(ctx.pinDir);
    ctx.io.out(`flushed ${pins.ct.flush()} connections\n`);
    return EXIT_OK;
  },
};

const gc: Command = {
  synopsis: "ct gc",
  summary: "remove expired established connections",
  help: `Removes the connections of ct_est_map past their deadline (the datapath removes one only
when it meets it again; until then it holds a slot of its pod's share) and gives those
slots back. The agent does this at every resync. ct_map, an LRU, needs none.

${NEEDS_MAPS}`,
  flags: {},
  run(ctx) {
    using pins = openCt(ctx.pinDir);
    ctx.io.out(`removed ${pins.ct.sweep(monotonicNs())} expired established connections\n`);
    return EXIT_OK;
  },
};

export const ctCommands: Record<string, Command> = { list, flush, gc };
