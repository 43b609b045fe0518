// How many CPUs the kernel could ever bring online: per-CPU map values hold one slot for each
// (what libbpf_num_possible_cpus() reads, without loading libbpf).

/** Parses a kernel CPU list ("0-3,5") into the count of CPUs it names up to its highest: per-
 * CPU values are indexed 0..max, holes included. */
export function parsePossibleCpus(text: string): number {
  let max = -1;
  for (const part of text.trim().split(",")) {
    const m = part.match(/^(\d+)(?:-(\d+))?$/);
    if (!m) throw new Error(`Cannot parse CPU list "${text.trim()}"`);
    max = Math.max(max, Number(m[2] ?? m[1]));
  }
  return max + 1;
}

let cached: number | undefined;

export function possibleCpus(): number {
  return cached ??= parsePossibleCpus(
    Deno.readTextFileSync("/sys/devices/system/cpu/possible"),
  );
}
