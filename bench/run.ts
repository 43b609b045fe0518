// The ebpfcni benchmark suite (run it with `deno task bench`, which builds first; see
// scripts/bench.sh). Compares ebpfcni with Debian's bridge + host-local plugins on this
// machine, in one run, alternating between the two:
//   1. ADD / DEL latency per pod, and the Deno start-up floor      (bench/latency.ts)
//   2. 32 ADDs in parallel                                          (bench/latency.ts)
//   3. datapath: throughput, RTT and per-packet classifier cost     (bench/datapath.ts)
//   4. policy updates: one allow, bulk import                       (bench/policy.ts)
//   5. peak RSS of one ADD                                          (bench/latency.ts)
//   6. launcher levers: the bundle through launcher variants       (bench/levers.ts)
// Prints the tables on stdout (progress on stderr) and writes the raw numbers as JSON to
// bench/results.json (bench/results.quick.json with --quick).
//
// Flags: --quick (fewer pods, shorter iperf3; a smoke test), --sections=latency,levers,policy,datapath
// (default all: latency,levers,policy,datapath), --out=FILE, --iperf-affinity=same|none (default same: iperf3 client and
// server pinned to CPU 0, see bench/datapath.ts), and for experiments --dp-sizes=10,1000
// (policy_map sizes, in order) and --dp-rounds=N. Needs root, bpffs, iperf3, bpftool, /usr/bin/time.
// Everything it creates (netns, bridges, veths, pin dirs /sys/fs/bpf/ebpfcni-bench-*, temp
// dirs, iperf3 servers, the bpf_stats sysctl) is undone at the end, on failure and on signals.
import { BenchNet } from "./cni.ts";
import { datapathBench } from "./datapath.ts";
import { latencyBench, measureFloor } from "./latency.ts";
import { leversBench } from "./levers.ts";
import { readLauncher } from "./launcher.ts";
import {
  BINARY,
  cleanupAll,
  freeOctets,
  installSignalCleanup,
  loadAvg,
  log,
  REF_PLUGIN,
  ROOT,
  run,
  RUN_ID,
  tempDir,
  waitQuiet,
} from "./lib.ts";
import { policyBench } from "./policy.ts";
import { render, type Results } from "./report.ts";
import { errorMessage } from "../src/spec/text.ts";

const args = Deno.args;
const quick = args.includes("--quick");
const sectionsArg = args.find((a) => a.startsWith("--sections="))?.split("=")[1];
const sections = new Set((sectionsArg ?? "latency,levers,policy,datapath").split(","));
const out = args.find((a) => a.startsWith("--out="))?.split("=")[1] ??
  `${ROOT}/bench/${quick ? "results.quick.json" : "results.json"}`;
const affinityArg = args.find((a) => a.startsWith("--iperf-affinity="))?.split("=")[1] ?? "same";
if (affinityArg !== "same" && affinityArg !== "none") {
  console.error(`bench: --iperf-affinity must be "same" or "none"`);
  Deno.exit(2);
}
const affinity: "same" | "none" = affinityArg;
// Datapath overrides (for experiments): policy_map sizes in order, and rounds per size.
const dpSizes = args.find((a) => a.startsWith("--dp-sizes="))?.split("=")[1]?.split(",").map(
  Number,
);
const dpRounds = Number(args.find((a) => a.startsWith("--dp-rounds="))?.split("=")[1] ?? NaN);
if (dpSizes?.some((n) => !Number.isInteger(n) || n < 2 || n > 60_000)) {
  console.error("bench: --dp-sizes takes integers from 2 to 60000, e.g. --dp-sizes=10,1000");
  Deno.exit(2);
}
for (const a of args) {
  if (
    a !== "--quick" && !a.startsWith("--sections=") && !a.startsWith("--out=") &&
    !a.startsWith("--iperf-affinity=") && !a.startsWith("--dp-sizes=") &&
    !a.startsWith("--dp-rounds=")
  ) {
    console.error(
      `bench: unknown argument ${a} (expected --quick, --sections=..., --out=..., --iperf-affinity=...)`,
    );
    Deno.exit(2);
  }
}

const OPTS = quick
  ? {
    latency: { pods: 8, parallel: 32, parallelReps: 1, memoryRuns: 2, breakdownRuns: 2 },
    levers: { rounds: 3 },
    policy: { allowRuns: 5, allowRunsLarge: 3, bulkEntries: 60_000, bulkReps: 1, breakdownRuns: 1 },
    datapath: {
      sizes: [10, 1_000, 50_000],
      rounds: 1,
      iperfSeconds: 1,
      pings: 50,
      affinity,
    },
  }
  : {
    latency: { pods: 50, parallel: 32, parallelReps: 5, memoryRuns: 5, breakdownRuns: 5 },
    levers: { rounds: 15 },
    policy: {
      allowRuns: 30,
      allowRunsLarge: 10,
      bulkEntries: 60_000,
      bulkReps: 5,
      breakdownRuns: 3,
    },
    datapath: {
      sizes: [10, 1_000, 50_000],
      rounds: 7,
      iperfSeconds: 2,
      pings: 200,
      affinity,
    },
  };

