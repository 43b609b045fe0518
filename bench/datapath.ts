// Benchmark 3: the datapath between two pods on the same bridge.
//   - TCP throughput: iperf3, one stream, client in pod A, server in pod B.
//   - Request/response latency: ICMP echo RTT, `ping -c N -i 0.01` from A to B (rtt avg).
// Variants, alternated within each round (order rotates):
//   bridge     two pods of the reference bridge plugin (no classifier, no clsact qdisc);
//   nofilter   the two ebpfcni pods with the classifier removed (`tc filter del ... ingress`
//              on both host veths; the clsact qdisc stays);
//   ebpfcni    the same ebpfcni pods with the classifier attached, policy_map holding N
//              entries (N = 10, 1,000, 50,000): the two allow entries the pods need
//              (A->B and B->A) plus fillers for unrelated identity pairs.
// Every packet either pod sends goes through the classifier on its host veth's ingress.
// With affinity "same" (the default) the iperf3 client and server are both pinned to CPU 0
// (iperf3 -A 0): the sender, the receiver and the whole veth/bridge path (softirq runs on
// the sending CPU for veth) then share one core, so throughput is CPU-bound on that core and
// the classifier's cost shows fully in it; it also cuts the run-to-run spread on this 2-vCPU
// VM from ~11% to ~4% (coefficient of variation). "none" leaves placement to the scheduler.
// Throughput/latency rounds run with kernel.bpf_stats_enabled=0; then one extra run per size
// with it set to 1 reads run_time_ns/run_cnt of the program (ns per invocation).
import { BenchNet, type Pod } from "./cni.ts";
import { fmt, log, median, onCleanup, quantile, run, sh, sleep, table } from "./lib.ts";
import { ensureDatapath } from "../src/datapath/loader.ts";
import { ConfigMap, PolicyMap, readStats } from "../src/datapath/maps.ts";
import { CFG_CONNTRACK, CONFIG_MAP } from "../src/spec/bpf_layout.ts";

export interface DatapathOpts {
  sizes: number[];
  rounds: number;
  iperfSeconds: number;
  pings: number;
  affinity: "same" | "none";
}

type Variant = "bridge" | "nofilter" | "ebpfcni" | "ebpfcni_ct";
/** ebpfcni_ct: the same pods and entries with config_map's conntrack flag on (identity mode
 * with "conntrack": true; kubernetes mode always tracks): established flows pass on their
 * ct_map entry. */
const VARIANTS: Variant[] = ["bridge", "nofilter", "ebpfcni", "ebpfcni_ct"];

interface Sample {
  gbps: number;
  rttUs: number;
}

export interface SizeResult {
  entries: number;
  samples: Record<Variant, Sample[]>;
  medianGbps: Record<Variant, number>;
  medianRttUs: Record<Variant, number>;
  /** ebpfcni / nofilter and ebpfcni / bridge: ratio of the medians, and the median of the
   * per-round ratios (the variants of one round run back to back). */
  throughputRatio: {
    vsNoFilter: number;
    vsBridge: number;
    pairedVsNoFilter: number;
    pairedVsBridge: number;
    /** With conntrack: ebpfcni_ct / nofilter, per-round median. */
    ctPairedVsNoFilter: number;
  };
  rttRatio: { vsNoFilter: number; vsBridge: number; ctVsNoFilter: number };
  target97: boolean;
  target97Ct: boolean;
  bpfStats: {
    iperf: {
      runCnt: number;
      runTimeNs: number;
      nsPerRun: number;
      bytesPerRun: number;
      gbps: number;
      /** run_time_ns over the iperf3 run's duration: share of one CPU spent in the classifier. */
      cpuShare: number;
    };
    ping: { runCnt: number; runTimeNs: number; nsPerRun: number };
  };
  /** The same with conntrack on. */
  bpfStatsCt: SizeResult["bpfStats"];
  verdicts: Record<string, string>;
}

export interface DatapathResult {
  iperfSeconds: number;
  /** "same": iperf3 client and server pinned to CPU 0; "none": not pinned (absent: none). */
  affinity?: "same" | "none";
  rounds: number;
  pings: number;
  progId: number;
  sizes: SizeResult[];
}

const IPERF_PORT = 5201;

async function podExec(pod: Pod, cmd: string[], timeoutMs: number) {
  return await run("ip", ["netns", "exec", pod.netns, ...cmd], { timeoutMs });
}

/** Starts `iperf3 -s` in `pod` (killed at cleanup, by its pid). */
/** iperf3 CPU affinity arguments (set from the options). */
let affinityArgs: string[] = [];

