// Benchmarks 1, 2 and 5: CNI ADD/DEL latency per pod (with the Deno start-up floor measured
// in the same run), parallel ADDs, peak RSS of one ADD. ebpfcni and the reference bridge
// plugin each get their own network (bridge, /24 subnet, lease directory); calls alternate
// between the two, and the order within each pair flips every iteration.
import { errorMessage } from "../src/spec/text.ts";
import { BenchNet, delAll, type Pod } from "./cni.ts";
import { type Launcher, warm } from "./launcher.ts";
import {
  BINARY,
  cpuTicks,
  fmt,
  log,
  median,
  ROOT,
  run,
  sleep,
  summarize,
  type Summary,
  table,
  TICK_MS,
} from "./lib.ts";

export interface LatencyOpts {
  pods: number;
  parallel: number;
  parallelReps: number;
  memoryRuns: number;
  breakdownRuns: number;
}

export interface LatencyResult {
  pods: number;
  /** Every sample in the order taken (pod i's ADD is add.ebpfcni[i]). */
  raw: {
    add: { ebpfcni: number[]; bridge: number[] };
    del: { ebpfcni: number[]; bridge: number[] };
    floor: number[];
    version: number[];
  };
  floor: Summary;
  /** CNI_COMMAND=VERSION through dist/ebpfcni: start-up plus the entry module, no work. */
  version: Summary;
  firstAdd: { ebpfcni: number; bridge: number };
  add: { ebpfcni: Summary; bridge: Summary; ratio: number };
  del: { ebpfcni: Summary; bridge: Summary; ratio: number };
  addMinusFloorMs: number;
  delBeyondFloorMs: number;
  targets: { addMinusFloorLe3ms: boolean; delBeyondFloorLeRefDel: boolean };
  parallel: {
    pods: number;
    reps: number;
    addWallMs: { ebpfcni: number[]; bridge: number[] };
    delWallMs: { ebpfcni: number[]; bridge: number[] };
    /** Machine-wide CPU time (all processes, kernel included) per pod during the parallel ADD. */
    addCpuMsPerPod: {
      ebpfcni: number[];
      bridge: number[];
      medianEbpfcni: number;
      medianBridge: number;
    };
    medianAdd: { ebpfcni: number; bridge: number; ratio: number };
    medianDel: { ebpfcni: number; bridge: number; ratio: number };
  };
  memory: {
    runs: number;
    addMaxRssKb: { ebpfcni: number[]; bridge: number[] };
    floorMaxRssKb: number[];
    medianKb: { ebpfcni: number; bridge: number; floor: number; ratio: number };
  };
  breakdown: {
    runs: number;
    medianMs: Record<string, number>;
    samples: Record<string, number>[];
    /** Runs that first touched ensureDatapath and netlink (timed) before the first ADD. */
    prewarmedMedianMs: Record<string, number>;
    prewarmed: Record<string, number>[];
  };
}

/** ebpfcni first or the reference first, flipping each iteration. */
function pairOrder<T>(i: number, e: T, r: T): [T, T] {
  return i % 2 === 0 ? [e, r] : [r, e];
}

async function timeFloor(floor: string): Promise<number> {
  const res = await run(floor, [], { clearEnv: true, timeoutMs: 30_000 });
  if (res.code !== 0) throw new Error(`floor script failed: ${res.stderr}`);
  return res.ms;
}

/** Median of `n` runs of the start-up floor (for sections run without the latency one). */
export async function measureFloor(
  launcher: Launcher,
  scratch: string,
  n: number,
): Promise<number> {
  const floor = launcher.make(`${ROOT}/bench/_empty.ts`, scratch, "floor");
  await warm(floor);
  const xs: number[] = [];
  for (let i = 0; i < n; i++) xs.push(await timeFloor(floor));
  return median(xs);
}

/** `CNI_COMMAND=VERSION dist/ebpfcni`: start-up + loading the entry module, no work. */
async function timeVersion(): Promise<number> {
  const res = await run(BINARY, [], {
    env: { CNI_COMMAND: "VERSION" },
    clearEnv: true,
    stdin: "{}",
    timeoutMs: 30_000,
  });
  if (res.code !== 0) throw new Error(`ebpfcni VERSION failed: ${res.stdout}`);
  return res.ms;
}

/** Parallel ADD of every pod in `pods` at once: wall time to all exited with success, and
 * the CPU time the whole machine used meanwhile (busy ticks of /proc/stat). */