async function text(cmd: string, ...a: string[]): Promise<string> {
  try {
    const r = await run(cmd, a, { timeoutMs: 10_000 });
    return r.stdout.trim() || r.stderr.trim();
  } catch (err) {
    return `unavailable (${errorMessage(err)})`;
  }
}

async function machine(launcherLine: string, launcherKind: string) {
  const cpuinfo = Deno.readTextFileSync("/proc/cpuinfo");
  const meminfo = Deno.readTextFileSync("/proc/meminfo");
  const memKb = Number(/MemTotal:\s+(\d+)/.exec(meminfo)?.[1] ?? NaN);
  return {
    kernel: await text("uname", "-r"),
    nproc: Number(await text("nproc")),
    memTotalMiB: Math.round(memKb / 1024),
    cpuModel: /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? "unknown",
    deno: (await text(`${ROOT}/.deno/bin/deno`, "--version")).split("\n")[0],
    referencePlugin: `${REF_PLUGIN} (containernetworking-plugins ${await text(
      "dpkg-query",
      "-W",
      "-f=${Version}",
      "containernetworking-plugins",
    )}) + host-local`,
    iperf3: (await text("iperf3", "--version")).split("\n")[0],
    bpftool: (await text("bpftool", "--version")).split("\n")[0],
    binary: BINARY,
    binaryKind: launcherKind,
    launcher: launcherLine,
    commit: await text("git", "-C", ROOT, "rev-parse", "--short", "HEAD"),
    worktreeDirty:
      (await text("git", "-C", ROOT, "status", "--porcelain", "--", "src", "ffi", "bpf")) !== "",
    date: new Date().toISOString(),
  };
}

installSignalCleanup();
const started = performance.now();
let failed = false;
try {
  if (Deno.uid() !== 0) throw new Error("needs root (netns, bridges, BPF)");
  const launcher = readLauncher();
  const results: Results = {
    quick,
    runId: RUN_ID,
    machine: await machine(launcher.commandLine, launcher.kind),
    options: OPTS,
    load: { before: {}, loadAvgStart: loadAvg() },
  };
  const quietWait = quick ? 5 : 60;
  log(
    `run ${RUN_ID}${
      quick ? " (quick)" : ""
    }: ${results.machine.kernel}, ${results.machine.nproc} CPUs, ${results.machine.deno}`,
  );
  const scratch = tempDir("scratch");
  const [octet] = await freeOctets(1);

  if (sections.has("latency")) {
    results.load.before.latency = await waitQuiet(quietWait);
    const e = new BenchNet("ebpfcni", "l", octet!, 1);
    const r = new BenchNet("bridge", "l", octet!, 2);
    results.latency = await latencyBench(OPTS.latency, e, r, launcher, scratch);
  }
  if (sections.has("levers")) {
    results.load.before.levers = await waitQuiet(quietWait);
    const v = new BenchNet("ebpfcni", "v", octet!, 5);
    const levers = await leversBench(OPTS.levers, launcher, v);
    if (levers) results.levers = levers;
  }
  const floorMs = results.latency?.floor.median ??
    (sections.has("policy") ? await measureFloor(launcher, scratch, 10) : NaN);
  if (!results.latency) results.floorMs = floorMs;
  if (sections.has("policy")) {
    results.load.before.policy = await waitQuiet(quietWait);
    results.policy = await policyBench(OPTS.policy, launcher, scratch, floorMs);
  }
  if (dpSizes) OPTS.datapath.sizes = dpSizes;
  if (Number.isInteger(dpRounds) && dpRounds > 0) OPTS.datapath.rounds = dpRounds;
  if (sections.has("datapath")) {
    results.load.before.datapath = await waitQuiet(quietWait);
    const e = new BenchNet("ebpfcni", "d", octet!, 3);
    const r = new BenchNet("bridge", "d", octet!, 4);
    results.datapath = await datapathBench(OPTS.datapath, e, r);
  }
  results.load.loadAvgEnd = loadAvg();
  results.durationS = Math.round((performance.now() - started) / 1000);
  Deno.writeTextFileSync(out, JSON.stringify(results, null, 2) + "\n");
  console.log(render(results, out));
} catch (err) {
  failed = true;
  console.error(`bench: FAILED: ${(err as Error).stack ?? err}`);
} finally {
  log("cleaning up");
  await cleanupAll();
}
Deno.exit(failed ? 1 : 0);
