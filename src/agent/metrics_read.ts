// What the metrics read at scrape time from the kernel and /proc: the datapath's counters
// (stats_map, summed over CPUs) and the fill of every map that holds entries, through the
// agent's open fds; and the process's figures. Nothing here writes.
import type { Datapath } from "../datapath/loader.ts";
import { holdsEntries, MAPS, type StatName, STATS_MAP } from "../spec/bpf_layout.ts";
import { countEntries, readStats } from "../datapath/maps.ts";
import type { MapFill, ProcessFigures } from "./metrics.ts";
import { cpuUsage } from "node:process";

export function datapathStats(dp: Datapath): Partial<Record<StatName, bigint>> {
  return dp.maps.has(STATS_MAP.name) ? readStats(dp.fd(STATS_MAP)) : {};
}

/** The fill of every map that holds entries. `known`: entry counts the agent keeps itself, by
 * map name (the maps it writes, whose contents it mirrors: counting an LPM trie of 70,000
 * rules takes a syscall per key, 100 ms and more on the agent's one thread). Maps an older
 * build's pin directory lacks are left out. */
export function datapathMaps(dp: Datapath, known: ReadonlyMap<string, number>): MapFill[] {
  return MAPS.filter((spec) => holdsEntries(spec) && dp.maps.has(spec.name)).map((spec) => ({
    map: spec.name,
    entries: known.get(spec.name) ?? countEntries(dp.fd(spec), spec),
    capacity: spec.maxEntries,
  }));
}

function readOr(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

export function processFigures(): ProcessFigures {
  const cpu = cpuUsage();
  const mem = Deno.memoryUsage();
  const out: ProcessFigures = {
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    residentBytes: mem.rss,
    heapBytes: mem.heapUsed,
    startTimeSeconds: performance.timeOrigin / 1000,
  };
  // In kB (statm counts pages, whose size depends on the architecture).
  const vm = readOr("/proc/self/status")?.match(/^VmSize:\s+(\d+) kB/m);
  if (vm) out.virtualBytes = Number(vm[1]) * 1024;
  try {
    let n = 0;
    for (const _ of Deno.readDirSync("/proc/self/fd")) n++;
    out.openFds = n;
  } catch {
    // no /proc
  }
  const limit = readOr("/proc/self/limits")?.match(/^Max open files\s+(\d+)/m);
  if (limit) out.maxFds = Number(limit[1]);
  return out;
}
