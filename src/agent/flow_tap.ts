// The agent's reader of the `events` ring buffer (see src/datapath/events.ts for why there is
// one): it runs while someone listens (the flow log, a monitor streaming over the socket) and
// hands each event, named once, to each of them. It reads only what the kernel emitted, after
// the kernel's rate limit: nothing here costs the datapath anything.
import type { DatapathEvent } from "../spec/bpf_layout.ts";
import { type FlowRecord, verdictOf } from "./flow_record.ts";
import type { AgentLog } from "../log.ts";

export type VerdictFilter = "drop" | "allow" | "all";

export interface FlowSink {
  verdict: VerdictFilter;
  /** `record` names the event (computed once for all sinks). */
  push(e: DatapathEvent, record: () => FlowRecord): void;
  /** The reading failed: no more events come until a listener is added again. */
  fail?(err: Error): void;
}

/** The ring buffer's reading, as the tap drives it (src/datapath/events.ts's EventReader). */
export interface EventFeed {
  /** Starts reading, handing each event to `onEvent`; throws when it cannot. */
  open(onEvent: (e: DatapathEvent) => void): {
    /** Rejects when the reading fails (resolves when it was closed). */
    done: Promise<void>;
    close(): Promise<void>;
  };
  /** The kernel's clock now (bpf_ktime_get_ns), to tell events before a listener came. */
  now(): bigint;
}

export class FlowTapClosed extends Error {
  override name = "FlowTapClosed";
}

/** Lines a monitor's stream holds for a client that reads slower than events come. */
export const MAX_STREAM_QUEUE = 4096;

export class FlowTap {
  readonly #feed: EventFeed;
  readonly #describe: (e: DatapathEvent) => FlowRecord;
  readonly #log: AgentLog;
  readonly #sinks = new Set<FlowSink>();
  #reader: ReturnType<EventFeed["open"]> | undefined;
  #closing: Promise<void> = Promise.resolve();
  #closed = false;
  #error: string | undefined;

  constructor(feed: EventFeed, describe: (e: DatapathEvent) => FlowRecord, log: AgentLog) {
    this.#feed = feed;
    this.#describe = describe;
    this.#log = log;
  }

  /** Why the last reading failed, until one starts again. */
  get error(): string | undefined {
    return this.#error;
  }

  /** Adds a listener (starting to read, again after a failure); the function returned removes
   * it (the last one removed stops the reading). Throws once the tap is closed. */
  async add(sink: FlowSink): Promise<() => Promise<void>> {
    if (this.#closed) throw new FlowTapClosed("The flow tap is closed");
    this.#sinks.add(sink);
    if (this.#reader === undefined) {
      await this.#closing; // a reader being closed must be gone before another opens
      try {
        if (this.#closed) throw new FlowTapClosed("The flow tap is closed");
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
    const reader = this.#feed.open((e) => this.#dispatch(e));
    this.#reader = reader;
    this.#error = undefined;
    reader.done.catch((err) => {
      if (this.#reader !== reader) return; // failed on its way out
      // A dead reader must not stay: the next add() starts another.
      this.#reader = undefined;
      this.#closing = reader.close().catch(() => {});
      this.#error = (err as Error)?.message ?? String(err);
      this.#log.error("reading the events ring buffer failed", { error: this.#error });
      for (const sink of this.#sinks) sink.fail?.(err as Error);
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

  /** Stops reading whoever listens; add() throws from now on. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#sinks.clear();
    await this.#stop();
  }

  /** A monitor's stream: `first`, then the records of events after now that pass `verdict`,
   * and `{"lost": N}` where the client fell behind by N (after the records that came before
   * the loss), until `signal` aborts. Throws when the reading fails. */
  async *stream(
    first: unknown,
    verdict: VerdictFilter,
    signal: AbortSignal,
  ): AsyncGenerator<unknown> {
    const since = this.#feed.now();
    const queue: (FlowRecord | { lost: number })[] = [];
    let failed: Error | undefined;
    let wake = () => {};
    const sink: FlowSink = {
      verdict,
      push(e, record) {
        if (e.ts < since) return; // read before this client came
        if (queue.length < MAX_STREAM_QUEUE) queue.push(record());
        else {
          const last = queue.at(-1);
          if (last !== undefined && "lost" in last) last.lost++;
          else queue.push({ lost: 1 });
        }
        wake();
      },
      fail(err) {
        failed = err;
        wake();
      },
    };
    const onAbort = () => wake();
    signal.addEventListener("abort", onAbort);
    try {
      const remove = await this.add(sink);
      try {
        yield first;
        while (!signal.aborted) {
          if (failed !== undefined) {
            throw new Error(`reading the events ring buffer failed: ${failed.message}`, {
              cause: failed,
            });
          }
          const r = queue.shift();
          if (r !== undefined) {
            yield r;
            continue;
          }
          await new Promise<void>((resolve) => (wake = resolve));
        }
      } finally {
        await remove();
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }
}