async function startIperfServer(pod: Pod): Promise<void> {
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", pod.netns, "iperf3", "-s", "-p", String(IPERF_PORT), ...affinityArgs],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  onCleanup(`iperf3 server ${child.pid}`, async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    const t = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    }, 3000);
    await child.status;
    clearTimeout(t);
  });
  await sleep(300);
}

/** One iperf3 run, retried while the server is still busy with the previous one. */
async function iperf(
  from: Pod,
  to: Pod,
  seconds: number,
): Promise<{ gbps: number; bytes: number }> {
  for (let attempt = 0;; attempt++) {
    const res = await podExec(from, [
      "iperf3",
      "-c",
      to.ip!,
      "-p",
      String(IPERF_PORT),
      "-t",
      String(seconds),
      "-J",
      ...affinityArgs,
    ], (seconds + 20) * 1000);
    if (res.code === 0) {
      const j = JSON.parse(res.stdout) as {
        end: { sum_received: { bits_per_second: number }; sum_sent: { bytes: number } };
      };
      return { gbps: j.end.sum_received.bits_per_second / 1e9, bytes: j.end.sum_sent.bytes };
    }
    if (attempt === 9) {
      throw new Error(
        `iperf3 ${from.ip} -> ${to.ip} failed: ${res.stdout.slice(0, 400)} ${res.stderr}`,
      );
    }
    await sleep(300);
  }
}

async function pingRtt(from: Pod, to: Pod, count: number): Promise<number> {
  const res = await podExec(from, [
    "ping",
    "-q",
    "-c",
    String(count),
    "-i",
    "0.01",
    "-W",
    "1",
    to.ip!,
  ], 60_000);
  const m = /= [\d.]+\/([\d.]+)\/[\d.]+\/[\d.]+ ms/.exec(res.stdout);
  if (res.code !== 0 || !m) {
    throw new Error(`ping ${from.ip} -> ${to.ip} failed: ${res.stdout} ${res.stderr}`);
  }
  return Number(m[1]) * 1000;
}

async function progStats(id: number): Promise<{ runTimeNs: number; runCnt: number }> {
  const j = JSON.parse(await sh("bpftool", "prog", "show", "id", String(id), "-j")) as {
    run_time_ns?: number;
    run_cnt?: number;
  };
  return { runTimeNs: j.run_time_ns ?? 0, runCnt: j.run_cnt ?? 0 };
}

async function setBpfStats(on: boolean): Promise<void> {
  await sh("sysctl", "-q", "-w", `kernel.bpf_stats_enabled=${on ? 1 : 0}`);
}

