// Benchmark 6: launcher levers. The same bundle run through variants of the launcher that
// scripts/build.sh writes, side by side in one run: as built, without the V8 flags the build
// adds, and with other flags a short-lived process might want. Each variant gets its own
// DENO_DIR (a fresh temporary one), because V8 rejects a code cache made under other flags:
// variants sharing one cache would keep invalidating each other's. Per variant: the start-up
// floor (the empty script through the same variant), ADD and DEL of pods on one network,
// calls shuffled across variants in every round, medians. Needs the launcher (a compiled
// binary has its flags baked in: the section is skipped then).
import { BenchNet } from "./cni.ts";
import type { Launcher } from "./launcher.ts";
import { BINARY, fmt, log, median, ROOT, run, table, tempDir } from "./lib.ts";

export interface LeverOpts {
  rounds: number;
}

export interface LeverVariant {
  name: string;
  /** The deno flags of the variant beyond --quiet --no-prompt --cached-only --no-config. */
  flags: string;
  floorMs: number[];
  addMs: number[];
  delMs: number[];
}

export interface LeversResult {
  rounds: number;
  variants: LeverVariant[];
}

/** V8 flags the build put in the launcher, e.g. ["--v8-flags=--no-lazy"]. */
function builtV8Flags(text: string): string[] {
  return text.match(/--v8-flags=\S+/g) ?? [];
}

export async function leversBench(
  opts: LeverOpts,
  launcher: Launcher,
  net: BenchNet,
): Promise<LeversResult | undefined> {
  if (launcher.kind !== "launcher") return undefined;
  const text = Deno.readTextFileSync(BINARY);
  const built = builtV8Flags(text);
  const plain = built.reduce((t, f) => t.replace(` ${f}`, ""), text);
  const specs: { name: string; text: string }[] = [
    { name: `as built${built.length ? ` (${built.join(" ")})` : ""}`, text },
  ];
  if (built.length) specs.push({ name: "without the build's V8 flags", text: plain });
  const withFlags = (flags: string) => plain.replace(/ --allow-all /, ` --allow-all ${flags} `);
  specs.push(
    { name: "+ --v8-flags=--no-lazy,--jitless", text: withFlags("--v8-flags=--no-lazy,--jitless") },
    {
      name: "+ --v8-flags=--no-lazy,--single-threaded",
      text: withFlags("--v8-flags=--no-lazy,--single-threaded"),
    },
    { name: "+ --no-code-cache", text: withFlags("--no-code-cache") },
  );
  const dir = tempDir("levers");
  const variants = specs.map((s, i) => {
    // A private DENO_DIR: the bundle has no remote dependencies, so an empty one works.
    const denoDir = `${dir}/deno-dir-${i}`;
    Deno.mkdirSync(denoDir);
    const body = s.text.replace(/DENO_DIR="[^"]*"/, `DENO_DIR="${denoDir}"`);
    const exe = `${dir}/ebpfcni-${i}`;
    Deno.writeTextFileSync(exe, body);
    Deno.chmodSync(exe, 0o755);
    const floor = `${dir}/floor-${i}`;
    Deno.writeTextFileSync(
      floor,
      body.replaceAll(`"${launcher.entry}"`, `"${ROOT}/bench/_empty.ts"`),
    );
    Deno.chmodSync(floor, 0o755);
    const flags = /--no-config\s+\\?\s*(.*?)\s+"/s.exec(body)?.[1]?.replace(/\\\n\s*/g, "") ?? "";
    return { name: s.name, flags, exe, floor };
  });

  const pods = await net.makePods(opts.rounds * variants.length + 2);
  // The first ADD loads the datapath; then every variant fills its code cache.
  await net.call("ADD", pods[0]!);
  await net.call("DEL", pods[0]!);
  for (const v of variants) {
    for (let i = 0; i < 2; i++) {
      await net.call("ADD", pods[1]!, v.exe);
      await net.call("DEL", pods[1]!, v.exe);
      await run(v.floor, [], { clearEnv: true });
    }
  }
  log(`levers: ${variants.length} launcher variants x ${opts.rounds} ADD/DEL, shuffled`);
  const out: LeverVariant[] = variants.map((v) => ({
    name: v.name,
    flags: v.flags,
    floorMs: [],
    addMs: [],
    delMs: [],
  }));
  const added: { pod: (typeof pods)[number]; k: number }[] = [];
  let next = 2;
  for (let r = 0; r < opts.rounds; r++) {
    const order = variants.map((_, k) => k).sort(() => Math.random() - 0.5);
    for (const k of order) {
      const pod = pods[next++]!;
      out[k]!.addMs.push((await net.call("ADD", pod, variants[k]!.exe)).ms);
      added.push({ pod, k });
      const f = await run(variants[k]!.floor, [], { clearEnv: true });
      if (f.code !== 0) throw new Error(`floor of variant ${variants[k]!.name} failed`);
      out[k]!.floorMs.push(f.ms);
    }
  }
  for (const { pod, k } of added) {
    out[k]!.delMs.push((await net.call("DEL", pod, variants[k]!.exe)).ms);
  }
  return { rounds: opts.rounds, variants: out };
}

export function leversTables(r: LeversResult): string {
  const base = r.variants[0]!;
  const bAdd = median(base.addMs) - median(base.floorMs);
  const bDel = median(base.delMs) - median(base.floorMs);
  const rows = r.variants.map((v) => {
    const fl = median(v.floorMs);
    const add = median(v.addMs);
    const del = median(v.delMs);
    return [
      v.name,
      fmt(fl),
      fmt(add),
      fmt(add - fl),
      v === base ? "" : fmt(add - fl - bAdd),
      fmt(del),
      fmt(del - fl),
      v === base ? "" : fmt(del - fl - bDel),
    ];
  });
  return [
    `### 6. Launcher levers: the same bundle through launcher variants, each with its own ` +
    `DENO_DIR (${r.rounds} ADD/DEL each, shuffled per round), medians, ms\n`,
    table([
      "variant",
      "floor",
      "ADD",
      "ADD - floor",
      "vs as built",
      "DEL",
      "DEL - floor",
      "vs as built",
    ], rows),
  ].join("\n");
}
