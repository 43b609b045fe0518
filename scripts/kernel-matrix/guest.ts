// Builds a guest's initramfs: busybox for /init, the pinned deno, the checkout at its host
// path, a prepared DENO_DIR, the commands and C libraries the tests need with their shared
// libraries (from ldd), the headers the BPF C in the tests includes (from clang -M), and
// the kernel's network modules. Nothing here is a fixed list of host paths: it is all read
// from the test sources and the host, so it follows the tests as they change.
import { relative } from "node:path";
import { writeCpio } from "./cpio.ts";
import { type DebianKernel, moduleClosure } from "./kernel.ts";
import {
  BASE_COMMANDS,
  BASE_PACKAGES,
  parseDepfile,
  parseLdd,
  scanAbsolutePaths,
  scanCommands,
  scanIncludes,
  scanSonames,
  sourceClosure,
} from "./needs.ts";
import { exec, log, tryExec, which } from "./sh.ts";
import { GuestTree } from "./tree.ts";

/** Where the prepared DENO_DIR lives in the guest (the guest's /tmp is a fresh tmpfs). */
export const GUEST_DENO_DIR = "/var/cache/ebpfcni-kernel-matrix/deno";
/** The busybox applets init.sh and run-tests.sh use, and no others: a tool the tests need
 * must come from the host, not from a busybox stand-in that behaves differently. */
const APPLETS = [
  "sh",
  "mount",
  "mkdir",
  "ln",
  "cut",
  "hostname",
  "stty",
  "poweroff",
  "sync",
  "uname",
  "mktemp",
  "base64",
  "rm",
  "tr",
  "cat",
];
/** Module trees of the kernel package that go in: networking and network drivers (veth,
 * sch_ingress, cls_bpf, and whatever later tests need there), plus what they depend on. */
const MODULE_SUBDIRS = ["net", "drivers/net"];

export interface GuestPlan {
  /** The checkout, as an absolute path; it keeps this path in the guest. */
  checkout: string;
  /** deno as the checkout names it (checkout/.deno/bin/deno). */
  deno: string;
  /** Test files, relative to the checkout. */
  tests: string[];
  /** The probe script, relative to the checkout. */
  probe: string;
  /** A DENO_DIR on the host that holds the tests' module graph. */
  denoDir: string;
  kernel: DebianKernel;
  /** More commands to put in (KERNEL_MATRIX_EXTRA_COMMANDS). */
  extraCommands: string[];
}

export interface GuestSummary {
  bytes: number;
  files: number;
  commands: string[];
  libraries: string[];
  headers: number;
  modules: number;
  /** Files named by absolute path in the sources that the guest got. */
  named: string[];
  /** What the tests name but this host lacks: the guest lacks it too, and tests using it fail. */
  missing: string[];
}

const SCRIPTS = new URL(".", import.meta.url).pathname;

/** ldconfig's cache: soname -> path, for the libraries the FFI layer dlopens by name. */
async function ldconfigPaths(): Promise<Map<string, string>> {
  const out = await exec("ldconfig", ["-p"]);
  const map = new Map<string, string>();
  for (const line of out.split("\n")) {
    const m = line.match(/^\s*(\S+)\s+\(([^)]*)\)\s+=>\s+(\S+)/);
    if (m && m[2]!.includes("x86-64") && !map.has(m[1]!)) map.set(m[1]!, m[3]!);
  }
  return map;
}

/** A binary, its program interpreter if it is a script, and its shared libraries. */
async function addProgram(tree: GuestTree, path: string, seen = new Set<string>()): Promise<void> {
  if (seen.has(path)) return;
  seen.add(path);
  tree.addPath(path);
  const head = new Uint8Array(256);
  const f = await Deno.open(path);
  const n = (await f.read(head)) ?? 0;
  f.close();
  const text = new TextDecoder().decode(head.subarray(0, n));
  if (text.startsWith("#!")) {
    const interp = text.slice(2).split("\n")[0]!.trim().split(/\s+/)[0];
    if (interp) await addProgram(tree, interp, seen);
    return;
  }
  const r = await tryExec("ldd", [path]);
  for (const lib of parseLdd(path, r.stdout + r.stderr)) tree.addPath(lib);
}

/** Headers (and the headers they include) for `#include <name>` as the tests compile C: for
 * the host (a layout check) and as BPF (clang -target bpf with the multiarch include
 * directory). Both closures go in, whichever of them clang can make. */
