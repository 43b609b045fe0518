import assert from "node:assert/strict";
import type { DatapathEvent } from "../spec/bpf_layout.ts";
import type { FlowRecord } from "./flow_record.ts";
import { type EventFeed, FlowTap, FlowTapClosed, MAX_STREAM_QUEUE } from "./flow_tap.ts";

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

/** A ring buffer the test feeds by hand: `emit` hands an event to the open reader, `fail`
 * makes it fail as a consume() error would. */
class FakeFeed implements EventFeed {
  opens = 0;
  closes = 0;
  #onEvent: ((e: DatapathEvent) => void) | undefined;
  #fail: ((err: Error) => void) | undefined;
  open(onEvent: (e: DatapathEvent) => void) {
    this.opens++;
    this.#onEvent = onEvent;
    let stop = () => {};
    const done = new Promise<void>((resolve, reject) => {
      stop = resolve;
      this.#fail = reject;
    });
    return {
      done,
      close: () => {
        this.closes++;
        this.#onEvent = undefined;
        stop();
        return done.catch(() => {});
      },
    };
  }
  now(): bigint {
    return 100n;
  }
  emit(port: number, ts = 200n): void {
    this.#onEvent?.(event(port, ts));
  }
  fail(message: string): void {
    this.#fail?.(new Error(message));
  }
}

function event(dport: number, ts: bigint): DatapathEvent {
  return {
    ts,
    ifindex: 1,
    saddr: 1,
    daddr: 2,
    srcId: 3,
    dstId: 4,
    sport: 5,
    dport,
    proto: 6,
    verdict: 0,
    reason: 14,
    hook: 1,
  };
}

const describe = (e: DatapathEvent) => ({ dport: e.dport }) as unknown as FlowRecord;

/** Lets the stream's loop run until it waits for an event. */
const settle = () => new Promise((r) => setTimeout(r, 0));

Deno.test("FlowTap.stream(): a client that falls behind gets the records before the loss, then how many were lost", async () => {
  const feed = new FakeFeed();
  const tap = new FlowTap(feed, describe, quiet);
  const ac = new AbortController();
  const it = tap.stream({ first: true }, "all", ac.signal);
  assert.deepEqual((await it.next()).value, { first: true });
  feed.emit(1, 50n); // read before the client came
  for (let i = 0; i < MAX_STREAM_QUEUE + 5; i++) feed.emit(1000 + i);
  feed.emit(9, 50n);
  const got: unknown[] = [];
  for (let i = 0; i < MAX_STREAM_QUEUE + 1; i++) got.push((await it.next()).value);
  assert.deepEqual(got[0], { dport: 1000 });
  assert.deepEqual(got[MAX_STREAM_QUEUE - 1], { dport: 1000 + MAX_STREAM_QUEUE - 1 });
  assert.deepEqual(got[MAX_STREAM_QUEUE], { lost: 5 });
  feed.emit(7);
  assert.deepEqual((await it.next()).value, { dport: 7 });
  ac.abort();
  assert.equal((await it.next()).done, true);
  assert.equal(feed.closes, 1, "the last listener gone stops the reading");
  await tap.close();
});

Deno.test("FlowTap: a reading that fails ends the streams with its error, shows in error, and the next listener reads again", async () => {
  const feed = new FakeFeed();
  const tap = new FlowTap(feed, describe, quiet);
  const it = tap.stream({ first: true }, "all", new AbortController().signal);
  await it.next();
  const waiting = it.next();
  await settle();
  feed.fail("epoll_wait: EBADF");
  await assert.rejects(waiting, /reading the events ring buffer failed: epoll_wait: EBADF/);
  assert.equal(tap.error, "epoll_wait: EBADF");
  const ac = new AbortController();
  const again = tap.stream({ first: 2 }, "all", ac.signal);
  assert.deepEqual((await again.next()).value, { first: 2 });
  assert.equal(feed.opens, 2, "no new reader after the failure");
  assert.equal(tap.error, undefined);
  feed.emit(8);
  assert.deepEqual((await again.next()).value, { dport: 8 });
  ac.abort();
  await again.next();
  await tap.close();
});

Deno.test("FlowTap: once closed it takes no listener, and a stream opened then ends with an error", async () => {
  const feed = new FakeFeed();
  const tap = new FlowTap(feed, describe, quiet);
  const ac = new AbortController();
  const it = tap.stream({ first: true }, "all", ac.signal);
  await it.next();
  const waiting = it.next();
  await settle();
  await tap.close();
  ac.abort(); // the server aborts its streams as it closes
  assert.equal((await waiting).done, true);
  await assert.rejects(tap.add({ verdict: "all", push() {} }), FlowTapClosed);
  const late = tap.stream({ first: true }, "all", new AbortController().signal);
  await assert.rejects(late.next(), FlowTapClosed);
  assert.equal(feed.opens, 1);
});
