// Reading what run-tests.sh wrote ("KM ..." lines and deno's JUnit files), checking it, and
// rendering the per-kernel report. verify() is what keeps the matrix from passing when
// nothing ran: every listed file must have reported tests, on the expected kernel, with the
// probe's tag of the predicted kind, and every kernel must have run the same tests.

export type Outcome = "passed" | "failed" | "skipped";

export interface TestCase {
  name: string;
  outcome: Outcome;
  ms: number;
  message?: string;
}

export interface FileRun {
  file: string;
  exitCode?: number;
  /** Seconds, from the kernel's uptime. */
  seconds?: number;
  /** undefined: no JUnit came back (deno died, or the guest did). */
  cases?: TestCase[];
}

/** What test/_kernel_probe.ts prints. */
export interface Probe {
  release: string;
  tag: string;
  tagKind: "sha256" | "sha1" | "none";
  tagInGenerated: boolean;
  coldLoadMs: number;
  loadMs: number;
  reuseMs: number;
  verdicts: Record<string, { want: number; got: number | string }>;
  verdictsOk: boolean;
  runtIpv4TestRun: string;
  jitEnabled: string;
}

export interface ResultLines {
  release?: string;
  begin?: number;
  end?: number;
  errors: string[];
  files: FileRun[];
  probe?: { exitCode: number; seconds: number; value?: Probe; raw: string };
  modules: string[];
}

export interface KernelRun {
  /** "6.1" or "host" */
  label: string;
  where: string;
  expectedRelease: string;
  results: ResultLines;
  /** Boot (qemu start to init) in ms, for guests. */
  bootMs?: number;
  accel?: string;
  /** Everything else that went wrong around the run (timeouts, qemu errors). */
  errors: string[];
  log?: string;
}

const ENTITIES: Record<string, string> = {
  "&lt;": "<",
  "&gt;": ">",
  "&amp;": "&",
  "&quot;": '"',
  "&apos;": "'",
};

function unescapeXml(s: string): string {
  return s.replace(/&(lt|gt|amp|quot|apos|#\d+|#x[0-9a-f]+);/gi, (m) => {
    if (ENTITIES[m]) return ENTITIES[m];
    const code = m[2] === "x" || m[2] === "X"
      ? parseInt(m.slice(3, -1), 16)
      : parseInt(m.slice(2, -1), 10);
    return String.fromCodePoint(code);
  });
}

function attr(attrs: string, name: string): string | undefined {
  const m = attrs.match(new RegExp(`\\b${name}="([^"]*)"`));
  return m ? unescapeXml(m[1]!) : undefined;
}

/** The test cases of a `deno test --junit-path` file. */
export function parseJunit(xml: string): TestCase[] {
  const cases: TestCase[] = [];
  for (const m of xml.matchAll(/<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g)) {
    const attrs = m[1]!;
    const body = m[3] ?? "";
    const name = attr(attrs, "name") ?? "";
    const ms = Math.round(Number(attr(attrs, "time") ?? "0") * 1000);
    const failure = body.match(/<(failure|error)\b([^>]*)>/);
    if (failure) {
      const message = attr(failure[2]!, "message") ?? "";
      cases.push({ name, outcome: "failed", ms, message });
    } else if (/<skipped\b/.test(body)) {
      cases.push({ name, outcome: "skipped", ms });
    } else {
      cases.push({ name, outcome: "passed", ms });
    }
  }
  return cases;
}

function b64decode(s: string): string {
  return new TextDecoder().decode(Uint8Array.from(atob(s), (c) => c.charCodeAt(0)));
}

/** Parses run-tests.sh's lines (serial noise such as \r and lines without "KM " ignored). */
export function parseResults(text: string, files: string[]): ResultLines {
  const r: ResultLines = {
    errors: [],
    files: files.map((file) => ({ file })),
    modules: [],
  };
  const starts = new Map<number, number>();
  for (const raw of text.split("\n")) {
    const line = raw.replace(/\r/g, "");
    const m = line.match(/^KM (\S+) ?(.*)$/);
    if (!m) continue;
    const [, kind, rest = ""] = m;
    const f = rest.split(" ");
    const file = (i: string) => r.files[Number(i) - 1];
    try {
      switch (kind) {
        case "BEGIN":
          r.begin = Number(f[0]);
          break;
        case "UNAME":
          r.release = rest.trim();
          break;
        case "ERROR":
          r.errors.push(rest);
          break;
        case "FILE-BEGIN":
          starts.set(Number(f[0]), Number(f[1]));
          break;
        case "FILE-END": {
          const fr = file(f[0]!);
          if (!fr) break;
          fr.exitCode = Number(f[2]);
          const t0 = starts.get(Number(f[0]));
          if (t0 !== undefined) fr.seconds = Math.round((Number(f[1]) - t0) * 100) / 100;
          break;
        }
        case "JUNIT": {
          const fr = file(f[0]!);
          if (fr) fr.cases = parseJunit(b64decode(f[1] ?? ""));
          break;
        }
        case "PROBE": {
          const out = b64decode(f[3] ?? "");
          const seconds = Math.round((Number(f[2]) - Number(f[1])) * 100) / 100;
          let value: Probe | undefined;
          const json = out.split("\n").reverse().find((l) => l.startsWith("{"));
          try {
            if (json) value = JSON.parse(json) as Probe;
          } catch {
            // reported by verify() as a probe without a result
          }
          r.probe = { exitCode: Number(f[0]), seconds, raw: out, ...(value ? { value } : {}) };
          break;
        }
        case "MODULES":
          r.modules = rest.split(/\s+/).filter(Boolean).sort();
          break;
        case "END":
          r.end = Number(f[0]);
          break;
      }
    } catch (err) {
      r.errors.push(`unreadable line "${line.slice(0, 80)}": ${(err as Error).message}`);
    }
  }
  return r;
}

