// Benchmark 4: policy updates.
//   - `ebpfcni policy allow --src A --dst B --pin-dir DIR`, one process end to end, vs the
//     reference `bpftool map update pinned DIR/policy_map key <8 bytes> value 1` (one
//     process), alternating, each with a new pair. Measured on a small map (a handful of
//     entries) and on a large one (60,000 entries): the target is the same cost on both
//     (allow and deny print what changed; the table only with --show). The same for
//     `ebpfcni policy deny` vs `bpftool map delete`, on pairs allowed beforehand.
//   - Bulk import of 60,000 new entries, all pairs among ~245 identities: `ebpfcni policy
//     import FILE` (one process, end to end, file already written), the batch API alone
//     (PolicyMap.allowMany in this process, and the raw mapUpdateBatch syscall path with
//     pre-encoded keys), and for scale the reference `bpftool batch file` with 60,000
//     `map update` lines. The CLI also imports a file of 60,000 pairs that share no identity
//     (each src once), the worst case for its de-duplication.
//   - `ebpfcni endpoint import FILE` of as many new entries as endpoint_map still takes
//     (it holds 16,384, so 60,000 cannot fit), and of a 60,000-entry file, which the CLI
//     validates whole and refuses (exit 1, nothing changed).
// All on a dedicated pin directory whose maps are created with ensureDatapath beforehand.
// Between bulk repetitions the map is emptied with denyMany (not timed).
import {
  BINARY,
  fmt,
  leBytes,
  log,
  median,
  pinDir,
  ROOT,
  run,
  summarize,
  type Summary,
  table,
} from "./lib.ts";
import { type Launcher, warm } from "./launcher.ts";
import { ensureDatapath } from "../src/datapath/loader.ts";
import { type Endpoint, EndpointMap, type Policy, PolicyMap } from "../src/datapath/maps.ts";
import { mapUpdateBatch } from "../ffi/bpf.ts";
import { encodePolicyKey, ENDPOINT_MAP, POLICY_ALLOW } from "../src/spec/bpf_layout.ts";

export interface PolicyOpts {
  allowRuns: number;
  allowRunsLarge: number;
  bulkEntries: number;
  bulkReps: number;
  breakdownRuns: number;
}

export interface PolicyResult {
  /** "cli" when `ebpfcni policy allow/import` worked, else "fallback" (see notes). */
  mode: "cli" | "fallback";
  notes: string[];
  allowSmall: { ebpfcni: Summary; bpftool: Summary; ratio: number; mapEntries: number };
  allowLarge: { ebpfcni: Summary; bpftool: Summary; ratio: number; mapEntries: number };
  /** `policy deny` vs `bpftool map delete`, on the small and on the large map (absent in
   * older results). */
  denySmall?: { ebpfcni: Summary; bpftool: Summary; ratio: number; mapEntries: number };
  denyLarge?: { ebpfcni: Summary; bpftool: Summary; ratio: number; mapEntries: number };
  /** `endpoint import FILE` end to end (absent in older results). endpoint_map holds
   * `maxEntries`, so the largest file that fits is imported; a 60,000-entry file is
   * validated whole and refused (exit 1, nothing changed), timed too. */
  endpointImport?: {
    maxEntries: number;
    entries: number;
    ms: number[];
    rate: number;
    oversizeEntries: number;
    oversizeMs: number[];
    oversizeRate: number;
  };
  bulk: {
    entries: number;
    reps: number;
    cliMs: number[];
    /** The CLI with the file whose pairs share no identity (absent in older results). */
    cliDistinctMs?: number[];
    apiMs: number[];
    rawBatchMs: number[];
    bpftoolBatchMs: number[];
    rate: {
      cli: number;
      cliBeyondFloor: number;
      api: number;
      rawBatch: number;
      bpftoolBatch: number;
    };
    target1M: { cli: boolean; api: boolean };
  };
  /** Steps of `policy import` timed in a fresh process (bench/_import_breakdown.ts), medians. */
  importBreakdown: {
    runs: number;
    medianMs: Record<string, number>;
    samples: Record<string, number>[];
    /** The same with the file whose pairs share no identity. */
    distinctMedianMs?: Record<string, number>;
    distinctSamples?: Record<string, number>[];
  };
}

function pairKeyArgs(p: Policy): string[] {
  return [...leBytes(p.src), ...leBytes(p.dst)];
}

