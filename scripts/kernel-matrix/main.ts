// The kernel matrix: runs a list of test files (by default the datapath's kernel and layout
// tests) and a probe on several kernels, and reports per kernel: release, pass/fail per
// test, boot and test times, load time and the program tag. "host" runs them directly on
// this machine's kernel; "6.1" boots Debian 12's cloud kernel under qemu from an initramfs
// built for the run (see guest.ts). Everything goes in one temp dir, removed at the end.
// Entry point: scripts/kernel-matrix.sh (installs qemu, busybox, kmod; builds), which runs
//   deno run --allow-all scripts/kernel-matrix/main.ts [options] [test files...]
import { buildGuest, type GuestSummary } from "./guest.ts";
import { type DebianKernel, fetchDebianKernel } from "./kernel.ts";
import { type Accel, type Attempt, boot } from "./qemu.ts";
import { counts, type KernelRun, parseResults, renderMarkdown, verify } from "./report.ts";
import { exec, killAll, live, log } from "./sh.ts";

const USAGE = `usage: kernel-matrix.sh [--quick] [--kernels host,6.1] [--accel auto|kvm|tcg]
                        [--memory 3G] [--timeout SECONDS] [--out DIR] [--keep] [TEST_FILE...]
  --quick     only the probe in each kernel: load, pin, tag prediction, test-run verdicts
  --kernels   which kernels, in order (default host,6.1): "host" is this machine's kernel,
              run directly; a version (6.1) boots Debian's linux-image-<v>.0-N-cloud-amd64
  --accel     qemu accelerator (default auto: KVM if /dev/kvm works and boots, else TCG)
  --timeout   limit for each kernel's run, after boot (default 600; it takes ~1 min)
  --out       report directory (default dist/kernel-matrix)
  --keep      keep the temp dir (kernel, initramfs, DENO_DIR) and print its path
Test files default to test/datapath_kernel_test.ts test/datapath_layout_test.ts
test/datapath_verdicts_test.ts (load and pins, layouts, identity and kubernetes verdicts).
Env: KERNEL_MATRIX_EXTRA_COMMANDS (more commands for the guest, space separated).`;

const DEFAULT_TESTS = [
  "test/datapath_kernel_test.ts",
  "test/datapath_layout_test.ts",
  "test/datapath_verdicts_test.ts",
];
const PROBE = "test/_kernel_probe.ts";
const MARKER = "KM-INIT";

interface Options {
  quick: boolean;
  kernels: string[];
  accel: Accel | "auto";
  memory: string;
  timeoutS: number;
  out: string;
  keep: boolean;
  tests: string[];
}

function parseArgs(args: string[]): Options {
  const o: Options = {
    quick: false,
    kernels: ["host", "6.1"],
    accel: (Deno.env.get("KERNEL_MATRIX_ACCEL") as Accel | undefined) ?? "auto",
    memory: "3G",
    timeoutS: 600,
    out: "dist/kernel-matrix",
    keep: false,
    tests: [],
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = () => {
      const v = args[++i];
      if (v === undefined) throw new Error(`${a} needs a value\n${USAGE}`);
      return v;
    };
    if (a === "--quick") o.quick = true;
    else if (a === "--keep") o.keep = true;
    else if (a === "--kernels") o.kernels = value().split(",").filter(Boolean);
    else if (a === "--accel") o.accel = value() as Options["accel"];
    else if (a === "--memory") o.memory = value();
    else if (a === "--timeout") o.timeoutS = Number(value());
    else if (a === "--out") o.out = value();
    else if (a === "-h" || a === "--help") {
      console.log(USAGE);
      Deno.exit(0);
    } else if (a.startsWith("-")) throw new Error(`Unknown option "${a}"\n${USAGE}`);
    else o.tests.push(a);
  }
  if (!["auto", "kvm", "tcg"].includes(o.accel)) throw new Error(`Bad --accel "${o.accel}"`);
  if (!(o.timeoutS > 0)) throw new Error("--timeout must be a positive number of seconds");
  for (const k of o.kernels) {
    if (k !== "host" && !/^\d+\.\d+$/.test(k)) {
      throw new Error(`Bad kernel "${k}" (host or e.g. 6.1)`);
    }
  }
  if (!o.tests.length) o.tests = DEFAULT_TESTS;
  return o;
}