/** [major, minor] of a `uname -r`. */
export function kernelVersion(release: string): [number, number] {
  const m = release.match(/^(\d+)\.(\d+)/);
  if (!m) throw new Error(`Cannot parse kernel release "${release}"`);
  return [Number(m[1]), Number(m[2])];
}

/** The tag digest a kernel uses (bpf_prog_calc_tag): SHA-256 from 6.18, SHA-1 before. */
export function expectedTagKind(release: string): "sha256" | "sha1" {
  const [maj, min] = kernelVersion(release);
  return maj > 6 || (maj === 6 && min >= 18) ? "sha256" : "sha1";
}

/** What is wrong with a kernel's probe result; empty when it loaded the program with the
 * predicted tag and every verdict was right. */
export function probeProblems(run: KernelRun): string[] {
  const probe = run.results.probe;
  if (!probe) return ["the probe did not report"];
  if (!probe.value) {
    const tail = probe.raw.trim().split("\n").slice(-3).join(" | ");
    return [`the probe failed (exit ${probe.exitCode}): ${tail}`];
  }
  const out: string[] = [];
  const v = probe.value;
  const release = run.results.release;
  if (release && v.release !== release) out.push(`the probe saw kernel ${v.release}`);
  if (!v.tagInGenerated) out.push(`kernel tag ${v.tag} is not in the generated PROGRAM_TAGS`);
  const want = expectedTagKind(v.release);
  if (v.tagKind !== want) {
    out.push(`kernel tag ${v.tag} is the ${v.tagKind} prediction, expected ${want}`);
  }
  if (!v.verdictsOk) out.push(`probe verdicts: ${JSON.stringify(v.verdicts)}`);
  return out;
}

/** The closing counts: every test case on every kernel, plus each kernel's probe as one
 * check. A matrix with problems but no failed check still counts one failure. */
export function counts(runs: KernelRun[], problems: string[]): { passed: number; failed: number } {
  const cases = runs.flatMap((r) => r.results.files.flatMap((f) => f.cases ?? []));
  const probesOk = runs.filter((r) => probeProblems(r).length === 0).length;
  const passed = cases.filter((c) => c.outcome === "passed").length + probesOk;
  let failed = cases.filter((c) => c.outcome === "failed").length + runs.length - probesOk;
  if (problems.length && !failed) failed = 1;
  return { passed, failed };
}

/** Every reason the matrix must not pass; empty when it may. */
export function verify(runs: KernelRun[], files: string[], quick: boolean): string[] {
  const problems: string[] = [];
  if (!runs.length) problems.push("no kernel was run");
  for (const run of runs) {
    const p = (msg: string) => problems.push(`${run.label}: ${msg}`);
    const r = run.results;
    for (const e of [...run.errors, ...r.errors]) p(e);
    if (r.begin === undefined) p("run-tests.sh never started (no KM BEGIN)");
    else if (r.end === undefined) p("run-tests.sh did not finish (no KM END)");
    if (r.release === undefined) p("no kernel release reported");
    else if (r.release !== run.expectedRelease) {
      p(`ran on kernel ${r.release}, expected ${run.expectedRelease}`);
    }
    if (!quick) {
      for (const f of r.files) {
        if (f.exitCode === undefined) p(`${f.file}: never finished`);
        if (!f.cases) p(`${f.file}: no test results (exit ${f.exitCode ?? "none"})`);
        else if (!f.cases.length) p(`${f.file}: ran no test`);
        for (const c of f.cases ?? []) {
          if (c.outcome === "failed") {
            p(`${f.file}: "${c.name}" failed: ${c.message?.split("\n")[0]}`);
          }
        }
        if (f.cases && f.exitCode !== 0 && !f.cases.some((c) => c.outcome === "failed")) {
          p(`${f.file}: deno test exited ${f.exitCode} with no failed test`);
        }
      }
    }
    for (const msg of probeProblems(run)) p(msg);
  }
  // The same tests everywhere: a test that ran on one kernel but not another (or skipped on
  // one only) means a guest silently lacked something.
  if (!quick && runs.length > 1) {
    const outcome = (run: KernelRun, file: string) => {
      const cases = run.results.files.find((f) => f.file === file)?.cases ?? [];
      return new Map(cases.map((c) => [c.name, c.outcome === "skipped" ? "skipped" : "ran"]));
    };
    for (const file of files) {
      const [first, ...rest] = runs;
      const base = outcome(first!, file);
      for (const other of rest) {
        const o = outcome(other, file);
        for (const name of new Set([...base.keys(), ...o.keys()])) {
          if (base.get(name) !== o.get(name)) {
            problems.push(
              `${file}: "${name}" ${base.get(name) ?? "absent"} on ${first!.label} but ` +
                `${o.get(name) ?? "absent"} on ${other.label}`,
            );
          }
        }
      }
    }
  }
  return problems;
}

