// The tables of a benchmark run, from its results (bench/run.ts prints them at the end of a
// run). Standalone it re-renders a saved run:
//   deno run --allow-read bench/report.ts [bench/results.json]
import { type DatapathResult, datapathTables } from "./datapath.ts";
import { type LatencyResult, latencyTables } from "./latency.ts";
import { type LeversResult, leversTables } from "./levers.ts";
import { type PolicyResult, policyTables } from "./policy.ts";

export interface Results {
  quick: boolean;
  runId: string;
  machine: {
    kernel: string;
    nproc: number;
    memTotalMiB: number;
    cpuModel: string;
    deno: string | undefined;
    referencePlugin: string;
    iperf3: string | undefined;
    bpftool: string | undefined;
    binary: string;
    binaryKind: string;
    launcher: string;
    commit: string;
    worktreeDirty: boolean;
    date: string;
  };
  options: unknown;
  durationS?: number;
  /** CPU busy share (other work) just before each section, and load averages. */
  load: { before: Record<string, number>; loadAvgStart: string; loadAvgEnd?: string };
  /** Start-up floor used for the policy section when the latency section did not run. */
  floorMs?: number;
  latency?: LatencyResult;
  levers?: LeversResult;
  policy?: PolicyResult;
  datapath?: DatapathResult;
}

export function render(results: Results, out: string): string {
  const lines: string[] = [];
  const m = results.machine;
  lines.push(
    `## ebpfcni benchmark, run ${results.runId}${
      results.quick ? " (QUICK MODE: smoke test, not for reporting)" : ""
    }\n`,
  );
  lines.push(
    `machine: ${m.kernel}, ${m.nproc} CPUs (${m.cpuModel}), ${m.memTotalMiB} MiB; ${m.deno}; ` +
      `binary: ${m.binaryKind}; commit ${m.commit}${
        m.worktreeDirty ? " + uncommitted changes" : ""
      }; ${m.date}`,
  );
  lines.push(`launcher: ${m.launcher}\n`);
  const busy = Object.entries(results.load.before).map(([k, v]) => `${k} ${Math.round(v * 100)}%`);
  lines.push(
    `CPU busy with other work before each section: ${busy.join(", ")}; load average at start ` +
      `${results.load.loadAvgStart}, at end ${results.load.loadAvgEnd}\n`,
  );
  const sections: string[] = [];
  if (results.latency) sections.push(latencyTables(results.latency));
  if (results.levers) sections.push(leversTables(results.levers));
  const floorMs = results.latency?.floor.median ?? results.floorMs ?? NaN;
  if (results.policy) sections.push(policyTables(results.policy, floorMs));
  if (results.datapath) sections.push(datapathTables(results.datapath));
  lines.push(sections.join("\n\n"));
  lines.push(`\nraw numbers: ${out}; took ${results.durationS} s`);
  return lines.join("\n");
}

if (import.meta.main) {
  const file = Deno.args[0] ?? new URL("./results.json", import.meta.url).pathname;
  console.log(render(JSON.parse(Deno.readTextFileSync(file)) as Results, file));
}