/** Runs `cmd` with output to `logPath` under coreutils timeout, which kills it and every
 * process it started after `timeoutS`. */
async function runLogged(
  cmd: string,
  args: string[],
  env: Record<string, string>,
  logPath: string,
  timeoutS: number,
): Promise<{ code: number; timedOut: boolean }> {
  const logFile = await Deno.open(logPath, { write: true, create: true, truncate: true });
  const child = new Deno.Command("timeout", {
    args: ["-s", "KILL", String(timeoutS), cmd, ...args],
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  live.add(child);
  try {
    await Promise.all([child.stdout, child.stderr].map(async (s) => {
      for await (const chunk of s) await logFile.write(chunk);
    }));
    const status = await child.status;
    return { code: status.code, timedOut: status.code === 137 };
  } finally {
    live.delete(child);
    logFile.close();
  }
}

async function runHost(o: Options, ctx: Context): Promise<KernelRun> {
  const results = `${ctx.tmp}/host-results.txt`;
  const logPath = `${ctx.out}/host.log`;
  log(
    `host: running ${
      o.quick ? "the probe" : `${o.tests.length} test files and the probe`
    } on ${Deno.osRelease()}`,
  );
  const r = await runLogged(
    "sh",
    [ctx.runTests, results, ctx.root, ctx.deno, PROBE, ...(o.quick ? [] : o.tests)],
    { DENO_DIR: ctx.denoDir },
    logPath,
    o.timeoutS,
  );
  const text = await Deno.readTextFile(results).catch(() => "");
  return {
    label: "host",
    where: "this machine, directly",
    expectedRelease: Deno.osRelease(),
    results: parseResults(text, o.quick ? [] : o.tests),
    errors: r.timedOut ? [`timed out after ${o.timeoutS} s`] : [],
    log: logPath,
  };
}

async function runGuest(series: string, o: Options, ctx: Context): Promise<KernelRun> {
  const errors: string[] = [];
  const label = series;
  let kernel: DebianKernel;
  try {
    kernel = await fetchDebianKernel(series, "cloud-amd64", `${ctx.tmp}/kernel-${series}`);
  } catch (err) {
    return {
      label,
      where: "qemu",
      expectedRelease: `${series}.0-*-cloud-amd64`,
      results: parseResults("", []),
      errors: [`cannot get the kernel: ${(err as Error).message}`],
    };
  }
  log(`${series}: ${kernel.package} ${kernel.version}; building the initramfs`);
  const initrd = `${ctx.tmp}/guest-${series}.cpio`;
  const t0 = performance.now();
  const summary: GuestSummary = await buildGuest(
    {
      checkout: ctx.root,
      deno: ctx.deno,
      tests: o.quick ? [] : o.tests,
      probe: PROBE,
      denoDir: ctx.denoDir,
      kernel,
      extraCommands: (Deno.env.get("KERNEL_MATRIX_EXTRA_COMMANDS") ?? "").split(/\s+/).filter(
        Boolean,
      ),
    },
    initrd,
    ctx.tmp,
  );
  log(
    `${series}: initramfs ${(summary.bytes / 2 ** 20).toFixed(0)} MiB, ${summary.files} files ` +
      `(${summary.commands.length} commands, ${summary.libraries.length} dlopened libraries, ` +
      `${summary.headers} headers, ${summary.modules} modules, ${summary.named.length} files ` +
      `named by path) in ` +
      `${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  for (const m of summary.missing) {
    log(`${series}: WARNING: the tests name ${m}, which this host lacks`);
  }
  const consoleLog = `${ctx.out}/${series}-console.log`;
  const resultsLog = `${ctx.tmp}/${series}-results.txt`;
  const attempts: Attempt[] = await boot({
    kernel: kernel.vmlinuz,
    initrd,
    append: "console=ttyS0 quiet panic=-1 rdinit=/init",
    memory: o.memory,
    smp: 2,
    accel: o.accel,
    consoleLog,
    resultsLog,
    marker: MARKER,
    // Under KVM init runs within ~2 s; under TCG within ~10 s (most of it unpacking).
    bootTimeoutMs: { kvm: 10_000, tcg: 120_000 },
    runTimeoutMs: o.timeoutS * 1000,
  });
  const last = attempts[attempts.length - 1]!;
  if (last.outcome !== "powered-off") {
    errors.push(
      `guest ${last.outcome} under ${last.accel}${
        last.stderr ? `: ${last.stderr.split("\n").slice(-1)[0]}` : ""
      }`,
    );
  }
  const text = await Deno.readTextFile(resultsLog).catch(() => "");
  if (!o.keep) await Deno.remove(initrd);
  return {
    label,
    where: `qemu ${last.accel}${
      attempts.length > 1
        ? ` (after ${attempts.slice(0, -1).map((a) => `${a.accel} ${a.outcome}`).join(", ")})`
        : ""
    }, ${summary.files} files, ${(summary.bytes / 2 ** 20).toFixed(0)} MiB initramfs`,
    expectedRelease: kernel.release,
    results: parseResults(text, o.quick ? [] : o.tests),
    ...(last.bootMs !== undefined ? { bootMs: last.bootMs } : {}),
    accel: last.accel,
    errors,
    log: consoleLog,
  };
}

interface Context {
  root: string;
  deno: string;
  denoDir: string;
  tmp: string;
  out: string;
  runTests: string;
}

async function main(): Promise<number> {
  const o = parseArgs(Deno.args);
  const root = Deno.cwd();
  const denoInCheckout = `${root}/.deno/bin/deno`;
  const deno = await Deno.stat(denoInCheckout).then(() => denoInCheckout, () => Deno.execPath());
  for (const f of [...o.tests, PROBE, "dist/bpf/ebpfcni.bpf.o", "src/datapath/bpf_object.gen.ts"]) {
    await Deno.stat(`${root}/${f}`).catch(() => {
      throw new Error(`"${f}" is missing (run from the checkout, after scripts/build.sh)`);
    });
  }
  const out = o.out.startsWith("/") ? o.out : `${root}/${o.out}`;
  await Deno.mkdir(out, { recursive: true });
  const tmp = await Deno.makeTempDir({ prefix: "ebpfcni-kernel-matrix-" });
  const cleanup = async () => {
    killAll();
    if (o.keep) log(`kept ${tmp}`);
    else await Deno.remove(tmp, { recursive: true }).catch(() => {});
  };
  const onSignal = () => {
    log("interrupted; cleaning up");
    cleanup().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    const files = o.quick ? [PROBE] : [...o.tests, PROBE];
    // Type-check here once: the kernels run with --no-check (tsc under TCG is slow).
    log(`checking ${files.join(" ")}`);
    await exec(deno, ["check", "--quiet", ...files]);
    // A DENO_DIR of the tests' module graph: the guests have no network.
    const denoDir = `${tmp}/deno-dir`;
    await exec(deno, ["cache", "--quiet", ...files], { env: { DENO_DIR: denoDir } });
    const ctx: Context = {
      root,
      deno,
      denoDir,
      tmp,
      out,
      runTests: new URL("run-tests.sh", import.meta.url).pathname,
    };
    const runs: KernelRun[] = [];
    for (const k of o.kernels) {
      const t0 = performance.now();
      const run = k === "host" ? await runHost(o, ctx) : await runGuest(k, o, ctx);
      log(`${k}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      runs.push(run);
    }
    const tests = o.quick ? [] : o.tests;
    const problems = verify(runs, tests, o.quick);
    const md = renderMarkdown(runs, tests, problems);
    await Deno.writeTextFile(`${out}/report.md`, md);
    await Deno.writeTextFile(
      `${out}/report.json`,
      JSON.stringify({ options: o, runs, problems }, null, 2),
    );
    console.log(md);
    const { passed, failed } = counts(runs, problems);
    log(`report in ${out}/report.md; logs: ${runs.map((r) => r.log).filter(Boolean).join(", ")}`);
    // The plain closing line CI reads: every test case on every kernel, plus one probe each.
    console.log(`kernel-matrix: ${passed} passed, ${failed} failed`);
    return problems.length ? 1 : 0;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    await cleanup();
  }
}

if (import.meta.main) {
  try {
    Deno.exit(await main());
  } catch (err) {
    killAll();
    console.error(`kernel-matrix: ${err instanceof Error ? err.message : err}`);
    Deno.exit(1);
  }
}
