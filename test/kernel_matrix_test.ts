// The kernel matrix's own logic (scripts/kernel-matrix), without booting anything: reading
// the guests' results, the checks that keep it from passing when nothing ran, working out
// what a guest needs from the test sources, and the initramfs format.
import assert from "node:assert/strict";
import { type CpioEntry, writeCpio } from "../scripts/kernel-matrix/cpio.ts";
import { newestFirst } from "../scripts/kernel-matrix/kernel.ts";
import {
  BASE_COMMANDS,
  parseDepfile,
  parseLdd,
  scanAbsolutePaths,
  scanCommands,
  scanIncludes,
  scanSonames,
  sourceClosure,
} from "../scripts/kernel-matrix/needs.ts";
import {
  counts,
  expectedTagKind,
  type KernelRun,
  parseJunit,
  parseResults,
  type Probe,
  verify,
} from "../scripts/kernel-matrix/report.ts";
import { GuestTree } from "../scripts/kernel-matrix/tree.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const FILES = ["test/a_test.ts", "test/b_test.ts"];

function junit(cases: { name: string; body?: string }[]): string {
  const tc = cases.map((c) =>
    `<testcase name="${c.name}" classname="./x" time="0.012" line="1" col="1">${
      c.body ?? ""
    }</testcase>`
  );
  return `<?xml version="1.0"?><testsuites><testsuite name="./x">${
    tc.join("\n")
  }</testsuite></testsuites>`;
}

function probe(release: string, tagKind: Probe["tagKind"]): Probe {
  return {
    release,
    tag: "0123456789abcdef",
    tagKind,
    tagInGenerated: tagKind !== "none",
    coldLoadMs: 30,
    loadMs: 20,
    reuseMs: 0.3,
    verdicts: { "arp passes": { want: 0, got: 0 } },
    verdictsOk: true,
    runtIpv4TestRun: "refused (errno 22)",
    jitEnabled: "1",
  };
}

/** run-tests.sh's output for a kernel where every file passed `names`. */
function lines(release: string, tagKind: Probe["tagKind"], names = ["one", "two"]): string {
  const b64 = (s: string) => btoa(s);
  const out = ["KM BEGIN 1.00", `KM UNAME ${release}`];
  FILES.forEach((f, i) => {
    out.push(`KM FILE-BEGIN ${i + 1} 1.00 ${f}`, `KM FILE-END ${i + 1} 3.50 0`);
    out.push(`KM JUNIT ${i + 1} ${b64(junit(names.map((name) => ({ name }))))}`);
  });
  out.push(`KM PROBE 0 4.00 5.00 ${b64(`noise\n${JSON.stringify(probe(release, tagKind))}\n`)}`);
  out.push("KM MODULES veth cls_bpf", "KM END 5.10");
  return out.join("\r\n") + "\r\n";
}

function run(label: string, expected: string, text: string): KernelRun {
  return {
    label,
    where: "test",
    expectedRelease: expected,
    results: parseResults(text, FILES),
    errors: [],
  };
}

const GUEST = "6.1.0-57-cloud-amd64";
const HOST = "6.18.44-fc-v973";

Deno.test("parseJunit reads deno's passed, failed and skipped cases with escaped names", () => {
  const xml = junit([
    { name: "passes" },
    {
      name: "fails &lt;&amp;&gt; &quot;x&quot; &apos;y&apos;",
      body: '<failure message="boom\nline2">stack</failure>',
    },
    { name: "ignored", body: "<skipped/>" },
  ]);
  assert.deepEqual(parseJunit(xml), [
    { name: "passes", outcome: "passed", ms: 12 },
    { name: `fails <&> "x" 'y'`, outcome: "failed", ms: 12, message: "boom\nline2" },
    { name: "ignored", outcome: "skipped", ms: 12 },
  ]);
});

Deno.test("parseResults reads every KM line through serial noise and carriage returns", () => {
  const text = "[    1.0] kernel noise\n" + lines(GUEST, "sha1");
  const r = parseResults(text, FILES);
  assert.equal(r.release, GUEST);
  assert.equal(r.begin, 1);
  assert.equal(r.end, 5.1);
  assert.deepEqual(r.files.map((f) => [f.file, f.exitCode, f.seconds, f.cases?.length]), [
    [FILES[0], 0, 2.5, 2],
    [FILES[1], 0, 2.5, 2],
  ]);
  assert.equal(r.probe?.seconds, 1);
  assert.equal(r.probe?.value?.tagKind, "sha1");
  assert.deepEqual(r.modules, ["cls_bpf", "veth"]);
});