/** `n` pairs, each with its own src and dst identity (no identity repeats). */
function entriesFor(n: number, base: number): Policy[] {
  const out: Policy[] = [];
  for (let i = 0; i < n; i++) out.push({ src: base + i, dst: base + 1_000_000 + i });
  return out;
}

/** `n` pairs among ceil(sqrt(n)) identities (every src to every dst, row by row): what a
 * policy set between a few hundred identities looks like. */
function denseEntries(n: number, base: number): Policy[] {
  const k = Math.ceil(Math.sqrt(n));
  const out: Policy[] = [];
  for (let i = 0; i < n; i++) out.push({ src: base + Math.floor(i / k), dst: base + (i % k) });
  return out;
}

function writePolicyFile(path: string, entries: readonly Policy[]): void {
  Deno.writeTextFileSync(
    path,
    `[\n${entries.map((p) => `  {"src":${p.src},"dst":${p.dst}}`).join(",\n")}\n]\n`,
  );
}

export async function policyBench(
  opts: PolicyOpts,
  launcher: Launcher,
  scratch: string,
  floorMedianMs: number,
): Promise<PolicyResult> {
  const dir = pinDir("policy");
  const dp = ensureDatapath(dir);
  const notes: string[] = [];
  try {
    const map = new PolicyMap(dp.policyFd);
    const count = () => map.pairs().length;

    // Is the CLI there? (It was being written while this suite was.)
    const probe = await run(BINARY, [
      "policy",
      "allow",
      "--src",
      "7",
      "--dst",
      "8",
      "--pin-dir",
      dir,
    ]);
    let mode: "cli" | "fallback" = "cli";
    let allowCmd = (
      p: Policy,
    ) => [
      BINARY,
      "policy",
      "allow",
      "--src",
      String(p.src),
      "--dst",
      String(p.dst),
      "--pin-dir",
      dir,
    ];
    let importCmd = (file: string) => [BINARY, "policy", "import", file, "--pin-dir", dir];
    if (probe.code !== 0 || !map.allowed(7, 8)) {
      mode = "fallback";
      notes.push(
        `ebpfcni policy allow failed (${probe.code}: ${probe.stderr.trim()}); used bench/_policy_cli.ts through the launcher instead`,
      );
      const exe = launcher.make(`${ROOT}/bench/_policy_cli.ts`, scratch, "policy-cli");
      await warm(exe, ["allow", "7", "8", dir]);
      allowCmd = (p: Policy) => [exe, "allow", String(p.src), String(p.dst), dir];
      importCmd = (file: string) => [exe, "import", file, dir];
    }
    map.allowMany(entriesFor(8, 10)); // a small table: the probe's entry + 8

    // policy allow vs bpftool map update (deny vs map delete), alternating, a new pair every
    // call; for deny, the pairs are allowed beforehand (not timed).
    const updateRound = async (verb: "allow" | "deny", runs: number, base: number) => {
      const e: number[] = [];
      const b: number[] = [];
      const pairs = Array.from({ length: runs }, (_, i) => ({
        pe: { src: base + 2 * i, dst: base + 2 * i + 100_000 },
        pb: { src: base + 2 * i + 1, dst: base + 2 * i + 100_001 },
      }));
      if (verb === "deny") map.allowMany(pairs.flatMap(({ pe, pb }) => [pe, pb]));
      const want = verb === "allow";
      for (const [i, { pe, pb }] of pairs.entries()) {
        const order = i % 2 === 0 ? ["e", "b"] : ["b", "e"];
        for (const w of order) {
          if (w === "e") {
            const [cmd, ...args] = verb === "allow" ? allowCmd(pe) : denyCmd(pe);
            const res = await run(cmd!, args, { timeoutMs: 60_000 });
            if (res.code !== 0 || map.allowed(pe.src, pe.dst) !== want) {
              throw new Error(`policy ${verb} failed: ${res.stderr}`);
            }
            e.push(res.ms);
          } else {
            const key = ["key", ...pairKeyArgs(pb)];
            const res = await run(
              "bpftool",
              verb === "allow"
                ? [
                  "map",
                  "update",
                  "pinned",
                  `${dir}/policy_map`,
                  ...key,
                  "value",
                  String(POLICY_ALLOW),
                ]
                : ["map", "delete", "pinned", `${dir}/policy_map`, ...key],
              { timeoutMs: 60_000 },
            );
            if (res.code !== 0 || map.allowed(pb.src, pb.dst) !== want) {
              throw new Error(
                `bpftool map ${verb === "allow" ? "update" : "delete"} failed: ${res.stderr}`,
              );
            }
            b.push(res.ms);
          }
        }
      }
      return { ebpfcni: summarize(e), bpftool: summarize(b) };
    };
    const allowRound = (runs: number, base: number) => updateRound("allow", runs, base);
    const denyCmd = (p: Policy) => [
      BINARY,
      "policy",
      "deny",
      "--src",
      String(p.src),
      "--dst",
      String(p.dst),
      "--pin-dir",
      dir,
    ];
    log(`policy allow vs bpftool map update: ${opts.allowRuns} each on a small map`);
    const smallEntries = count();
    const small = await allowRound(opts.allowRuns, 20_000_000);
    log(`policy deny vs bpftool map delete: ${opts.allowRuns} each on a small map`);
    const denySmallEntries = count();
    const denySmall = await updateRound("deny", opts.allowRuns, 25_000_000);

    // Bulk import files, as `policy list --json` prints them: the main one holds every pair
    // among ~245 identities; the second one the same number of pairs that share no identity
    // (each src once), a worst case for the import's per-src de-duplication.
    const bulk = denseEntries(opts.bulkEntries, 100_000_000);
    const file = `${scratch}/policies.json`;
    writePolicyFile(file, bulk);
    const distinct = entriesFor(opts.bulkEntries, 200_000_000);
    const distinctFile = `${scratch}/policies-distinct.json`;
    writePolicyFile(distinctFile, distinct);
    const batchFile = `${scratch}/policies.bpftool`;
    Deno.writeTextFileSync(
      batchFile,
      bulk.map((p) =>
        `map update pinned ${dir}/policy_map key ${pairKeyArgs(p).join(" ")} value 1\n`
      ).join(""),
    );
    const emptyDistinct = () => {
      for (let at = 0; at < distinct.length; at += 16384) {
        map.deleteMany(distinct.slice(at, at + 16384));
      }
    };
    const emptyBulk = () => {
      for (let at = 0; at < bulk.length; at += 16384) map.deleteMany(bulk.slice(at, at + 16384));
    };
    const baseline = count();
    const expectFull = (what: string) => {
      const n = count();
      if (n !== baseline + bulk.length) {
        throw new Error(`${what}: map has ${n} entries, expected ${baseline + bulk.length}`);
      }
    };

    log(
      `bulk: ${opts.bulkEntries} entries x ${opts.bulkReps} reps (CLI import, allowMany, raw batch, bpftool batch)`,
    );
    const cliMs: number[] = [];
    const cliDistinctMs: number[] = [];
    const apiMs: number[] = [];
    const rawMs: number[] = [];
    const bpftoolMs: number[] = [];
    const rawKeys = new Uint8Array(bulk.length * 8);
    bulk.forEach((p, i) => encodePolicyKey(p.src, p.dst, rawKeys, i * 8));
    const rawValues = new Uint8Array(bulk.length).fill(POLICY_ALLOW);
    const CHUNK = 16384;
    for (let rep = 0; rep < opts.bulkReps; rep++) {
      // CLI import, end to end.
      const [cmd, ...args] = importCmd(file);
      const res = await run(cmd!, args, { timeoutMs: 120_000 });
      if (res.code !== 0) throw new Error(`policy import failed (${res.code}): ${res.stderr}`);
      expectFull("after policy import");
      cliMs.push(res.ms);
      emptyBulk();

      // The same through the CLI with the distinct-identity file.
      const [dcmd, ...dargs] = importCmd(distinctFile);
      const dres = await run(dcmd!, dargs, { timeoutMs: 120_000 });
      if (dres.code !== 0) throw new Error(`policy import failed (${dres.code}): ${dres.stderr}`);
      if (count() !== baseline + distinct.length) throw new Error("distinct import incomplete");
      cliDistinctMs.push(dres.ms);
      emptyDistinct();

      // The batch API as the CLI uses it: allowMany in chunks of 16,384 (encode + syscalls).
      let t = performance.now();
      for (let at = 0; at < bulk.length; at += CHUNK) map.allowMany(bulk.slice(at, at + CHUNK));
      apiMs.push(performance.now() - t);
      expectFull("after allowMany");
      emptyBulk();

      // Syscalls only: keys encoded beforehand, same chunks.
      t = performance.now();
      for (let at = 0; at < bulk.length; at += CHUNK) {
        const n = Math.min(CHUNK, bulk.length - at);
        mapUpdateBatch(
          dp.policyFd,
          rawKeys.slice(at * 8, (at + n) * 8),
          rawValues.slice(at, at + n),
          n,
        );
      }
      rawMs.push(performance.now() - t);
      expectFull("after mapUpdateBatch");
      emptyBulk();

      // Reference: bpftool batch file (one process, one update syscall per line).
      const bres = await run("bpftool", ["batch", "file", batchFile], { timeoutMs: 300_000 });
      if (bres.code !== 0) throw new Error(`bpftool batch failed: ${bres.stderr.slice(0, 400)}`);
      expectFull("after bpftool batch");
      bpftoolMs.push(bres.ms);
      if (rep < opts.bulkReps - 1) emptyBulk();
    }

    // policy allow on the large map (60,000 + entries).
    log(
      `policy allow vs bpftool map update: ${opts.allowRunsLarge} each on a map of ${count()} entries`,
    );
    const largeEntries = count();
    const large = await allowRound(opts.allowRunsLarge, 30_000_000);
    log(`policy deny vs bpftool map delete: ${opts.allowRunsLarge} each on the large map`);
    const denyLargeEntries = count();
    const denyLarge = await updateRound("deny", opts.allowRunsLarge, 35_000_000);

    // endpoint import: the largest file endpoint_map takes, end to end, then a 60,000-entry
    // file (refused after whole-file validation: it cannot fit).
    const endpoints = new EndpointMap(dp.endpointFd);
    const epMax = ENDPOINT_MAP.maxEntries;
    const epFit = epMax - endpoints.list().length - 16;
    const epEntries = (n: number): Endpoint[] =>
      Array.from({ length: n }, (_, i) => ({ ip: 0xac100000 + i, identity: 5000 + (i % 997) }));
    const writeEndpointFile = (path: string, xs: Endpoint[]) =>
      Deno.writeTextFileSync(
        path,
        `[\n${
          xs.map((x) =>
            `  {"ip":"${x.ip >>> 24}.${(x.ip >>> 16) & 255}.${(x.ip >>> 8) & 255}.${
              x.ip & 255
            }","identity":${x.identity}}`
          ).join(",\n")
        }\n]\n`,
      );
    const epFile = `${scratch}/endpoints.json`;
    const epBig = `${scratch}/endpoints-60k.json`;
    const fit = epEntries(epFit);
    writeEndpointFile(epFile, fit);
    writeEndpointFile(epBig, epEntries(opts.bulkEntries));
    log(
      `endpoint import: ${epFit} entries x ${opts.bulkReps}, and a ${opts.bulkEntries}-entry file`,
    );
    const epMs: number[] = [];
    const epBigMs: number[] = [];
    const epBefore = endpoints.list().length;
    for (let rep = 0; rep < opts.bulkReps; rep++) {
      const res = await run(BINARY, ["endpoint", "import", epFile, "--pin-dir", dir], {
        timeoutMs: 120_000,
      });
      if (res.code !== 0 || endpoints.list().length !== epBefore + fit.length) {
        throw new Error(`endpoint import failed (${res.code}): ${res.stderr}${res.stdout}`);
      }
      epMs.push(res.ms);
      for (const x of fit) endpoints.delete(x.ip);
      const big = await run(BINARY, ["endpoint", "import", epBig, "--pin-dir", dir], {
        timeoutMs: 120_000,
      });
      if (big.code !== 1 || endpoints.list().length !== epBefore) {
        throw new Error(`oversized endpoint import: exit ${big.code}, expected a refusal`);
      }
      epBigMs.push(big.ms);
    }

    // Where the CLI import's time goes (fresh process per run, map emptied before each).
    const breakdownExe = launcher.make(
      `${ROOT}/bench/_import_breakdown.ts`,
      scratch,
      "import-breakdown",
    );
    const breakdown = async (path: string, entries: Policy[]) => {
      const before = count();
      const res = await run(breakdownExe, [path, dir], { timeoutMs: 120_000 });
      if (res.code !== 0) throw new Error(`import breakdown failed: ${res.stderr}`);
      const s = JSON.parse(res.stdout.trim().split("\n").pop()!) as Record<string, number>;
      s.processMs = res.ms;
      if (count() !== before + entries.length || s.written !== entries.length) {
        throw new Error(`import breakdown wrote ${s.written}, map has ${count()} (was ${before})`);
      }
      return s;
    };
    const samples: Record<string, number>[] = [];
    const distinctSamples: Record<string, number>[] = [];
    for (let i = 0; i < opts.breakdownRuns; i++) {
      emptyBulk();
      distinctSamples.push(await breakdown(distinctFile, distinct));
      emptyDistinct();
      samples.push(await breakdown(file, bulk));
    }
    const medians = (xs: Record<string, number>[]) => {
      const m: Record<string, number> = {};
      for (const k of Object.keys(xs[0] ?? {})) m[k] = median(xs.map((x) => x[k]!));
      return m;
    };
    const bdMedian = medians(samples);

    const rate = (ms: number) => bulk.length / (ms / 1000);
    const cliMed = median(cliMs);
    return {
      mode,
      notes,
      allowSmall: {
        ...small,
        ratio: small.ebpfcni.median / small.bpftool.median,
        mapEntries: smallEntries,
      },
      allowLarge: {
        ...large,
        ratio: large.ebpfcni.median / large.bpftool.median,
        mapEntries: largeEntries,
      },
      denySmall: {
        ...denySmall,
        ratio: denySmall.ebpfcni.median / denySmall.bpftool.median,
        mapEntries: denySmallEntries,
      },
      denyLarge: {
        ...denyLarge,
        ratio: denyLarge.ebpfcni.median / denyLarge.bpftool.median,
        mapEntries: denyLargeEntries,
      },
      endpointImport: {
        maxEntries: epMax,
        entries: fit.length,
        ms: epMs,
        rate: fit.length / (median(epMs) / 1000),
        oversizeEntries: opts.bulkEntries,
        oversizeMs: epBigMs,
        oversizeRate: opts.bulkEntries / (median(epBigMs) / 1000),
      },
      bulk: {
        entries: bulk.length,
        reps: opts.bulkReps,
        cliMs,
        cliDistinctMs,
        apiMs,
        rawBatchMs: rawMs,
        bpftoolBatchMs: bpftoolMs,
        rate: {
          cli: rate(cliMed),
          cliBeyondFloor: rate(cliMed - floorMedianMs),
          api: rate(median(apiMs)),
          rawBatch: rate(median(rawMs)),
          bpftoolBatch: rate(median(bpftoolMs)),
        },
        target1M: { cli: rate(cliMed) >= 1e6, api: rate(median(apiMs)) >= 1e6 },
      },
      importBreakdown: {
        runs: opts.breakdownRuns,
        medianMs: bdMedian,
        samples,
        distinctMedianMs: medians(distinctSamples),
        distinctSamples,
      },
    };
  } finally {
    dp.close();
  }
}

export function policyTables(p: PolicyResult, floorMs: number): string {
  const out: string[] = [];
  out.push(
    `### 4. Policy updates${
      p.mode === "fallback" ? " (FALLBACK: CLI not available, see notes)" : ""
    }\n`,
  );
  const row = (what: string, x: PolicyResult["allowSmall"]) => [
    `${what} (map of ${x.mapEntries.toLocaleString("en-US")})`,
    fmt(x.ebpfcni.median),
    fmt(x.ebpfcni.p90),
    fmt(x.bpftool.median),
    fmt(x.bpftool.p90),
    fmt(x.ratio),
    fmt(x.ebpfcni.median - floorMs),
  ];
  out.push(table(
    [
      "one allow, process end to end, ms",
      "ebpfcni median",
      "ebpfcni p90",
      "bpftool median",
      "bpftool p90",
      "ratio",
      "ebpfcni minus floor",
    ],
    [
      row(`policy allow, n=${p.allowSmall.ebpfcni.n}`, p.allowSmall),
      row(`policy allow, n=${p.allowLarge.ebpfcni.n}`, p.allowLarge),
      ...(p.denySmall && p.denyLarge
        ? [
          row(`policy deny (ref: bpftool map delete), n=${p.denySmall.ebpfcni.n}`, p.denySmall),
          row(`policy deny (ref: bpftool map delete), n=${p.denyLarge.ebpfcni.n}`, p.denyLarge),
        ]
        : []),
    ],
  ));
  const same = (what: string, a: PolicyResult["allowSmall"], b: PolicyResult["allowSmall"]) => {
    // "Same cost within noise": the large map's median within the small map's p90.
    const within = b.ebpfcni.median <= a.ebpfcni.p90;
    return [
      what,
      `${fmt(a.ebpfcni.median)} ms (p90 ${fmt(a.ebpfcni.p90)})`,
      `${fmt(b.ebpfcni.median)} ms`,
      fmt(b.ebpfcni.median / a.ebpfcni.median),
      within ? "met" : "NOT met",
    ];
  };
  out.push("");
  out.push(table(
    [
      "target: same cost on the large map as on the small one",
      "small map",
      "large map",
      "ratio",
      "large median <= small p90",
    ],
    [
      same("policy allow", p.allowSmall, p.allowLarge),
      ...(p.denySmall && p.denyLarge ? [same("policy deny", p.denySmall, p.denyLarge)] : []),
    ],
  ));
  out.push("");
  const b = p.bulk;
  const r = (x: number) => Math.round(x).toLocaleString("en-US");
  out.push(table(
    [
      `bulk: ${b.entries.toLocaleString("en-US")} new entries (${b.reps} reps)`,
      "median ms",
      "entries/s",
      "target >= 1,000,000/s",
    ],
    [
      [
        "ebpfcni policy import FILE (process end to end)",
        fmt(median(b.cliMs), 1),
        r(b.rate.cli),
        b.target1M.cli ? "met" : "NOT met",
      ],
      [
        "  same, minus the Deno start-up floor",
        fmt(median(b.cliMs) - floorMs, 1),
        r(b.rate.cliBeyondFloor),
        "",
      ],
      ...(b.cliDistinctMs?.length
        ? [[
          "  same CLI, file of pairs that share no identity (worst case)",
          fmt(median(b.cliDistinctMs), 1),
          r(b.entries / (median(b.cliDistinctMs) / 1000)),
          "",
        ]]
        : []),
      [
        "batch API: PolicyMap.allowMany, 16,384 per call",
        fmt(median(b.apiMs), 1),
        r(b.rate.api),
        b.target1M.api ? "met" : "NOT met",
      ],
      [
        "raw mapUpdateBatch, keys pre-encoded",
        fmt(median(b.rawBatchMs), 1),
        r(b.rate.rawBatch),
        "",
      ],
      [
        "reference: bpftool batch file (one update per line)",
        fmt(median(b.bpftoolBatchMs), 1),
        r(b.rate.bpftoolBatch),
        "",
      ],
    ],
  ));
  const ep = p.endpointImport;
  if (ep) {
    out.push("");
    out.push(table(
      [
        `endpoint import (endpoint_map holds ${ep.maxEntries.toLocaleString("en-US")})`,
        "median ms",
        "entries/s",
        "target >= 1,000,000/s",
      ],
      [
        [
          `ebpfcni endpoint import FILE, ${ep.entries.toLocaleString("en-US")} new entries`,
          fmt(median(ep.ms), 1),
          r(ep.rate),
          ep.rate >= 1e6 ? "met" : "NOT met",
        ],
        [
          `  ${ep.oversizeEntries.toLocaleString("en-US")}-entry file: validated whole, refused`,
          fmt(median(ep.oversizeMs), 1),
          `${r(ep.oversizeRate)} (validated)`,
          "cannot be imported",
        ],
      ],
    ));
  }
  const d = p.importBreakdown.medianMs;
  const x = p.importBreakdown.distinctMedianMs ?? {};
  if (Object.keys(d).length) {
    out.push("");
    out.push(
      `Steps of policy import, timed inside a fresh process (median of ${p.importBreakdown.runs}), ms:\n`,
    );
    const f = (v: number | undefined) => fmt(v ?? NaN, 1);
    out.push(table(["step", "pairs among ~245 identities", "pairs sharing no identity"], [
      ["load modules", f(d.importMs), f(x.importMs)],
      ["read file", f(d.readMs), f(x.readMs)],
      ["parsePolicyFile (JSON.parse + validate + dedupe)", f(d.parseMs), f(x.parseMs)],
      ["countEntries (map)", f(d.countMs), f(x.countMs)],
      ["PolicyMap.list() (map)", f(d.listMs), f(x.listMs)],
      ["planPolicyImport", f(d.planMs), f(x.planMs)],
      ["allowMany, chunks of 16,384 (the writes)", f(d.writeMs), f(x.writeMs)],
      ["all of the above (from script start)", f(d.totalInScriptMs), f(x.totalInScriptMs)],
      ["(for scale) JSON.parse of the file alone", f(d.jsonParseMs), f(x.jsonParseMs)],
      [
        `(what --show adds) list() of the full map, ${d.listedEntries ?? "?"} entries`,
        f(d.listFullMs),
        "",
      ],
      [
        `(what --show adds) sort + render that table, ${
          Math.round((d.renderedBytes ?? 0) / 1024)
        } KiB`,
        f(d.renderFullMs),
        "",
      ],
    ]));
  }
  for (const n of p.notes) out.push(`\nnote: ${n}`);
  return out.join("\n");
}
