// Shared pieces of the benchmark suite: running and timing processes, statistics, a cleanup
// registry that undoes everything the suite created (also on Ctrl-C / SIGTERM), names that
// cannot collide with anything else on the machine, and table output.
import { fileURLToPath } from "node:url";
import { errorMessage } from "../src/spec/text.ts";

export const ROOT = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
function envOr(name: string, fallback: string): string {
  try {
    return Deno.env.get(name) ?? fallback;
  } catch {
    return fallback; // no env permission (bench/report.ts needs none)
  }
}

export const BINARY = envOr("EBPFCNI_BINARY", `${ROOT}/dist/ebpfcni`);
export const REF_PLUGIN = "/usr/lib/cni/bridge";
export const CNI_PATH = "/usr/lib/cni";

/** Short random id of this run; every name the suite creates contains it. */
export const RUN_ID = Array.from(
  crypto.getRandomValues(new Uint8Array(4)),
  (b) => (b % 36).toString(36),
).join("");

const enc = new TextEncoder();
const dec = new TextDecoder();

// ---------------------------------------------------------------------------------------
// Processes

export interface ProcResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit, ms. */
  ms: number;
}

export interface ProcOpts {
  env?: Record<string, string>;
  clearEnv?: boolean;
  stdin?: string | Uint8Array;
  /** Kill the process after this many ms (default 60 s): every run is bounded. */
  timeoutMs?: number;
  check?: boolean;
}

/** Runs a process to completion, timing spawn-to-exit. */
export async function run(cmd: string, args: string[], opts: ProcOpts = {}): Promise<ProcResult> {
  const options: Deno.CommandOptions = {
    args,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  };
  if (opts.env !== undefined) options.env = opts.env;
  if (opts.clearEnv !== undefined) options.clearEnv = opts.clearEnv;
  const t0 = performance.now();
  const p = new Deno.Command(cmd, options).spawn();
  const timer = setTimeout(() => {
    try {
      p.kill("SIGKILL");
    } catch { /* already gone */ }
  }, opts.timeoutMs ?? 60_000);
  try {
    if (opts.stdin !== undefined) {
      const w = p.stdin.getWriter();
      await w.write(typeof opts.stdin === "string" ? enc.encode(opts.stdin) : opts.stdin);
      await w.close();
    }
    const out = await p.output();
    const ms = performance.now() - t0;
    const res = {
      code: out.code,
      stdout: dec.decode(out.stdout),
      stderr: dec.decode(out.stderr),
      ms,
    };
    if (opts.check && res.code !== 0) {
      throw new Error(
        `${cmd} ${args.join(" ")} failed (${res.code}): ${res.stderr.trim() || res.stdout.trim()}`,
      );
    }
    return res;
  } finally {
    clearTimeout(timer);
  }
}

/** Runs a command that must succeed; returns stdout. */
export async function sh(cmd: string, ...args: string[]): Promise<string> {
  return (await run(cmd, args, { check: true })).stdout;
}

/** Runs a command whose failure does not matter (cleanup). */
export async function shQuiet(cmd: string, ...args: string[]): Promise<void> {
  try {
    await run(cmd, args, { timeoutMs: 20_000 });
  } catch { /* best effort */ }
}

// ---------------------------------------------------------------------------------------
// Statistics

export function sorted(xs: readonly number[]): number[] {
  return [...xs].sort((a, b) => a - b);
}

/** Quantile with linear interpolation (q in [0, 1]). */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = sorted(xs);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

export const median = (xs: readonly number[]) => quantile(xs, 0.5);
export const p90 = (xs: readonly number[]) => quantile(xs, 0.9);

export interface Summary {
  n: number;
  median: number;
  p90: number;
  min: number;
  max: number;
}

export function summarize(xs: readonly number[]): Summary {
  return {
    n: xs.length,
    median: median(xs),
    p90: p90(xs),
    min: xs.length ? Math.min(...xs) : NaN,
    max: xs.length ? Math.max(...xs) : NaN,
  };
}

// ---------------------------------------------------------------------------------------
// Cleanup: LIFO actions, run once, also on signals.

type Action = { what: string; fn: () => Promise<void> | void };
const actions: Action[] = [];
let cleaning: Promise<void> | undefined;

export function onCleanup(what: string, fn: () => Promise<void> | void): void {
  actions.push({ what, fn });
}

export function cleanupAll(): Promise<void> {
  cleaning ??= (async () => {
    while (actions.length) {
      const a = actions.pop()!;
      try {
        await a.fn();
      } catch (err) {
        console.error(`bench: cleanup "${a.what}" failed: ${errorMessage(err)}`);
      }
    }
  })();
  return cleaning;
}

let signalsInstalled = false;
export function installSignalCleanup(): void {
  if (signalsInstalled) return;
  signalsInstalled = true;
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    Deno.addSignalListener(sig, async () => {
      console.error(`\nbench: ${sig}: cleaning up`);
      await cleanupAll();
      Deno.exit(130);
    });
  }
}

// ---------------------------------------------------------------------------------------
// Things on the machine, each registered for cleanup when made.

export const PIN_PREFIX = "/sys/fs/bpf/ebpfcni-bench-";