Deno.test("expectedTagKind: SHA-1 before Linux 6.18, SHA-256 from 6.18 on", () => {
  assert.equal(expectedTagKind("6.1.0-57-cloud-amd64"), "sha1");
  assert.equal(expectedTagKind("6.17.9"), "sha1");
  assert.equal(expectedTagKind("5.15.0-100-generic"), "sha1");
  assert.equal(expectedTagKind("6.18.44-fc-v973"), "sha256");
  assert.equal(expectedTagKind("7.0.1"), "sha256");
  assert.throws(() => expectedTagKind("bogus"), /Cannot parse kernel release "bogus"/);
});

Deno.test("verify() passes two kernels that ran the same tests with the predicted tags", () => {
  const runs = [run("host", HOST, lines(HOST, "sha256")), run("6.1", GUEST, lines(GUEST, "sha1"))];
  const problems = verify(runs, FILES, false);
  assert.deepEqual(problems, []);
  assert.deepEqual(counts(runs, problems), { passed: 10, failed: 0 });
});

Deno.test("verify() fails a matrix where nothing ran", () => {
  assert.deepEqual(verify([], FILES, false), ["no kernel was run"]);
  const silent = run("6.1", GUEST, "");
  const problems = verify([silent], FILES, false);
  assert.ok(
    problems.includes("6.1: run-tests.sh never started (no KM BEGIN)"),
    problems.join("\n"),
  );
  assert.ok(problems.includes("6.1: no kernel release reported"));
  assert.ok(problems.includes(`6.1: ${FILES[0]}: no test results (exit none)`));
  assert.ok(problems.includes("6.1: the probe did not report"));
  assert.equal(counts([silent], problems).failed, 1);
});

Deno.test("verify() fails a guest that booted another kernel or whose file reported nothing", () => {
  const text = lines("6.1.0-99-cloud-amd64", "sha1").replace(/KM JUNIT 2 .*\r\n/, "");
  const problems = verify([run("6.1", GUEST, text)], FILES, false);
  assert.deepEqual(problems, [
    `6.1: ran on kernel 6.1.0-99-cloud-amd64, expected ${GUEST}`,
    `6.1: ${FILES[1]}: no test results (exit 0)`,
  ]);
});

Deno.test("verify() fails a kernel whose tag is not the one predicted for its version", () => {
  const problems = verify([run("6.1", GUEST, lines(GUEST, "sha256"))], FILES, false);
  assert.deepEqual(problems, [
    "6.1: kernel tag 0123456789abcdef is the sha256 prediction, expected sha1",
  ]);
  const none = verify([run("6.1", GUEST, lines(GUEST, "none"))], FILES, false);
  assert.ok(none.some((p) => /not in the generated PROGRAM_TAGS/.test(p)), none.join("\n"));
});

Deno.test("verify() fails a test that ran on one kernel but is absent on another", () => {
  const runs = [
    run("host", HOST, lines(HOST, "sha256", ["one", "two"])),
    run("6.1", GUEST, lines(GUEST, "sha1", ["one"])),
  ];
  const problems = verify(runs, FILES, false);
  assert.deepEqual(problems, FILES.map((f) => `${f}: "two" ran on host but absent on 6.1`));
});

Deno.test("verify() reports failed tests and a deno exit without a failed test", () => {
  const failing = lines(GUEST, "sha1").replace(
    /KM JUNIT 1 \S+/,
    `KM JUNIT 1 ${btoa(junit([{ name: "one", body: '<failure message="bad">x</failure>' }]))}`,
  ).replace("KM FILE-END 2 3.50 0", "KM FILE-END 2 3.50 1");
  const problems = verify([run("6.1", GUEST, failing)], FILES, false);
  assert.deepEqual(problems, [
    `6.1: ${FILES[0]}: "one" failed: bad`,
    `6.1: ${FILES[1]}: deno test exited 1 with no failed test`,
  ]);
});

