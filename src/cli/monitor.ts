// `ebpfcni monitor`: the datapath's verdicts as they happen, from the `events` ring buffer
// (rate-limited in the kernel, per CPU). Waiting for events runs off the event loop; Ctrl-C
// (or --count) ends it cleanly.
import { RingBuffer } from "../../ffi/libbpf.ts";
import { epollWait, monotonicNs } from "../../ffi/libc.ts";
import { type DatapathEvent, decodeEvent, EVENTS_MAP, STAT_NAMES } from "../datapath/layout.ts";
import { protocolName } from "../datapath/rules.ts";
import { identityText } from "../policy/rules.ts";
import { formatIpv4 } from "../spec/ipv4.ts";
import { quote } from "../spec/text.ts";
import { NetlinkSocket } from "../net/socket.ts";
import { Links } from "../net/link.ts";
import type { Command } from "./command.ts";
import { EXIT_OK, UsageError } from "./errors.ts";
import { requireMap } from "./pins.ts";

const VERDICTS = ["drop", "allow", "all"] as const;

export interface EventView {
  time: string;
  verdict: "drop" | "allow";
  reason: string;
  hook: "from-pod" | "to-pod";
  ifindex: number;
  interface: string;
  proto: string;
  src: string;
  sport: number;
  srcIdentity: string;
  dst: string;
  dport: number;
  dstIdentity: string;
}

/** An event in words; `wallMs(ts)` turns its monotonic time into wall-clock milliseconds. */
export function eventView(
  e: DatapathEvent,
  wallMs: (ts: bigint) => number,
  ifname: (ifindex: number) => string,
): EventView {
  return {
    time: new Date(wallMs(e.ts)).toISOString(),
    verdict: e.verdict === 1 ? "allow" : "drop",
    reason: STAT_NAMES[e.reason] ?? `reason ${e.reason}`,
    hook: e.hook === 1 ? "to-pod" : "from-pod",
    ifindex: e.ifindex,
    interface: ifname(e.ifindex),
    proto: protocolName(e.proto),
    src: formatIpv4(e.saddr),
    sport: e.sport,
    srcIdentity: e.srcId === 0 ? "-" : identityText(e.srcId),
    dst: formatIpv4(e.daddr),
    dport: e.dport,
    dstIdentity: e.dstId === 0 ? "-" : identityText(e.dstId),
  };
}

export function eventLine(v: EventView): string {
  const port = (
    p: number,
  ) => (v.proto === "tcp" || v.proto === "udp" || v.proto === "sctp" ? `:${p}` : "");
  return `${v.time} ${v.verdict.toUpperCase().padEnd(5)} ${v.interface} ${v.hook} ${v.proto} ` +
    `${v.src}${port(v.sport)} (${v.srcIdentity}) -> ${v.dst}${port(v.dport)} (${v.dstIdentity}) ` +
    `${v.reason}\n`;
}

export const monitorCommand: Command = {
  synopsis: "monitor [--json] [--verdict drop|allow|all] [--count N]",
  summary: "stream the datapath's verdicts (drops, and the flows rules allowed)",
  help: `Prints an event for every dropped packet and every flow a rule allowed, as they happen:
time, verdict, interface and hook, protocol, source and destination address, port and
identity, and the reason (the stats_map counter it went to). The datapath rate-limits events
in the kernel (per CPU; what it cannot report counts as events_lost in "ebpfcni status").
Ctrl-C ends it.

  --json             one JSON object per line: {"time", "verdict", "reason", "hook",
                     "ifindex", "interface", "proto", "src", "sport", "srcIdentity", "dst",
                     "dport", "dstIdentity"}
  --verdict V        drop (default), allow or all
  --count N          stop after N events`,
  flags: { json: { type: "boolean" }, verdict: { type: "string" }, count: { type: "string" } },
  async run(ctx, { values }) {
    const verdict = typeof values.verdict === "string" ? values.verdict : "drop";
    if (!(VERDICTS as readonly string[]).includes(verdict)) {
      throw new UsageError(`invalid --verdict ${quote(verdict)}: must be drop, allow or all`);
    }
    let count = Infinity;
    if (typeof values.count === "string") {
      count = /^[1-9][0-9]{0,8}$/.test(values.count) ? Number(values.count) : NaN;
      if (Number.isNaN(count)) {
        throw new UsageError(`invalid --count ${quote(values.count)}: must be a positive integer`);
      }
    }
    using pin = requireMap(ctx.pinDir, EVENTS_MAP);
    using nl = new NetlinkSocket();
    const links = new Links(nl);
    const names = new Map<number, string>();
    const ifname = (i: number) => {
      if (!names.has(i)) names.set(i, links.byIndex(i)?.name ?? `if${i}`);
      return names.get(i)!;
    };
    // Monotonic -> wall clock, fixed at start (good to the millisecond over a session).
    const startMono = monotonicNs();
    const startWall = Date.now();
    const wallMs = (ts: bigint) => startWall + Number(ts - startMono) / 1e6;
    let seen = 0;
    const onRecord = (data: Uint8Array) => {
      const e = decodeEvent(data);
      if (e.ts < startMono || seen >= count) return; // from before we started, or surplus
      const v = eventView(e, wallMs, ifname);
      if (verdict !== "all" && v.verdict !== verdict) return;
      seen++;
      ctx.io.out(values.json ? JSON.stringify(v) + "\n" : eventLine(v));
    };
    using ring = new RingBuffer(pin.fd, onRecord);
    let stop = false;
    const onSignal = () => stop = true;
    Deno.addSignalListener("SIGINT", onSignal);
    Deno.addSignalListener("SIGTERM", onSignal);
    try {
      while (!stop && seen < count) {
        // Short waits, so Ctrl-C is answered promptly.
        if (await epollWait(ring.epollFd, 200)) ring.consume();
      }
    } finally {
      Deno.removeSignalListener("SIGINT", onSignal);
      Deno.removeSignalListener("SIGTERM", onSignal);
    }
    return EXIT_OK;
  },
};