function cell(c: TestCase | undefined): string {
  if (!c) return "—";
  return c.outcome === "passed"
    ? `ok ${c.ms} ms`
    : c.outcome === "skipped"
    ? "skipped"
    : "**FAILED**";
}

/** The report as Markdown: one summary table, one row per test, and the differences. */
export function renderMarkdown(runs: KernelRun[], files: string[], problems: string[]): string {
  const L: string[] = [];
  const heads = runs.map((r) => r.label);
  const row = (cells: string[]) => L.push(`| ${cells.join(" | ")} |`);
  L.push("## Kernel matrix", "");
  row(["", ...heads]);
  row(["---", ...heads.map(() => "---")]);
  const per = (f: (r: KernelRun) => string) => runs.map((r) => f(r));
  const fmt = (n: number | undefined, unit: string) => (n === undefined ? "—" : `${n} ${unit}`);
  row(["kernel (uname -r)", ...per((r) => r.results.release ?? "—")]);
  row(["where", ...per((r) => r.where)]);
  row([
    "boot (qemu start to init)",
    ...per((r) => fmt(r.bootMs === undefined ? undefined : Math.round(r.bootMs / 100) / 10, "s")),
  ]);
  row([
    "tests (wall, all files)",
    ...per((r) => {
      const s = r.results.files.reduce((a, f) => a + (f.seconds ?? 0), 0);
      return r.results.files.length ? `${Math.round(s * 10) / 10} s` : "—";
    }),
  ]);
  row(["probe (wall)", ...per((r) => fmt(r.results.probe?.seconds, "s"))]);
  const pv = (r: KernelRun) => r.results.probe?.value;
  row(["datapath load, first (ms)", ...per((r) => fmt(pv(r)?.coldLoadMs, "ms"))]);
  row(["datapath load, again (ms)", ...per((r) => fmt(pv(r)?.loadMs, "ms"))]);
  row(["reuse of the pins (ms)", ...per((r) => fmt(pv(r)?.reuseMs, "ms"))]);
  row(["program tag", ...per((r) => (pv(r) ? `${pv(r)!.tag} (${pv(r)!.tagKind})` : "—"))]);
  row(["test run of a 20-byte IPv4 frame", ...per((r) => pv(r)?.runtIpv4TestRun ?? "—")]);
  row(["BPF JIT", ...per((r) => pv(r)?.jitEnabled ?? "—")]);
  row(["modules loaded", ...per((r) => r.results.modules.join(" ") || "—")]);
  const counts = (r: KernelRun) => {
    const cs = r.results.files.flatMap((f) => f.cases ?? []);
    const n = (o: Outcome) => cs.filter((c) => c.outcome === o).length;
    return `${n("passed")} passed, ${n("failed")} failed, ${n("skipped")} skipped`;
  };
  row(["tests", ...per(counts)]);
  for (const file of files) {
    L.push("", `### ${file}`, "");
    row(["test", ...heads]);
    row(["---", ...heads.map(() => "---")]);
    const names = new Set<string>();
    for (const r of runs) {
      for (const c of r.results.files.find((f) => f.file === file)?.cases ?? []) names.add(c.name);
    }
    for (const name of names) {
      row([
        name.replaceAll("|", "\\|"),
        ...per((r) =>
          cell(r.results.files.find((f) => f.file === file)?.cases?.find((c) => c.name === name))
        ),
      ]);
    }
  }
  L.push("", problems.length ? "### Problems" : "All checks passed.", "");
  for (const p of problems) L.push(`- ${p}`);
  return L.join("\n") + "\n";
}