Deno.test("verify() in quick mode needs only the probe", () => {
  const text = lines(GUEST, "sha1").split("\r\n").filter((l) => !/FILE|JUNIT/.test(l)).join("\n");
  const r: KernelRun = {
    label: "6.1",
    where: "t",
    expectedRelease: GUEST,
    results: parseResults(text, []),
    errors: [],
  };
  assert.deepEqual(verify([r], [], true), []);
});

Deno.test("newestFirst orders Debian kernel packages by ABI number, not as text", () => {
  const names = [
    "linux-image-6.1.0-9-cloud-amd64",
    "linux-image-6.1.0-57-cloud-amd64",
    "linux-image-6.1.0-57-cloud-amd64-dbg",
    "linux-image-6.1.0-10-cloud-amd64",
    "linux-image-6.1.0-57-amd64",
    "linux-image-6.12.115+deb12-cloud-amd64",
  ];
  assert.deepEqual(newestFirst(names, "6.1", "cloud-amd64"), [
    "linux-image-6.1.0-57-cloud-amd64",
    "linux-image-6.1.0-10-cloud-amd64",
    "linux-image-6.1.0-9-cloud-amd64",
  ]);
  assert.deepEqual(
    newestFirst(
      [...names, "linux-image-6.12.99+deb12-cloud-amd64", "linux-image-6.12-cloud-amd64"],
      "6.12",
      "cloud-amd64",
    ),
    ["linux-image-6.12.115+deb12-cloud-amd64", "linux-image-6.12.99+deb12-cloud-amd64"],
  );
});

Deno.test("the guest's needs are read from the datapath tests: commands, libraries, headers", () => {
  const sources = sourceClosure([
    `${ROOT}test/datapath_kernel_test.ts`,
    `${ROOT}test/datapath_layout_test.ts`,
    `${ROOT}test/datapath_verdicts_test.ts`,
  ]);
  assert.ok(sources.includes(`${ROOT}test/_kernel.ts`), "the helpers the tests import");
  assert.ok(sources.includes(`${ROOT}ffi/libbpf.ts`), "and what those import");
  const texts = sources.map((s) => Deno.readTextFileSync(s));
  const commands = scanCommands(texts);
  for (const c of ["ip", "tc", "bpftool", "sysctl", "clang"]) assert.ok(commands.includes(c), c);
  assert.ok(BASE_COMMANDS.includes("modprobe"));
  const sonames = scanSonames(texts);
  // libmnl: the loader attaches programs over netlink (src/datapath/tc.ts).
  assert.deepEqual(sonames, ["libbpf.so.1", "libc.so.6", "libmnl.so.0"]);
  assert.deepEqual(scanIncludes(texts), [
    "bpf/bpf_helpers.h",
    "linux/bpf.h",
    "linux/types.h",
    "stddef.h",
  ]);
});

Deno.test("the scanners find commands and includes in the shapes tests write them", () => {
  const src = `await run("ip", ["link"]); await tryRun( 'sysctl', []);
const x = await runJson<{ a: string }>("bpftool", []); new Deno.Command("tc", {});
run(cmd, args); run(Deno.execPath(), []);
const c = \`#include <linux/bpf.h>
 #  include <bpf/bpf_helpers.h>
#include "local.h"\`;`;
  assert.deepEqual(scanCommands([src]), ["bpftool", "ip", "sysctl", "tc"]);
  assert.deepEqual(scanIncludes([src]), ["bpf/bpf_helpers.h", "linux/bpf.h"]);
});

Deno.test("scanAbsolutePaths finds plain absolute path literals, not templates or pseudo-fs", () => {
  const src = `const IPAM = "/usr/lib/cni/host-local"; conf.resolvConf = '/etc/resolv.conf';
const dir = \`/sys/fs/bpf/x\`; const t = \`/usr/include/\${arch}-linux-gnu\`;
const cni = "/opt/cni/bin"; const root = "/";`;
  assert.deepEqual(scanAbsolutePaths([src]), [
    "/etc/resolv.conf",
    "/opt/cni/bin",
    "/usr/lib/cni/host-local",
  ]);
});

Deno.test("parseLdd keeps resolved libraries and the interpreter, and refuses a missing one", () => {
  const out = `\tlinux-vdso.so.1 (0x00007ffd)
\tlibbpf.so.1 => /lib/x86_64-linux-gnu/libbpf.so.1 (0x00007f)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f)`;
  assert.deepEqual(parseLdd("x", out), [
    "/lib/x86_64-linux-gnu/libbpf.so.1",
    "/lib64/ld-linux-x86-64.so.2",
  ]);
  assert.deepEqual(parseLdd("busybox", "\tnot a dynamic executable"), []);
  assert.throws(
    () => parseLdd("tc", "\tlibmnl.so.0 => not found"),
    /"tc" needs libmnl.so.0: not found/,
  );
});

