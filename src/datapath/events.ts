// Reading the `events` ring buffer. A ring buffer has one consumer position, shared by every
// process that maps it: two readers each see part of the events. So on a node whose agent
// serves the pin directory, the agent is the one reader (its flow log and every `ebpfcni
// monitor` read through it); the monitor reads the map itself only when no agent does.
// Waiting for events runs off the event loop (epoll_wait on a worker thread).
import { RingBuffer } from "../../ffi/libbpf.ts";
import { epollWait, monotonicNs } from "../../ffi/libc.ts";
import { type DatapathEvent, decodeEvent } from "../spec/bpf_layout.ts";
import { type WallClock, wallClockOf } from "./clock.ts";

/** Monotonic (bpf_ktime_get_ns) -> wall-clock milliseconds, the offset taken again every
 * minute (clock.ts). */
export function wallClock(): WallClock {
  return wallClockOf(monotonicNs, Date.now);
}

export class EventReader {
  readonly #ring: RingBuffer;
  readonly #running: Promise<void>;
  #stop = false;

  /** Starts reading the ring buffer of `mapFd`, handing each event to `onEvent` on the main
   * thread. */
  constructor(mapFd: number, onEvent: (e: DatapathEvent) => void) {
    this.#ring = new RingBuffer(mapFd, (data) => onEvent(decodeEvent(data)));
    this.#running = this.#loop();
  }

  async #loop(): Promise<void> {
    // Short waits, so a stop is answered promptly.
    while (!this.#stop) if (await epollWait(this.#ring.epollFd, 200)) this.#ring.consume();
  }

  /** Resolves when the reading stopped by itself (it does not, unless consuming fails). */
  get done(): Promise<void> {
    return this.#running;
  }

  /** Stops after the wait under way, then frees the ring buffer. */
  async close(): Promise<void> {
    this.#stop = true;
    try {
      await this.#running;
    } finally {
      this.#ring.close();
    }
  }
}