export function pinDir(tag: string): string {
  const dir = `${PIN_PREFIX}${RUN_ID}-${tag}`;
  onCleanup(`pin dir ${dir}`, () => {
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  });
  return dir;
}

export function tempDir(tag: string): string {
  const dir = Deno.makeTempDirSync({ prefix: `ebpfcni-bench-${RUN_ID}-${tag}-` });
  onCleanup(`temp dir ${dir}`, () => Deno.removeSync(dir, { recursive: true }));
  return dir;
}

/** Creates a named netns; returns its name. */
export async function netns(name: string): Promise<string> {
  await sh("ip", "netns", "add", name);
  onCleanup(`netns ${name}`, () => shQuiet("ip", "netns", "del", name));
  return name;
}

/** Registers deletion of a link the plugins will create (bridges). */
export function linkToDelete(name: string): void {
  onCleanup(`link ${name}`, () => shQuiet("ip", "link", "del", name));
}

/** Subnets already routed on this machine, to avoid. */
export async function usedPrefixes(): Promise<Set<string>> {
  const out = JSON.parse(await sh("ip", "-j", "-4", "route", "show", "table", "all")) as {
    dst: string;
  }[];
  const used = new Set<string>();
  for (const r of out) {
    const m = /^10\.(\d+)\./.exec(r.dst ?? "");
    if (m) used.add(m[1]!);
  }
  return used;
}

/** Picks distinct 10.X.0.0/16 second octets not routed here (from 150..249). */
export async function freeOctets(n: number): Promise<number[]> {
  const used = await usedPrefixes();
  const out: number[] = [];
  const start = 150 + Math.floor(Math.random() * 50);
  for (let i = 0; i < 100 && out.length < n; i++) {
    const o = 150 + ((start - 150 + i) % 100);
    if (!used.has(String(o))) out.push(o);
  }
  if (out.length < n) throw new Error("no free 10.X.0.0/16 ranges for the benchmark networks");
  return out;
}

// ---------------------------------------------------------------------------------------
// Output

export function fmt(x: number, digits = 2): string {
  if (!Number.isFinite(x)) return "n/a";
  return x.toFixed(digits);
}

export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map(String));
  const widths = headers.map((h, i) =>
    Math.max(h.length, ...cells.map((r) => (r[i] ?? "").length))
  );
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [
    line(headers),
    `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`,
    ...cells.map(line),
  ].join("\n");
}

export function log(msg: string): void {
  console.error(`bench: ${msg}`);
}

/** Little-endian bytes of a u32 as decimal strings, for bpftool key/value arguments. */
export function leBytes(n: number): string[] {
  return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255].map(String);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ---------------------------------------------------------------------------------------
// Machine load: the figures are only meaningful on an otherwise idle machine.

export function cpuTicks(): { busy: number; total: number } {
  const line = Deno.readTextFileSync("/proc/stat").split("\n")[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** USER_HZ: /proc/stat counts in 1/100 s on Linux. */
export const TICK_MS = 10;

/** Share of all CPUs busy over `ms` (0..1). */
export async function cpuBusy(ms = 1000): Promise<number> {
  const a = cpuTicks();
  await sleep(ms);
  const b = cpuTicks();
  return (b.busy - a.busy) / Math.max(1, b.total - a.total);
}

export function loadAvg(): string {
  return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
}

/** Waits (bounded) until other work leaves the CPUs mostly idle; returns the last reading. */
export async function waitQuiet(maxWaitS: number, threshold = 0.15): Promise<number> {
  let busy = await cpuBusy();
  for (let waited = 1; busy > threshold && waited < maxWaitS; waited += 2) {
    if (waited === 1) {
      log(`CPUs ${Math.round(busy * 100)}% busy with other work: waiting up to ${maxWaitS} s`);
    }
    busy = await cpuBusy(2000);
  }
  if (busy > threshold) {
    log(
      `WARNING: CPUs still ${Math.round(busy * 100)}% busy with other work; figures will be noisy`,
    );
  }
  return busy;
}

/** The value of flag `--name=N` among the script's arguments, or `dflt`. */
export function numArg(name: string, dflt: number): number {
  const a = Deno.args.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.split("=")[1]) : dflt;
}

/** The value of flag `--name=TEXT`, or undefined. */
export function textArg(name: string): string | undefined {
  return Deno.args.find((x) => x.startsWith(`--${name}=`))?.slice(name.length + 3);
}

/** Starts an agent (`cmd args`: the binary, or nsenter in front of it), stopped at cleanup or
 * by the returned `stop`, and waits until it serves `socket` (at most ~30 s). */
export async function spawnAgent(
  what: string,
  cmd: string,
  args: string[],
  socket: string,
): Promise<{ pid: number; stop: () => Promise<void> }> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch {
      // gone
    }
    await child.status;
  };
  onCleanup(`stop ${what}`, stop);
  for (let i = 0;; i++) {
    try {
      (await Deno.connect({ transport: "unix", path: socket })).close();
      return { pid: child.pid, stop };
    } catch {
      if (i > 1500) throw new Error(`${what} does not serve ${socket}`);
      await sleep(20);
    }
  }
}