Deno.test("parseDepfile lists the headers of clang -M output", () => {
  const out = "x.o: /tmp/x.c /usr/include/linux/bpf.h \\\n  /usr/include/linux/types.h\n";
  assert.deepEqual(parseDepfile(out), [
    "/tmp/x.c",
    "/usr/include/linux/bpf.h",
    "/usr/include/linux/types.h",
  ]);
});

Deno.test("GuestTree keeps host paths and recreates each symlink on the way", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ebpfcni-km-tree-" });
  try {
    await Deno.mkdir(`${dir}/usr/lib`, { recursive: true });
    await Deno.writeTextFile(`${dir}/usr/lib/libx.so.1.2`, "x");
    await Deno.symlink("libx.so.1.2", `${dir}/usr/lib/libx.so.1`);
    await Deno.symlink("usr/lib", `${dir}/lib`);
    const tree = new GuestTree();
    tree.addPath(`${dir}/lib/libx.so.1`);
    const byPath = new Map(tree.entries().map((e) => [e.path, e]));
    assert.deepEqual(byPath.get(`${dir}/lib`), {
      kind: "symlink",
      path: `${dir}/lib`,
      target: "usr/lib",
    });
    assert.deepEqual(byPath.get(`${dir}/usr/lib/libx.so.1`), {
      kind: "symlink",
      path: `${dir}/usr/lib/libx.so.1`,
      target: "libx.so.1.2",
    });
    assert.equal(byPath.get(`${dir}/usr/lib/libx.so.1.2`)?.kind, "file");
    assert.equal(byPath.get(`${dir}/usr`)?.kind, "dir");
    const paths = tree.entries().map((e) => e.path);
    assert.deepEqual(paths, [...paths].sort(), "parents come before what they hold");
    assert.throws(() => tree.addData(`${dir}/lib/y`, "y"), /is a symlink, not a directory/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Reads a newc archive back: [name, mode, data] per member. */
function readCpio(b: Uint8Array): [string, number, string][] {
  const dec = new TextDecoder();
  const out: [string, number, string][] = [];
  let off = 0;
  const align = (n: number) => (n + 3) & ~3;
  for (;;) {
    assert.equal(dec.decode(b.subarray(off, off + 6)), "070701", `magic at ${off}`);
    const field = (i: number) =>
      parseInt(dec.decode(b.subarray(off + 6 + i * 8, off + 14 + i * 8)), 16);
    const mode = field(1);
    const size = field(6);
    const nameSize = field(11);
    const name = dec.decode(b.subarray(off + 110, off + 110 + nameSize - 1));
    off = align(off + 110 + nameSize);
    if (name === "TRAILER!!!") break;
    out.push([name, mode, dec.decode(b.subarray(off, off + size))]);
    off = align(off + size);
  }
  assert.equal(off, b.length, "nothing after the trailer");
  return out;
}

Deno.test("writeCpio writes a newc archive the kernel can unpack: dirs, files, symlinks", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ebpfcni-km-cpio-" });
  try {
    await Deno.writeTextFile(`${dir}/src`, "hello");
    const entries: CpioEntry[] = [
      { kind: "dir", path: "/km", mode: 0o755 },
      { kind: "file", path: "/km/hello", source: `${dir}/src`, mode: 0o644 },
      { kind: "data", path: "/km/env", data: new TextEncoder().encode("A=1\n"), mode: 0o600 },
      { kind: "symlink", path: "/km/sh", target: "busybox" },
    ];
    const size = await writeCpio(`${dir}/out.cpio`, entries);
    const bytes = await Deno.readFile(`${dir}/out.cpio`);
    assert.equal(size, bytes.length);
    assert.equal(size % 4, 0);
    assert.deepEqual(readCpio(bytes), [
      ["km", 0o040755, ""],
      ["km/hello", 0o100644, "hello"],
      ["km/env", 0o100600, "A=1\n"],
      ["km/sh", 0o120777, "busybox"],
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
