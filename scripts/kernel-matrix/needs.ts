// What a guest must hold for a list of test files, read from the sources rather than kept
// as a list: the commands the tests run, the C libraries the FFI layer dlopens, the headers
// the BPF C they compile includes, and, from the host, the shared libraries of all of it.
import { dirname, resolve } from "node:path";

/** Commands every guest gets: the observation tools the datapath tests shell out to, a
 * shell, and kmod's modprobe so the kernel can load veth, sch_ingress, cls_bpf... on use. */
export const BASE_COMMANDS = ["ip", "tc", "bpftool", "sysctl", "modprobe", "sh"];
/** Debian packages whose programs every guest gets: a node's basic userland, which tests
 * use inside shell strings no scanner reads (`flock FILE -c "...; sleep 0.6"`). */
export const BASE_PACKAGES = ["coreutils"];

const IMPORT_RE = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)["'](\.{1,2}\/[^"']+)["']/g;
const COMMAND_RES = [
  // Any helper called as (command, [args]): run("ip", [...]), sh("tc", [...]),
  // runJson<T>("bpftool", [...]). Whatever the helpers are called, that is their shape.
  /\b[A-Za-z_$][\w$]*\s*(?:<[^>()]*>)?\(\s*["']([a-z][A-Za-z0-9_.+-]*)["']\s*,\s*\[/g,
  /\bnew\s+Deno\.Command\(\s*["']([A-Za-z0-9_.+-]+)["']/g,
  // ip netns exec <netns> <command>
  /["']exec["']\s*,\s*[^,"'\]]+,\s*["']([a-z][A-Za-z0-9_.+-]*)["']/g,
];
const SONAME_RE = /["'](lib[A-Za-z0-9_+-]*\.so(?:\.[0-9]+)*)["']/g;
// Not anchored to a line start: in a test the first line of the C sits after a backtick.
const INCLUDE_RE = /#\s*include\s*<([^>\s]+)>/g;

/** The test files and every local module they import, transitively (absolute paths). */
export function sourceClosure(entries: string[]): string[] {
  const seen = new Set<string>();
  const queue = entries.map((e) => resolve(e));
  while (queue.length) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    let text: string;
    try {
      text = Deno.readTextFileSync(file);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) continue; // reported by whoever runs it
      throw err;
    }
    seen.add(file);
    for (const m of text.matchAll(IMPORT_RE)) queue.push(resolve(dirname(file), m[1]!));
  }
  return [...seen].sort();
}

function matches(texts: string[], res: RegExp[]): string[] {
  const out = new Set<string>();
  for (const t of texts) for (const re of res) for (const m of t.matchAll(re)) out.add(m[1]!);
  return [...out].sort();
}

/** Command names passed as literals to the tests' process helpers, Deno.Command or
 * `ip netns exec`. */
export function scanCommands(texts: string[]): string[] {
  return matches(texts, COMMAND_RES);
}

/** Absolute paths given as plain string literals ("/usr/lib/cni/host-local",
 * "/etc/resolv.conf"): the guest gets those that are files on the host. */
export function scanAbsolutePaths(texts: string[]): string[] {
  return matches(texts, [
    /["'`](\/(?:etc|usr|bin|sbin|lib|lib64|opt)\/[A-Za-z0-9._+\/-]*[A-Za-z0-9])["'`]/g,
  ]);
}

/** Library sonames given as string literals (what ffi/ dlopens: "libbpf.so.1"...). */
export function scanSonames(texts: string[]): string[] {
  return matches(texts, [SONAME_RE]);
}

/** System headers named by #include <...> (the BPF C the tests compile sits in strings). */
export function scanIncludes(texts: string[]): string[] {
  return matches(texts, [INCLUDE_RE]);
}

/** Paths in `ldd` output: the resolved libraries and the program interpreter. Throws on a
 * library ldd cannot find, since the guest would lack it too. */
export function parseLdd(file: string, out: string): string[] {
  const paths: string[] = [];
  for (const line of out.split("\n")) {
    const t = line.trim();
    if (!t || t.startsWith("linux-vdso") || /statically linked|not a dynamic/.test(t)) continue;
    if (/=>\s*not found/.test(t)) throw new Error(`"${file}" needs ${t.split(/\s/)[0]}: not found`);
    const m = t.match(/=>\s*(\/\S+)/) ?? t.match(/^(\/\S+)/);
    if (m) paths.push(m[1]!);
  }
  return paths;
}

/** The header files in `clang -M` output (make rule: target, then the prerequisites). */
export function parseDepfile(out: string): string[] {
  const words = out.replace(/\\\n/g, " ").split(/\s+/).filter(Boolean);
  return words.slice(1).filter((w) => w.startsWith("/"));
}