async function headerClosure(clang: string, includes: string[], tmp: string): Promise<string[]> {
  const out = new Set<string>();
  const src = `${tmp}/include-probe.c`;
  const targets = [[], ["-target", "bpf", `-I/usr/include/${Deno.build.arch}-linux-gnu`]];
  for (const h of includes) {
    await Deno.writeTextFile(src, `#include <${h}>\n`);
    const errors: string[] = [];
    for (const flags of targets) {
      const r = await tryExec(clang, ["-M", ...flags, src]);
      if (r.code !== 0) {
        errors.push(r.stderr.trim().split("\n").at(-1) ?? "");
        continue;
      }
      for (const p of parseDepfile(r.stdout)) if (p !== src) out.add(p);
    }
    if (errors.length === targets.length) {
      log(`clang cannot find <${h}> on this host: ${errors.join("; ")}`);
    }
  }
  await Deno.remove(src).catch(() => {});
  return [...out].sort();
}

export async function buildGuest(plan: GuestPlan, out: string, tmp: string): Promise<GuestSummary> {
  const tree = new GuestTree();
  const missing: string[] = [];
  const root = plan.checkout;

  const bpfSources = [...Deno.readDirSync(`${root}/bpf`)]
    .filter((e) => /\.[ch]$/.test(e.name) && e.name !== "vmlinux.h")
    .map((e) => `${root}/bpf/${e.name}`);
  const sources = sourceClosure([...plan.tests, plan.probe].map((t) => `${root}/${t}`));
  const texts = [...sources, ...bpfSources].map((p) => Deno.readTextFileSync(p));

  // Commands.
  const names = [...new Set([...BASE_COMMANDS, ...scanCommands(texts), ...plan.extraCommands])];
  const commands: string[] = [];
  for (const name of names.sort()) {
    const path = which(name);
    if (!path) {
      missing.push(`command ${name}`);
      continue;
    }
    commands.push(path);
    await addProgram(tree, path);
  }

  // The base packages' programs.
  for (const pkg of BASE_PACKAGES) {
    const r = await tryExec("dpkg-query", ["-L", pkg]);
    if (r.code !== 0) {
      missing.push(`package ${pkg}`);
      continue;
    }
    for (const p of r.stdout.split("\n")) {
      if (!/^\/(usr\/)?s?bin\/[^/]+$/.test(p)) continue;
      const st = await Deno.lstat(p).catch(() => undefined);
      if (st?.isFile && (st.mode ?? 0) & 0o111) await addProgram(tree, p);
    }
  }

  // Files the sources name by absolute path (a plugin binary, /etc/resolv.conf).
  const named: string[] = [];
  for (const p of scanAbsolutePaths(texts)) {
    const st = await Deno.stat(p).catch(() => undefined);
    if (!st?.isFile) continue;
    named.push(p);
    if ((st.mode ?? 0) & 0o111) await addProgram(tree, p);
    else tree.addPath(p);
  }

  // Libraries dlopened by soname, and deno itself.
  const ldconfig = await ldconfigPaths();
  const libraries: string[] = [];
  for (const soname of scanSonames(texts)) {
    const path = ldconfig.get(soname);
    if (!path) {
      missing.push(`library ${soname}`);
      continue;
    }
    libraries.push(path);
    await addProgram(tree, path);
  }
  await addProgram(tree, plan.deno);

  // Headers for clang, when the tests run clang.
  let headers: string[] = [];
  const clang = commands.find((c) => c.endsWith("/clang"));
  const includes = scanIncludes(texts);
  if (clang && includes.length) {
    headers = await headerClosure(clang, includes, tmp);
    for (const h of headers) tree.addPath(h);
  }

  // The host's top-level symlinks (merged /usr: /bin, /sbin, /lib, /lib64 -> usr/...), so
  // /sbin/modprobe or /bin/sh resolve in the guest whichever name a tool was found under.
  for (const e of Deno.readDirSync("/")) {
    if (!e.isSymlink) continue;
    try {
      if (Deno.statSync(`/${e.name}`).isDirectory) tree.addPath(`/${e.name}`);
    } catch {
      // dangling (/vmlinuz without /boot): nothing to resolve
    }
  }
  // The kernel's modules, at /lib/modules/<release> as the guest's /lib resolves it.
  const modulesAt = `${Deno.realPathSync("/lib")}/modules/${plan.kernel.release}`;
  const modules = moduleClosure(plan.kernel.modulesDir, MODULE_SUBDIRS);
  for (const m of modules) tree.addFileAt(`${modulesAt}/${m}`, `${plan.kernel.modulesDir}/${m}`);
  for (const e of Deno.readDirSync(plan.kernel.modulesDir)) {
    if (e.isFile && e.name.startsWith("modules.")) {
      tree.addFileAt(`${modulesAt}/${e.name}`, `${plan.kernel.modulesDir}/${e.name}`);
    }
  }

  // The checkout (without its git data, deno install and our own outputs) and DENO_DIR.
  const realRoot = Deno.realPathSync(root);
  const skipped = new Set([".git", ".deno", "dist/kernel-matrix", "node_modules"]);
  tree.addTree(root, (p) => {
    const rel = relative(realRoot, p);
    return skipped.has(rel) || /^isolate-.*\.log$/.test(rel);
  });
  // The interpreters of the checkout's scripts (dist/ebpfcni may be a #!/bin/sh launcher).
  for (const interp of await scriptInterpreters(tree)) {
    if (interp.missing) missing.push(`interpreter ${interp.name} (of ${interp.script})`);
    else await addProgram(tree, interp.name);
  }
  addTreeAt(tree, plan.denoDir, GUEST_DENO_DIR);

  // busybox for init, then init and its configuration.
  const busybox = which("busybox");
  if (!busybox) throw new Error("busybox is not installed (apt-get install busybox-static)");
  const realBusybox = Deno.realPathSync(busybox);
  tree.addFileAt("/km/bin/busybox", realBusybox, 0o755);
  // busybox-static needs nothing; Debian's dynamic busybox needs its libc.
  const bbLdd = await tryExec("ldd", [realBusybox]);
  for (const lib of parseLdd(realBusybox, bbLdd.stdout + bbLdd.stderr)) tree.addPath(lib);
  for (const a of APPLETS) tree.addSymlink(`/km/bin/${a}`, "busybox");
  tree.addFileAt("/init", `${SCRIPTS}init.sh`, 0o755);
  tree.addFileAt("/km/run-tests.sh", `${SCRIPTS}run-tests.sh`, 0o755);
  tree.addData(
    "/km/env",
    [
      `CHECKOUT='${root}'`,
      `DENO='${plan.deno}'`,
      `DENO_DIR='${GUEST_DENO_DIR}'`,
      `PROBE='${plan.probe}'`,
      `TESTS='${plan.tests.join(" ")}'`,
      `MODPROBE='${commands.find((c) => c.endsWith("/modprobe")) ?? ""}'`,
      `IP='${commands.find((c) => c.endsWith("/ip")) ?? ""}'`,
      "",
    ].join("\n"),
  );
  const etc: [string, string][] = [
    ["/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"],
    ["/etc/group", "root:x:0:\n"],
    ["/etc/hosts", "127.0.0.1 localhost\n::1 localhost\n"],
  ];
  for (const [path, text] of etc) if (!tree.has(path)) tree.addData(path, text);
  for (const d of ["/proc", "/sys", "/dev", "/run", "/tmp", "/root"]) tree.mkdirs(d);
  if (!tree.has("/var/run")) tree.addSymlink("/var/run", "../run"); // ip netns keeps its mounts there

  const bytes = await writeCpio(out, tree.entries());
  return {
    bytes,
    files: tree.files().length,
    commands,
    libraries,
    headers: headers.length,
    modules: modules.length,
    named,
    missing,
  };
}

