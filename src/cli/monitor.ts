// `ebpfcni monitor`: the datapath's verdicts as they happen, from the `events` ring buffer
// (rate-limited in the kernel, per CPU). When a policy agent serves the pin directory, the
// events come through it (it is the ring buffer's one reader, see src/datapath/events.ts), named
// with pods and deciding policies; otherwise the monitor reads the ring buffer itself. Ctrl-C
// (or --count) ends it cleanly.
import { ConfigMap } from "../datapath/maps.ts";
import { CONFIG_MAP, EVENTS_MAP, MODE_KUBERNETES } from "../spec/bpf_layout.ts";
import { EventReader, wallClock } from "../datapath/events.ts";
import {
  flowJson,
  type FlowRecord,
  flowRecord,
  flowText,
  verdictOf,
} from "../agent/flow_record.ts";
import { DEFAULT_AGENT_SOCKET, type MonitorRequest } from "../spec/agent_wire.ts";
import { dirPathProblem } from "../spec/name_rules.ts";
import { errorMessage, quote } from "../spec/text.ts";
import { isObject } from "../spec/json.ts";
import { ifnameCache } from "../net/link.ts";
import { type LineStream, requestLines, RpcError } from "../net/unix_rpc.ts";
import { command, type Ctx } from "./command.ts";
import { FlagValueError } from "./args.ts";
import { CommandError, EXIT_OK, UsageError } from "./errors.ts";
import { openMap } from "../datapath/pins.ts";
import { requireMap } from "./pin_require.ts";

const VERDICTS = ["drop", "allow", "all"] as const;
type Verdict = (typeof VERDICTS)[number];

function verdictFlag(text: string): Verdict {
  if (!(VERDICTS as readonly string[]).includes(text)) {
    throw new FlagValueError("must be drop, allow or all");
  }
  return text as Verdict;
}

function countFlag(text: string): number {
  if (!/^[1-9][0-9]{0,8}$/.test(text)) throw new FlagValueError("must be a positive integer");
  return Number(text);
}

interface Session {
  verdict: Verdict;
  count: number;
  print(r: FlowRecord): void;
  /** Resolves on Ctrl-C / SIGTERM. */
  stopped: Promise<void>;
  isStopped(): boolean;
}

export const monitorCommand = command({
  synopsis: "monitor [--json] [--verdict drop|allow|all] [--count N] [--socket PATH]",
  summary: "stream the datapath's verdicts (drops, and the flows rules allowed)",
  help: `Prints an event for every dropped packet and every flow a rule allowed, as they happen:
time, verdict, interface and hook, protocol, source and destination address, port and
identity, and the reason (the stats_map counter it went to). The datapath rate-limits events
in the kernel (per CPU; what it cannot report counts as events_lost in "ebpfcni status").
Ctrl-C ends it.

In kubernetes mode the policy agent is the ring buffer's one reader: the monitor asks it for
the events (on --socket PATH, default ${DEFAULT_AGENT_SOCKET}, or EBPFCNI_AGENT_SOCKET), and
they name the pod at each end and the policies that decided. With no agent answering, the
monitor reads the ring buffer itself (a ring buffer has one read position: two monitors
reading it each see part of the events).

  --json             one JSON object per line: {"time", "verdict", "reason", "hook",
                     "ifindex", "interface", "proto", "src", "sport", "srcIdentity",
                     ["srcNamespace", "srcPod"], "dst", "dport", "dstIdentity",
                     ["dstNamespace", "dstPod"], ["policies"]}; the bracketed ones when the
                     agent knows them. "policies": for a drop_ingress or drop_egress, the
                     policies that isolate that direction (none of their rules allows the
                     flow); for an allow, the policies whose rules allowed it ([]: not
                     isolated)
  --verdict V        drop (default), allow or all
  --count N          stop after N events`,
  flags: {
    json: { type: "boolean" },
    verdict: { type: "string", parse: verdictFlag, default: "drop" },
    count: { type: "string", parse: countFlag },
    socket: { type: "string" },
  },
  async run(ctx, { values }) {
    const verdict = values.verdict;
    const count = values.count ?? Infinity;
    const socket = typeof values.socket === "string"
      ? values.socket
      : ctx.env.EBPFCNI_AGENT_SOCKET ?? DEFAULT_AGENT_SOCKET;
    const problem = dirPathProblem(socket);
    if (problem !== undefined) {
      throw new UsageError(`Invalid --socket ${quote(socket)}: ${problem}`);
    }
    using pin = requireMap(ctx.pinDir, EVENTS_MAP);
    let stop = () => {};
    let isStopped = false;
    const stopped = new Promise<void>((resolve) => (stop = resolve)).then(() => {
      isStopped = true;
    });
    const onSignal = () => stop();
    Deno.addSignalListener("SIGINT", onSignal);
    Deno.addSignalListener("SIGTERM", onSignal);
    const session: Session = {
      verdict,
      count,
      print: (r) => {
        ctx.io.out(values.json ? flowJson(r) : flowText(r));
        // `ebpfcni monitor | head`: nobody reads any more.
        if (ctx.io.outClosed) stop();
      },
      stopped,
      isStopped: () => isStopped,
    };
    try {
      const stream = await askAgent(ctx, socket, session, {
        op: "monitor",
        verdict,
        eventsMapId: pin.id,
      });
      if (stream === "stopped") return EXIT_OK;
      if (stream !== undefined) await throughAgent(ctx, stream, session);
      else await direct(pin.fd, session);
    } finally {
      Deno.removeSignalListener("SIGINT", onSignal);
      Deno.removeSignalListener("SIGTERM", onSignal);
      stop();
    }
    return EXIT_OK;
  },
});

