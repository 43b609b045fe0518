// The agent's reader of the `events` ring buffer (see src/datapath/events.ts for why there is
// one): it runs while someone listens (the flow log, a monitor streaming over the socket) and
// hands each event, named once, to each of them. It reads only what the kernel emitted, after
// the kernel's rate limit: nothing here costs the datapath anything.
import { EventReader } from "../datapath/events.ts";
import type { DatapathEvent } from "../datapath/layout.ts";
import { monotonicNs } from "../../ffi/libc.ts";
import { type FlowRecord, verdictOf } from "./flow_record.ts";
import type { AgentLog } from "./log.ts";

export type VerdictFilter = "drop" | "allow" | "all";

export interface FlowSink {
  verdict: VerdictFilter;
  /** `record` names the event (computed once for all sinks). */
  push(e: DatapathEvent, record: () => FlowRecord): void;
}

/** Lines a monitor's stream holds for a client that reads slower than events come. */
const MAX_STREAM_QUEUE = 4096;

export class FlowTap {
  readonly #mapFd: number;
  readonly #describe: (e: DatapathEvent) => FlowRecord;
  readonly #log: AgentLog;
  readonly #sinks = new Set<FlowSink>();
  #reader: EventReader | undefined;
  #closing: Promise<void> = Promise.resolve();

  constructor(mapFd: number, describe: (e: DatapathEvent) => FlowRecord, log: AgentLog) {
    this.#mapFd = mapFd;
    this.#describe = describe;
    this.#log = log;
  }

  /** Adds a listener (starting to read); the function returned removes it (the last one
   * removed stops the reading). */
  async add(sink: FlowSink): Promise<() => Promise<void>> {
    this.#sinks.add(sink);
    if (this.#reader === undefined) {
      await this.#closing; // a reader being closed must be gone before another opens
      try {
        if (this.#reader === undefined) this.#start();
      } catch (err) {
        this.#sinks.delete(sink);
        throw err;
      }
    }
    return async () => {
      this.#sinks.delete(sink);
      if (this.#sinks.size === 0) await this.#stop();
    };
  }

  #start(): void {
    const reader = new EventReader(this.#mapFd, (e) => this.#dispatch(e));
    this.#reader = reader;
    reader.done.catch((err) => {
      this.#log.error("reading the events ring buffer failed", { error: String(err) });
    });
  }

  #dispatch(e: DatapathEvent): void {
    let record: FlowRecord | undefined;
    const named = () => (record ??= this.#describe(e));
    const verdict = verdictOf(e);
    for (const sink of this.#sinks) {
      if (sink.verdict !== "all" && sink.verdict !== verdict) continue;
      try {
        sink.push(e, named);
      } catch (err) {
        this.#log.error("a flow listener failed", { error: String(err) });
      }
    }
  }

  #stop(): Promise<void> {
    const reader = this.#reader;
    this.#reader = undefined;
    if (reader !== undefined) this.#closing = reader.close().catch(() => {});
    return this.#closing;
  }

  /** Stops reading whoever listens. */
  async close(): Promise<void> {
    this.#sinks.clear();
    await this.#stop();
  }

  /** A monitor's stream: `first`, then the records of events after now that pass `verdict`,
   * and `{"lost": N}` where the client fell behind by N, until `signal` aborts. */
  async *stream(
    first: unknown,
    verdict: VerdictFilter,
    signal: AbortSignal,
  ): AsyncGenerator<unknown> {
    const since = monotonicNs();
    const queue: FlowRecord[] = [];
    let lost = 0;
    let wake = () => {};
    const sink: FlowSink = {
      verdict,
      push(e, record) {
        if (e.ts < since) return; // read before this client came
        if (queue.length >= MAX_STREAM_QUEUE) lost++;
        else queue.push(record());
        wake();
      },
    };
    const onAbort = () => wake();
    signal.addEventListener("abort", onAbort);
    const remove = await this.add(sink);
    try {
      yield first;
      while (!signal.aborted) {
        if (lost > 0) {
          yield { lost };
          lost = 0;
        }
        const r = queue.shift();
        if (r !== undefined) {
          yield r;
          continue;
        }
        await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      await remove();
    }
  }
}