async function parallelCalls(
  net: BenchNet,
  command: "ADD" | "DEL",
  pods: Pod[],
): Promise<{ ms: number; cpuMs: number }> {
  const c0 = cpuTicks();
  const t0 = performance.now();
  const results = await Promise.allSettled(pods.map((p) => net.call(command, p)));
  const ms = performance.now() - t0;
  const cpuMs = (cpuTicks().busy - c0.busy) * TICK_MS;
  const failed = results.filter((r) => r.status === "rejected") as PromiseRejectedResult[];
  if (failed.length) {
    throw new Error(
      `${failed.length}/${pods.length} parallel ${net.kind} ${command} failed: ${
        errorMessage(failed[0]!.reason)
      }`,
    );
  }
  return { ms, cpuMs };
}

async function maxRss(
  net: BenchNet,
  command: "ADD" | "DEL",
  pod: Pod,
): Promise<number> {
  const { cmd, args, env } = net.invocation(command, pod);
  const res = await run("/usr/bin/time", ["-f", "BENCH_MAXRSS_KB=%M", cmd, ...args], {
    env,
    clearEnv: true,
    stdin: JSON.stringify(net.config()),
  });
  if (res.code !== 0) {
    throw new Error(`${net.kind} ${command} under time failed: ${res.stdout}${res.stderr}`);
  }
  const m = /BENCH_MAXRSS_KB=(\d+)/.exec(res.stderr);
  if (!m) throw new Error(`no max RSS from /usr/bin/time: ${res.stderr}`);
  if (command === "ADD") {
    const r = JSON.parse(res.stdout) as { ips?: { address: string }[] };
    pod.ip = r.ips?.[0]?.address.split("/")[0];
  } else delete pod.ip;
  return Number(m[1]);
}

