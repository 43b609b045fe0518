// Fault injection for the robustness tests: EBPFCNI_FAULT="fail:<point>" makes ADD (or, at
// a DEL_FAULT_POINTS point, DEL and GC's teardown) fail at that point; "hang:<point>" makes it stop there (for kill -9); "sleep:<point>" makes it
// pause there for EBPFCNI_FAULT_SLEEP_MS (default 200), so that a concurrent call surely
// overlaps it. Unset in production.

import { log } from "../log.ts";

export const FAULT_POINTS = [
  "after-state",
  "after-lease",
  "after-bridge",
  "after-veth",
  "after-attach",
  "after-endpoint",
  "after-addr",
] as const;
/** In ADD, before it waits for the attachment's lock (a handed-over ADD made late). */
export const LOCK_FAULT_POINTS = ["before-lock"] as const;
/** In a teardown (DEL, GC): after the lease is released, before the record is removed. */
export const DEL_FAULT_POINTS = ["del-after-release"] as const;
/** In GC, between listing the ipMasq rules and removing the stale ones. */
export const GC_FAULT_POINTS = ["gc-ipmasq-listed"] as const;
export type FaultPoint =
  | typeof FAULT_POINTS[number]
  | typeof LOCK_FAULT_POINTS[number]
  | typeof DEL_FAULT_POINTS[number]
  | typeof GC_FAULT_POINTS[number];

export class InjectedFault extends Error {
  override name = "InjectedFault";
}

export async function faultPoint(env: Record<string, string>, point: FaultPoint): Promise<void> {
  log.debug(`reached ${point} at ${performance.now().toFixed(1)} ms`);
  const spec = env.EBPFCNI_FAULT;
  if (!spec) return;
  const [mode, at] = spec.split(":");
  if (at !== point) return;
  if (mode === "fail") throw new InjectedFault(`Injected failure at ${point}`);
  if (mode === "sleep") {
    // The marker tells a test the pause began (its concurrent call then surely overlaps it).
    const marker = env.EBPFCNI_FAULT_MARKER;
    if (marker) Deno.writeTextFileSync(marker, point);
    const ms = Number(env.EBPFCNI_FAULT_SLEEP_MS ?? "200");
    await new Promise((r) => setTimeout(r, Number.isFinite(ms) ? ms : 200));
    return;
  }
  if (mode === "hang") {
    const marker = env.EBPFCNI_FAULT_MARKER;
    if (marker) Deno.writeTextFileSync(marker, point);
    // Until killed. The timer keeps the event loop alive: a bare never-settling promise
    // makes Deno exit at once with "Top-level await promise never resolved".
    await new Promise(() => setInterval(() => {}, 3_600_000));
  }
}