export async function datapathBench(
  opts: DatapathOpts,
  e: BenchNet,
  r: BenchNet,
): Promise<DatapathResult> {
  affinityArgs = opts.affinity === "same" ? ["-A", "0"] : [];
  const [ea, eb] = await e.makePods(2, 1001);
  const [ra, rb] = await r.makePods(2, 1001);
  for (const [net, p] of [[e, ea], [e, eb], [r, ra], [r, rb]] as const) await net.call("ADD", p!);
  const veths = [ea!.hostVeth!, eb!.hostVeth!];

  const dp = ensureDatapath(e.pinDir);
  onCleanup("close datapath fds", () => dp.close());
  const policies = new PolicyMap(dp.policyFd);
  const progId = dp.progId;
  const attached = await sh("tc", "filter", "show", "dev", veths[0]!, "ingress");
  if (!attached.includes(`id ${progId} `)) {
    throw new Error(`program ${progId} is not attached to ${veths[0]}: ${attached}`);
  }
  // Allow both directions for the two pods' identities (there is no connection tracking).
  policies.allowMany([
    { src: ea!.identity, dst: eb!.identity },
    { src: eb!.identity, dst: ea!.identity },
  ]);
  let filled = 2;
  const filler = (i: number) => ({ src: 5_000_000 + i, dst: 6_000_000 + i });
  const fillTo = (n: number) => {
    const more = [];
    for (let i = filled; i < n; i++) more.push(filler(i));
    for (let at = 0; at < more.length; at += 16384) policies.allowMany(more.slice(at, at + 16384));
    // Sizes may also shrink (--dp-sizes=1000,10): drop the fillers above n.
    const fewer = [];
    for (let i = n; i < filled; i++) fewer.push(filler(i));
    for (let at = 0; at < fewer.length; at += 16384) {
      policies.deleteMany(fewer.slice(at, at + 16384));
    }
    filled = n;
    const have = policies.pairs().length;
    if (have !== n) throw new Error(`policy_map holds ${have} entries, expected ${n}`);
  };

  const origStats = (await sh("sysctl", "-n", "kernel.bpf_stats_enabled")).trim();
  onCleanup(
    "restore kernel.bpf_stats_enabled",
    () => sh("sysctl", "-q", "-w", `kernel.bpf_stats_enabled=${origStats}`).then(() => {}),
  );
  await setBpfStats(false);

  const filterOff = async () => {
    for (const v of veths) await sh("tc", "filter", "del", "dev", v, "ingress");
  };
  const filterOn = async () => {
    for (const v of veths) {
      await sh(
        "tc",
        "filter",
        "replace",
        "dev",
        v,
        "ingress",
        "pref",
        "1",
        "handle",
        "1",
        "bpf",
        "direct-action",
        "object-pinned",
        `${e.pinDir}/tc_prog`,
      );
      const now = await sh("tc", "filter", "show", "dev", v, "ingress");
      if (!now.includes(`id ${progId} `)) throw new Error(`re-attach on ${v} failed: ${now}`);
    }
  };

  // Reachability with the classifier (proves the allow entries work) and without.
  for (const [a, b] of [[ea, eb], [eb, ea], [ra, rb]] as const) {
    await pingRtt(a!, b!, 3);
  }

  await startIperfServer(eb!);
  await startIperfServer(rb!);
  const pods: Record<Variant, [Pod, Pod]> = {
    bridge: [ra!, rb!],
    nofilter: [ea!, eb!],
    ebpfcni: [ea!, eb!],
    ebpfcni_ct: [ea!, eb!],
  };
  const configMap = new ConfigMap(dp.fd(CONFIG_MAP));
  const originalConfig = configMap.get();
  onCleanup("restore config_map", () => configMap.set(originalConfig));
  const setConntrack = (on: boolean) => {
    const c = configMap.get();
    configMap.set({ ...c, flags: on ? c.flags | CFG_CONNTRACK : c.flags & ~CFG_CONNTRACK });
  };

  const results: SizeResult[] = [];
  let filterAttached = true;
  for (const size of opts.sizes) {
    fillTo(size);
    log(
      `datapath: policy_map with ${size} entries, ${opts.rounds} rounds x ${VARIANTS.length} variants`,
    );
    const samples: Record<Variant, Sample[]> = {
      bridge: [],
      nofilter: [],
      ebpfcni: [],
      ebpfcni_ct: [],
    };
    for (let round = 0; round < opts.rounds; round++) {
      const order = VARIANTS.map((_, i) => VARIANTS[(i + round) % VARIANTS.length]!);
      for (const v of order) {
        if (v === "nofilter" && filterAttached) {
          await filterOff();
          filterAttached = false;
        }
        if ((v === "ebpfcni" || v === "ebpfcni_ct") && !filterAttached) {
          await filterOn();
          filterAttached = true;
        }
        setConntrack(v === "ebpfcni_ct");
        const [a, b] = pods[v];
        const { gbps } = await iperf(a, b, opts.iperfSeconds);
        const rttUs = await pingRtt(a, b, opts.pings);
        samples[v].push({ gbps, rttUs });
      }
    }
    if (!filterAttached) {
      await filterOn();
      filterAttached = true;
    }

    // Per-invocation cost from the kernel's BPF run-time statistics, conntrack off and on.
    const bpfCost = async () => {
      await setBpfStats(true);
      let s0 = await progStats(progId);
      const ip = await iperf(ea!, eb!, opts.iperfSeconds);
      let s1 = await progStats(progId);
      const iperfStats = {
        runCnt: s1.runCnt - s0.runCnt,
        runTimeNs: s1.runTimeNs - s0.runTimeNs,
        nsPerRun: 0,
        bytesPerRun: 0,
        gbps: ip.gbps,
        cpuShare: (s1.runTimeNs - s0.runTimeNs) / (opts.iperfSeconds * 1e9),
      };
      iperfStats.nsPerRun = iperfStats.runTimeNs / iperfStats.runCnt;
      iperfStats.bytesPerRun = ip.bytes / iperfStats.runCnt;
      s0 = await progStats(progId);
      await pingRtt(ea!, eb!, opts.pings);
      s1 = await progStats(progId);
      const pingStats = {
        runCnt: s1.runCnt - s0.runCnt,
        runTimeNs: s1.runTimeNs - s0.runTimeNs,
        nsPerRun: 0,
      };
      pingStats.nsPerRun = pingStats.runTimeNs / pingStats.runCnt;
      await setBpfStats(false);
      return { iperf: iperfStats, ping: pingStats };
    };
    setConntrack(false);
    const bpfStats = await bpfCost();
    setConntrack(true);
    const bpfStatsCt = await bpfCost();
    setConntrack(false);

    const verdicts: Record<string, string> = {};
    for (const [k, v] of Object.entries(readStats(dp.statsFd))) verdicts[k] = String(v);

    const med = (v: Variant, k: keyof Sample) => median(samples[v].map((s) => s[k]));
    const medianGbps = {
      bridge: med("bridge", "gbps"),
      nofilter: med("nofilter", "gbps"),
      ebpfcni: med("ebpfcni", "gbps"),
      ebpfcni_ct: med("ebpfcni_ct", "gbps"),
    };
    const medianRttUs = {
      bridge: med("bridge", "rttUs"),
      nofilter: med("nofilter", "rttUs"),
      ebpfcni: med("ebpfcni", "rttUs"),
      ebpfcni_ct: med("ebpfcni_ct", "rttUs"),
    };
    const vsNoFilter = medianGbps.ebpfcni / medianGbps.nofilter;
    const paired = (base: Variant, of: Variant = "ebpfcni") =>
      median(samples[of].map((x, i) => x.gbps / samples[base][i]!.gbps));
    const pairedVsNoFilter = paired("nofilter");
    const ctPairedVsNoFilter = paired("nofilter", "ebpfcni_ct");
    results.push({
      entries: size,
      samples,
      medianGbps,
      medianRttUs,
      throughputRatio: {
        vsNoFilter,
        vsBridge: medianGbps.ebpfcni / medianGbps.bridge,
        pairedVsNoFilter,
        pairedVsBridge: paired("bridge"),
        ctPairedVsNoFilter,
      },
      rttRatio: {
        vsNoFilter: medianRttUs.ebpfcni / medianRttUs.nofilter,
        vsBridge: medianRttUs.ebpfcni / medianRttUs.bridge,
        ctVsNoFilter: medianRttUs.ebpfcni_ct / medianRttUs.nofilter,
      },
      target97: pairedVsNoFilter >= 0.97,
      target97Ct: ctPairedVsNoFilter >= 0.97,
      bpfStats,
      bpfStatsCt,
      verdicts,
    });
  }
  return {
    iperfSeconds: opts.iperfSeconds,
    affinity: opts.affinity,
    rounds: opts.rounds,
    pings: opts.pings,
    progId,
    sizes: results,
  };
}