export async function latencyBench(
  opts: LatencyOpts,
  e: BenchNet,
  r: BenchNet,
  launcher: Launcher,
  scratch: string,
): Promise<LatencyResult> {
  const floor = launcher.make(`${ROOT}/bench/_empty.ts`, scratch, "floor");
  await warm(floor);

  const need = Math.max(opts.pods, opts.parallel) + opts.memoryRuns + opts.breakdownRuns * 4 + 1;
  log(`creating ${need} netns per plugin beforehand`);
  await e.makePods(need);
  await r.makePods(need);
  const podsE = e.pods.slice(0, opts.pods);
  const podsR = r.pods.slice(0, opts.pods);
  let spare = Math.max(opts.pods, opts.parallel);
  const warmE = e.pods[spare]!;
  const warmR = r.pods[spare]!;
  spare++;

  // First ADD on each network: creates the bridge; for ebpfcni also loads and pins the
  // datapath. Reported on its own, not part of the per-pod figures.
  const firstAdd = {
    ebpfcni: (await e.call("ADD", warmE)).ms,
    bridge: (await r.call("ADD", warmR)).ms,
  };
  await e.call("DEL", warmE);
  await r.call("DEL", warmR);
  for (let i = 0; i < 3; i++) await timeFloor(floor);

  // 1. Sequential ADD then DEL, alternating plugins, floor in between.
  log(`ADD/DEL latency: ${opts.pods} pods per plugin, alternating`);
  const add = { ebpfcni: [] as number[], bridge: [] as number[] };
  const del = { ebpfcni: [] as number[], bridge: [] as number[] };
  const floorMs: number[] = [];
  const versionMs: number[] = [];
  for (let i = 0; i < opts.pods; i++) {
    for (const net of pairOrder(i, e, r)) {
      const pod = (net === e ? podsE : podsR)[i]!;
      add[net.kind].push((await net.call("ADD", pod)).ms);
    }
    floorMs.push(await timeFloor(floor));
    versionMs.push(await timeVersion());
  }
  for (let i = 0; i < opts.pods; i++) {
    for (const net of pairOrder(i, e, r)) {
      const pod = (net === e ? podsE : podsR)[i]!;
      del[net.kind].push((await net.call("DEL", pod)).ms);
    }
    floorMs.push(await timeFloor(floor));
  }
  const addE = summarize(add.ebpfcni);
  const addR = summarize(add.bridge);
  const delE = summarize(del.ebpfcni);
  const delR = summarize(del.bridge);
  const fl = summarize(floorMs);
  const addMinusFloorMs = addE.median - fl.median;
  const delBeyondFloorMs = delE.median - fl.median;

  // 2. Parallel ADDs.
  log(`parallel ADD: ${opts.parallel} pods at once, ${opts.parallelReps} repetitions`);
  const par = {
    add: { ebpfcni: [] as number[], bridge: [] as number[] },
    del: { ebpfcni: [] as number[], bridge: [] as number[] },
    addCpuMs: { ebpfcni: [] as number[], bridge: [] as number[] },
  };
  for (let rep = 0; rep < opts.parallelReps; rep++) {
    for (const net of pairOrder(rep, e, r)) {
      const pods = net.pods.slice(0, opts.parallel);
      await sleep(200); // let the previous round's exits settle
      const added = await parallelCalls(net, "ADD", pods);
      par.add[net.kind].push(added.ms);
      par.addCpuMs[net.kind].push(added.cpuMs / pods.length);
      // Every pod got its own address.
      const ips = new Set(pods.map((p) => p.ip));
      if (ips.size !== pods.length || ips.has(undefined)) {
        throw new Error(
          `${net.kind}: parallel ADD gave ${ips.size} distinct addresses for ${pods.length} pods`,
        );
      }
      await sleep(200);
      par.del[net.kind].push((await parallelCalls(net, "DEL", pods)).ms);
    }
  }

  // 5. Peak RSS of one ADD (and of the floor, for scale).
  log(`memory: /usr/bin/time on ${opts.memoryRuns} ADDs per plugin`);
  const mem = { ebpfcni: [] as number[], bridge: [] as number[], floor: [] as number[] };
  for (let i = 0; i < opts.memoryRuns; i++) {
    for (const net of pairOrder(i, e, r)) {
      const pod = net.pods[spare + i]!;
      mem[net.kind].push(await maxRss(net, "ADD", pod));
      await net.call("DEL", pod);
    }
    const f = await run("/usr/bin/time", ["-f", "BENCH_MAXRSS_KB=%M", floor], { clearEnv: true });
    mem.floor.push(Number(/BENCH_MAXRSS_KB=(\d+)/.exec(f.stderr)?.[1] ?? NaN));
  }
  spare += opts.memoryRuns;

  // Where ADD's time goes (ebpfcni only): see bench/_add_breakdown.ts. Plain runs and runs
  // that touch the native layers first alternate.
  log(`ADD breakdown: ${opts.breakdownRuns} x 2 processes`);
  const breakdownExe = launcher.make(`${ROOT}/bench/_add_breakdown.ts`, scratch, "breakdown");
  const samples: Record<string, number>[] = [];
  const prewarmed: Record<string, number>[] = [];
  for (let i = 0; i < opts.breakdownRuns * 2; i++) {
    const a = e.pods[spare + 2 * i]!;
    const b = e.pods[spare + 2 * i + 1]!;
    const prewarm = i % 2 === 1;
    const spec = {
      config: e.config(),
      pods: [a, b].map((p) => ({ id: p.id, netns: p.netns, identity: p.identity })),
      prewarm,
    };
    const res = await run(breakdownExe, [JSON.stringify(spec)], {
      clearEnv: true,
      timeoutMs: 60_000,
    });
    if (res.code !== 0) throw new Error(`breakdown failed: ${res.stderr}`);
    const s = JSON.parse(res.stdout.trim().split("\n").pop()!) as Record<string, number>;
    s.processMs = res.ms;
    (prewarm ? prewarmed : samples).push(s);
  }
  const medians = (xs: Record<string, number>[]) => {
    const m: Record<string, number> = {};
    for (const k of Object.keys(xs[0] ?? {})) m[k] = median(xs.map((s) => s[k]!));
    return m;
  };
  const medianMs = medians(samples);
  const prewarmedMedianMs = medians(prewarmed);

  await delAll(e);
  await delAll(r);

  const medE = median(par.add.ebpfcni);
  const medR = median(par.add.bridge);
  const medDE = median(par.del.ebpfcni);
  const medDR = median(par.del.bridge);
  const memE = median(mem.ebpfcni);
  const memR = median(mem.bridge);
  return {
    pods: opts.pods,
    raw: { add, del, floor: floorMs, version: versionMs },
    floor: fl,
    version: summarize(versionMs),
    firstAdd,
    add: { ebpfcni: addE, bridge: addR, ratio: addE.median / addR.median },
    del: { ebpfcni: delE, bridge: delR, ratio: delE.median / delR.median },
    addMinusFloorMs,
    delBeyondFloorMs,
    targets: {
      addMinusFloorLe3ms: addMinusFloorMs <= 3,
      delBeyondFloorLeRefDel: delBeyondFloorMs <= delR.median,
    },
    parallel: {
      pods: opts.parallel,
      reps: opts.parallelReps,
      addWallMs: par.add,
      delWallMs: par.del,
      addCpuMsPerPod: {
        ...par.addCpuMs,
        medianEbpfcni: median(par.addCpuMs.ebpfcni),
        medianBridge: median(par.addCpuMs.bridge),
      },
      medianAdd: { ebpfcni: medE, bridge: medR, ratio: medE / medR },
      medianDel: { ebpfcni: medDE, bridge: medDR, ratio: medDE / medDR },
    },
    memory: {
      runs: opts.memoryRuns,
      addMaxRssKb: { ebpfcni: mem.ebpfcni, bridge: mem.bridge },
      floorMaxRssKb: mem.floor,
      medianKb: { ebpfcni: memE, bridge: memR, floor: median(mem.floor), ratio: memE / memR },
    },
    breakdown: { runs: opts.breakdownRuns, medianMs, samples, prewarmedMedianMs, prewarmed },
  };
}