/** The agent's stream once it accepted; undefined when the monitor must read itself. */
async function askAgent(
  ctx: Ctx,
  socket: string,
  session: Session,
  req: MonitorRequest,
): Promise<{ stream: LineStream; lines: AsyncIterator<unknown> } | undefined | "stopped"> {
  let stream: LineStream;
  try {
    stream = await requestLines(socket, req);
  } catch (err) {
    if (err instanceof RpcError && err.kind === "unreachable") {
      if (kubernetesMode(ctx.pinDir)) {
        ctx.io.err(
          `ebpfcni: no policy agent answers on ${quote(socket)}: reading the events ` +
            `without pod or policy names\n`,
        );
      }
      return undefined;
    }
    throw new CommandError(`The policy agent on ${quote(socket)}: ${errorMessage(err)}`, {
      cause: err,
    });
  }
  // Ctrl-C while waiting for the agent's answer.
  void session.stopped.then(() => stream.close());
  const it = stream.lines[Symbol.asyncIterator]();
  const first = await it.next().catch((err) => {
    if (session.isStopped()) return { done: true as const, value: undefined };
    throw err;
  });
  if (session.isStopped()) return "stopped";
  const answer = first.done ? undefined : first.value;
  if (isObject(answer) && isObject(answer.monitor)) return { stream, lines: it };
  stream.close();
  if (isObject(answer) && typeof answer.declined === "string") return undefined;
  if (isObject(answer) && typeof answer.error === "string") {
    // An agent older than the monitor's request does not read the ring buffer either.
    if (/bad request: "op" must be/.test(answer.error)) return undefined;
    throw new CommandError(`The policy agent: ${answer.error}`);
  }
  throw new CommandError(`The policy agent on ${quote(socket)} did not answer the monitor`);
}

async function throughAgent(
  ctx: Ctx,
  s: { stream: LineStream; lines: AsyncIterator<unknown> },
  session: Session,
): Promise<void> {
  let seen = 0;
  try {
    while (seen < session.count) {
      const next = await s.lines.next();
      if (next.done) break;
      const v = next.value;
      if (!isObject(v)) continue;
      if (typeof v.error === "string") {
        throw new CommandError(`The policy agent's stream failed: ${v.error}`);
      }
      if (typeof v.lost === "number") {
        ctx.io.err(`ebpfcni: ${v.lost} event(s) lost: the monitor fell behind\n`);
        continue;
      }
      session.print(v as unknown as FlowRecord);
      seen++;
    }
  } catch (err) {
    if (err instanceof CommandError) throw err;
    if (!session.isStopped()) {
      throw new CommandError(`The policy agent's stream: ${errorMessage(err)}`, {
        cause: err,
      });
    }
  } finally {
    s.stream.close();
  }
  if (seen < session.count && !session.isStopped()) {
    throw new CommandError("The policy agent stopped");
  }
}

async function direct(fd: number, session: Session): Promise<void> {
  const ifname = ifnameCache();
  const clock = wallClock();
  let seen = 0;
  let reached = () => {};
  const done = new Promise<void>((resolve) => (reached = resolve));
  const reader = new EventReader(fd, (e) => {
    if (e.ts < clock.startMono || seen >= session.count) return; // from before, or surplus
    if (session.verdict !== "all" && verdictOf(e) !== session.verdict) return;
    seen++;
    session.print(flowRecord(e, clock.wallMs, ifname));
    if (seen >= session.count) reached();
  });
  try {
    await Promise.race([session.stopped, done, reader.done]);
  } finally {
    await reader.close();
  }
}

function kubernetesMode(pinDir: string): boolean {
  using config = openMap(pinDir, CONFIG_MAP);
  return config !== undefined && new ConfigMap(config.fd).get().mode === MODE_KUBERNETES;
}