export function datapathTables(d: DatapathResult): string {
  const out: string[] = [];
  out.push(
    `### 3. Datapath between two pods on one bridge (iperf3 ${d.iperfSeconds} s x ${d.rounds} rounds per variant, ` +
      (d.affinity === "same"
        ? "client and server pinned to CPU 0; "
        : "client and server not pinned; ") +
      `ICMP echo RTT avg of ping -c ${d.pings} -i 0.01), medians\n`,
  );
  out.push(table(
    [
      "policy entries",
      "bridge Gbit/s",
      "ebpfcni no filter Gbit/s",
      "ebpfcni Gbit/s",
      "ebpfcni / no filter (per-round median)",
      "ebpfcni / no filter (of medians)",
      "ebpfcni / bridge (per-round median)",
      "target >= 0.97 (per-round)",
    ],
    d.sizes.map((s) => [
      s.entries.toLocaleString("en-US"),
      fmt(s.medianGbps.bridge),
      fmt(s.medianGbps.nofilter),
      fmt(s.medianGbps.ebpfcni),
      fmt(s.throughputRatio.pairedVsNoFilter, 4),
      fmt(s.throughputRatio.vsNoFilter, 4),
      fmt(s.throughputRatio.pairedVsBridge, 4),
      s.target97 ? "met" : "NOT met",
    ]),
  ));
  out.push("");
  out.push(table(
    [
      "policy entries",
      "bridge RTT us",
      "ebpfcni no filter RTT us",
      "ebpfcni RTT us",
      "ebpfcni / no filter",
      "ebpfcni / bridge",
    ],
    d.sizes.map((s) => [
      s.entries.toLocaleString("en-US"),
      fmt(s.medianRttUs.bridge, 1),
      fmt(s.medianRttUs.nofilter, 1),
      fmt(s.medianRttUs.ebpfcni, 1),
      fmt(s.rttRatio.vsNoFilter, 3),
      fmt(s.rttRatio.vsBridge, 3),
    ]),
  ));
  out.push("");
  out.push(
    "Classifier cost from kernel.bpf_stats_enabled (run_time_ns / run_cnt of the program):\n",
  );
  out.push(table(
    [
      "policy entries",
      "ns/run during iperf3",
      "bytes/run (GSO)",
      "runs (iperf3)",
      "Gbit/s (that run)",
      "CPU in classifier",
      "ns/run during ping",
      "runs (ping)",
    ],
    d.sizes.map((s) => [
      s.entries.toLocaleString("en-US"),
      fmt(s.bpfStats.iperf.nsPerRun, 1),
      fmt(s.bpfStats.iperf.bytesPerRun, 0),
      String(s.bpfStats.iperf.runCnt),
      fmt(s.bpfStats.iperf.gbps),
      `${fmt(s.bpfStats.iperf.cpuShare * 100, 2)}% of one CPU`,
      fmt(s.bpfStats.ping.nsPerRun, 1),
      String(s.bpfStats.ping.runCnt),
    ]),
  ));
  out.push("");
  out.push(
    "With conntrack on (config_map's flag; identity mode's `\"conntrack\": true`, always in " +
      "kubernetes mode): established packets pass on their ct_map entry. Target: ns/run <= 300 " +
      "and throughput >= 0.97 of no filter:\n",
  );
  out.push(table(
    [
      "policy entries",
      "ebpfcni+ct Gbit/s",
      "ebpfcni+ct / no filter (per-round median)",
      "target >= 0.97",
      "ns/run during iperf3, ct on",
      "ct off",
      "target <= 300 ns (ct on)",
      "ns/run during ping, ct on",
      "RTT us, ct on",
      "RTT ct on / no filter",
    ],
    d.sizes.map((s) => [
      s.entries.toLocaleString("en-US"),
      fmt(s.medianGbps.ebpfcni_ct),
      fmt(s.throughputRatio.ctPairedVsNoFilter, 4),
      s.target97Ct ? "met" : "NOT met",
      fmt(s.bpfStatsCt.iperf.nsPerRun, 1),
      fmt(s.bpfStats.iperf.nsPerRun, 1),
      s.bpfStatsCt.iperf.nsPerRun <= 300 ? "met" : "NOT met",
      fmt(s.bpfStatsCt.ping.nsPerRun, 1),
      fmt(s.medianRttUs.ebpfcni_ct, 1),
      fmt(s.rttRatio.ctVsNoFilter, 3),
    ]),
  ));
  out.push("");
  // Every round of every size pooled: the classifier's per-run cost does not depend on the
  // map size (see the table above), so this is the same quantity with 3x the samples.
  const ratios = d.sizes.flatMap((s) =>
    s.samples.ebpfcni.map((x, i) => x.gbps / s.samples.nofilter[i]!.gbps)
  );
  if (ratios.length) {
    out.push(
      `All sizes pooled: ebpfcni / no filter per round, n=${ratios.length}: median ${
        fmt(median(ratios), 4)
      }, quartiles ${fmt(quantile(ratios, 0.25), 4)} .. ${fmt(quantile(ratios, 0.75), 4)}, ` +
        `mean ${fmt(ratios.reduce((a, b) => a + b, 0) / ratios.length, 4)}.`,
    );
    out.push(
      d.affinity === "same"
        ? "With everything on one CPU, the throughput the classifier costs is about its share of that " +
          "CPU: expected ebpfcni / no filter = 1 - (CPU in classifier) = " +
          d.sizes.map((s) => fmt(1 - s.bpfStats.iperf.cpuShare, 4)).join(", ") +
          " for the sizes above.\n"
        : "",
    );
  }
  out.push("Throughput samples (Gbit/s, in round order):\n");
  out.push(table(
    ["policy entries", "bridge", "no filter", "ebpfcni", "ebpfcni+ct"],
    d.sizes.map((s) => [
      s.entries.toLocaleString("en-US"),
      ...(["bridge", "nofilter", "ebpfcni", "ebpfcni_ct"] as const).map((v) =>
        s.samples[v].map((x) => fmt(x.gbps, 1)).join(", ")
      ),
    ]),
  ));
  const last = d.sizes[d.sizes.length - 1];
  if (last) {
    out.push("");
    out.push(
      `stats_map verdict counters after the run: ${
        Object.entries(last.verdicts).map(([k, v]) => `${k}=${v}`).join(", ")
      }`,
    );
  }
  return out.join("\n");
}
