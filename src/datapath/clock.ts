// Kernel time (bpf_ktime_get_ns, CLOCK_MONOTONIC) to wall-clock time for event records. The
// two clocks drift apart (NTP slews the wall clock, a step moves it), so the offset between
// them is taken again when it is older than `refreshNs`: a long-running agent's flow log
// keeps the node's time. Pure: the clocks are passed in.

/** Taking the offset again after a minute keeps a record within a few ms of the wall clock. */
export const CLOCK_REFRESH_NS = 60_000_000_000n;

export interface WallClock {
  /** The kernel's time when the clock was made (events before it predate the reader). */
  readonly startMono: bigint;
  /** A kernel timestamp as wall-clock milliseconds since the epoch. */
  wallMs(ts: bigint): number;
}

export function wallClockOf(
  monoNs: () => bigint,
  wallMs: () => number,
  refreshNs = CLOCK_REFRESH_NS,
): WallClock {
  const startMono = monoNs();
  let mono = startMono;
  let wall = wallMs();
  return {
    startMono,
    wallMs(ts) {
      const now = monoNs();
      if (now - mono >= refreshNs) {
        mono = now;
        wall = wallMs();
      }
      return wall + Number(ts - mono) / 1e6;
    },
  };
}