/** `#!` interpreters of the executable files in the tree so far: the program itself, or
 * for `#!/usr/bin/env NAME` also NAME from PATH. */
async function scriptInterpreters(
  tree: GuestTree,
): Promise<{ name: string; script: string; missing?: boolean }[]> {
  const out = new Map<string, { name: string; script: string; missing?: boolean }>();
  for (const e of tree.entries()) {
    if (e.kind !== "file" || !(e.mode & 0o111)) continue;
    const f = await Deno.open(e.source);
    const head = new Uint8Array(128);
    const n = (await f.read(head)) ?? 0;
    f.close();
    const line = new TextDecoder().decode(head.subarray(0, n)).split("\n")[0]!;
    if (!line.startsWith("#!")) continue;
    const [prog, arg] = line.slice(2).trim().split(/\s+/);
    if (!prog || prog.startsWith("/km/")) continue; // the guest's own init (busybox)
    const exists = await Deno.stat(prog).then(() => true, () => false);
    out.set(prog, { name: prog, script: e.path, ...(exists ? {} : { missing: true }) });
    if (prog.endsWith("/env") && arg) {
      const path = which(arg);
      out.set(
        arg,
        path ? { name: path, script: e.path } : { name: arg, script: e.path, missing: true },
      );
    }
  }
  return [...out.values()];
}

/** A host directory copied to another guest path (regular files and symlinks). */
function addTreeAt(tree: GuestTree, hostDir: string, guestDir: string): void {
  tree.mkdirs(guestDir);
  for (const e of Deno.readDirSync(hostDir)) {
    const h = `${hostDir}/${e.name}`;
    const g = `${guestDir}/${e.name}`;
    if (e.isSymlink) tree.addSymlink(g, Deno.readLinkSync(h));
    else if (e.isDirectory) addTreeAt(tree, h, g);
    else tree.addFileAt(g, h);
  }
}
