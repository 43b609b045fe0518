// Intentionally empty: `deno run` of this file, with the launcher's deno and flags, is the
// start-up floor every ebpfcni invocation pays (bench/latency.ts).
