// Costs of the datapath's native layer, measured on this machine:
//   - loading the embedded object with ensureDatapath into a fresh pin directory (and,
//     for comparison, reopening it from the pins), median of a few runs;
//   - one EndpointMap.set (a bpf_map_update_elem through Deno FFI), median per operation
//     over 100k updates, taken as 100 rounds of 1000 so the clock's overhead stays out.
// Needs root and bpffs; every pin directory it makes is removed before it exits.
// Run: DENO_DIR=.deno/cache .deno/bin/deno run -A bench/ffi_costs.ts
import { ensureDatapath } from "../src/datapath/loader.ts";
import { EndpointMap } from "../src/datapath/maps.ts";

const LOAD_RUNS = 7;
const ROUNDS = 100;
const OPS_PER_ROUND = 1000;
const KEYS = 1000;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function freshPinDir(): string {
  const rand = Array.from(crypto.getRandomValues(new Uint8Array(4)), (b) => {
    return b.toString(16).padStart(2, "0");
  }).join("");
  return `/sys/fs/bpf/ebpfcni-bench-${rand}`;
}

const made: string[] = [];
try {
  // Warm up the FFI and libbpf (dlopen, symbol binding) outside the measurements.
  const warm = freshPinDir();
  made.push(warm);
  ensureDatapath(warm).close();

  const loads: number[] = [];
  const reopens: number[] = [];
  for (let i = 0; i < LOAD_RUNS; i++) {
    const dir = freshPinDir();
    made.push(dir);
    let t = performance.now();
    const dp = ensureDatapath(dir);
    loads.push(performance.now() - t);
    if (!dp.loaded) throw new Error(`expected a fresh load into ${dir}`);
    dp.close();
    t = performance.now();
    const again = ensureDatapath(dir);
    reopens.push(performance.now() - t);
    if (again.loaded) throw new Error(`expected ${dir} to be reused`);
    again.close();
  }

  const dir = freshPinDir();
  made.push(dir);
  const dp = ensureDatapath(dir);
  const perOpNs: number[] = [];
  let lookupNs = 0;
  try {
    const endpoints = new EndpointMap(dp.endpointFd);
    const base = 0x7f500000; // 127.80.0.0
    for (let k = 0; k < KEYS; k++) endpoints.set(base + k, k);
    let n = 0;
    for (let r = 0; r < ROUNDS; r++) {
      const t = performance.now();
      for (let i = 0; i < OPS_PER_ROUND; i++, n++) endpoints.set(base + (n % KEYS), n);
      perOpNs.push(((performance.now() - t) * 1e6) / OPS_PER_ROUND);
    }
    // Sanity: the last round's writes are there.
    if (endpoints.get(base + ((n - 1) % KEYS)) !== n - 1) throw new Error("update lost");
    const lookups: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const t = performance.now();
      for (let i = 0; i < OPS_PER_ROUND; i++) endpoints.get(base + (i % KEYS));
      lookups.push(((performance.now() - t) * 1e6) / OPS_PER_ROUND);
    }
    lookupNs = median(lookups);
  } finally {
    dp.close();
  }

  console.log(
    `ensureDatapath, fresh load+pin:   median ${median(loads).toFixed(2)} ms ` +
      `(${LOAD_RUNS} runs, min ${Math.min(...loads).toFixed(2)}, max ${
        Math.max(...loads).toFixed(2)
      })`,
  );
  console.log(
    `ensureDatapath, reuse of pins:    median ${median(reopens).toFixed(2)} ms ` +
      `(${LOAD_RUNS} runs)`,
  );
  console.log(
    `EndpointMap.set (map update):     median ${median(perOpNs).toFixed(0)} ns/op ` +
      `(${ROUNDS * OPS_PER_ROUND} ops in ${ROUNDS} rounds; min round ${
        Math.min(...perOpNs).toFixed(0)
      }, max ${Math.max(...perOpNs).toFixed(0)} ns/op)`,
  );
  console.log(`EndpointMap.get (map lookup):     median ${lookupNs.toFixed(0)} ns/op`);
} finally {
  for (const dir of made) {
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) console.error(`cannot remove ${dir}: ${err}`);
    }
  }
}