export function latencyTables(r: LatencyResult): string {
  const ok = (b: boolean) => (b ? "met" : "NOT met");
  const row = (what: string, e: Summary, b: Summary) => [
    what,
    fmt(e.median),
    fmt(e.p90),
    fmt(b.median),
    fmt(b.p90),
    fmt(e.median / b.median),
  ];
  const out: string[] = [];
  out.push(`### 1. ADD / DEL latency per pod (${r.pods} pods each, sequential, alternating), ms\n`);
  out.push(table(
    ["", "ebpfcni median", "ebpfcni p90", "bridge median", "bridge p90", "ratio (median)"],
    [
      row("ADD", r.add.ebpfcni, r.add.bridge),
      row("DEL", r.del.ebpfcni, r.del.bridge),
      ...(r.raw && r.pods >= 20
        ? (() => {
          // Does ADD slow down as leases accumulate? First vs last 10 pods of the network.
          const first = (xs: number[]) => summarize(xs.slice(0, 10));
          const last = (xs: number[]) => summarize(xs.slice(-10));
          return [
            row("ADD, pods 1-10 (few leases)", first(r.raw.add.ebpfcni), first(r.raw.add.bridge)),
            row(
              `ADD, pods ${r.pods - 9}-${r.pods} (${r.pods - 10}+ leases)`,
              last(r.raw.add.ebpfcni),
              last(r.raw.add.bridge),
            ),
          ];
        })()
        : []),
      ["Deno start-up floor (empty script)", fmt(r.floor.median), fmt(r.floor.p90), "", "", ""],
      [
        "ebpfcni VERSION (start-up + entry module, no work)",
        fmt(r.version.median),
        fmt(r.version.p90),
        "",
        "",
        "",
      ],
      [
        "first ADD on the network (bridge; ebpfcni: + load/pin datapath)",
        fmt(r.firstAdd.ebpfcni),
        "",
        fmt(r.firstAdd.bridge),
        "",
        fmt(r.firstAdd.ebpfcni / r.firstAdd.bridge),
      ],
    ],
  ));
  out.push("");
  const par = r.parallel;
  const wallRatio = par.medianAdd.ratio;
  const cpuRatio = par.addCpuMsPerPod.medianEbpfcni / par.addCpuMsPerPod.medianBridge;
  const mk = r.memory.medianKb;
  const rssOver = (mk.ebpfcni - mk.floor) / 1024;
  out.push(table(["target", "measured", "reference", "ratio", "target", "result"], [
    [
      "ADD median minus the floor",
      `${fmt(r.add.ebpfcni.median)} - ${fmt(r.floor.median)} = ${fmt(r.addMinusFloorMs)} ms`,
      "3 ms",
      fmt(r.addMinusFloorMs / 3),
      "<= 3 ms",
      ok(r.addMinusFloorMs <= 3),
    ],
    [
      "DEL median minus the floor",
      `${fmt(r.del.ebpfcni.median)} - ${fmt(r.floor.median)} = ${fmt(r.delBeyondFloorMs)} ms`,
      `bridge DEL ${fmt(r.del.bridge.median)} ms`,
      fmt(r.delBeyondFloorMs / r.del.bridge.median),
      "<= 1",
      ok(r.delBeyondFloorMs <= r.del.bridge.median),
    ],
    [
      `${par.pods} parallel ADDs, wall time`,
      `${fmt(par.medianAdd.ebpfcni)} ms`,
      `bridge ${fmt(par.medianAdd.bridge)} ms`,
      fmt(wallRatio),
      "<= 1.5",
      ok(wallRatio <= 1.5),
    ],
    [
      "CPU per ADD (parallel, machine-wide)",
      `${fmt(par.addCpuMsPerPod.medianEbpfcni, 1)} ms`,
      `bridge ${fmt(par.addCpuMsPerPod.medianBridge, 1)} ms`,
      fmt(cpuRatio),
      "<= 2",
      ok(cpuRatio <= 2),
    ],
    [
      "peak RSS of one ADD",
      `${fmt(mk.ebpfcni / 1024, 1)} MiB`,
      `bare Deno ${fmt(mk.floor / 1024, 1)} MiB`,
      `+${fmt(rssOver, 1)} MiB`,
      "<= +5 MiB",
      ok(rssOver <= 5),
    ],
  ]));
  out.push("");
  const b = r.breakdown.medianMs;
  const w = r.breakdown.prewarmedMedianMs;
  if (Object.keys(b).length) {
    out.push(
      `ebpfcni ADD inside one process, source modules through the launcher's deno and flags ` +
        `(median of ${r.breakdown.runs} processes each), ms:\n`,
    );
    const f = (x: number | undefined) => fmt(x ?? NaN);
    out.push(table(["phase", "plain", "native layers touched first"], [
      ["runtime start to first line of script", f(b.startMs), f(w.startMs)],
      ["import plugin modules (dispatch, add, del)", f(b.importMs), f(w.importMs)],
      [
        "ensureDatapath, first / second call (dlopen libbpf, open pins)",
        "",
        `${f(w.dpColdMs)} / ${f(w.dpWarmMs)}`,
      ],
      [
        "netlink socket + link lookup, first / second (dlopen libmnl)",
        "",
        `${f(w.nlColdMs)} / ${f(w.nlWarmMs)}`,
      ],
      ["runCni ADD, first in process", f(b.addMs), f(w.addMs)],
      ["runCni DEL, first in process", f(b.delMs), f(w.delMs)],
      ["runCni ADD, second in process (warm)", f(b.add2Ms), f(w.add2Ms)],
      ["runCni DEL, second in process (warm)", f(b.del2Ms), f(w.del2Ms)],
      ["whole process", f(b.processMs), f(w.processMs)],
    ]));
    out.push("");
  }
  const p = r.parallel;
  out.push(
    `### 2. Parallel ADD: ${p.pods} pods at once, wall time to all ready, ms (${p.reps} repetitions)\n`,
  );
  out.push(table(["", "ebpfcni", "bridge", "ratio (median)"], [
    ["ADD, median", fmt(p.medianAdd.ebpfcni), fmt(p.medianAdd.bridge), fmt(p.medianAdd.ratio)],
    [
      "ADD, all runs",
      p.addWallMs.ebpfcni.map((x) => fmt(x, 0)).join(", "),
      p.addWallMs.bridge.map((x) => fmt(x, 0)).join(", "),
      "",
    ],
    [
      "CPU time per pod during the parallel ADD (machine-wide /proc/stat), median",
      fmt(p.addCpuMsPerPod.medianEbpfcni, 1),
      fmt(p.addCpuMsPerPod.medianBridge, 1),
      fmt(p.addCpuMsPerPod.medianEbpfcni / p.addCpuMsPerPod.medianBridge),
    ],
    [
      "DEL (same pods at once), median",
      fmt(p.medianDel.ebpfcni),
      fmt(p.medianDel.bridge),
      fmt(p.medianDel.ratio),
    ],
  ]));
  out.push("");
  const m = r.memory;
  out.push(`### 5. Peak RSS of one ADD (/usr/bin/time %M, ${m.runs} runs each), KiB\n`);
  out.push(table(["", "median KiB", "all runs"], [
    ["ebpfcni ADD", fmt(m.medianKb.ebpfcni, 0), m.addMaxRssKb.ebpfcni.join(", ")],
    [
      "bridge ADD (largest of bridge, host-local)",
      fmt(m.medianKb.bridge, 0),
      m.addMaxRssKb.bridge.join(", "),
    ],
    ["Deno floor (empty script)", fmt(m.medianKb.floor, 0), m.floorMaxRssKb.join(", ")],
    ["ratio ebpfcni/bridge", fmt(m.medianKb.ratio), ""],
  ]));
  return out.join("\n");
}
