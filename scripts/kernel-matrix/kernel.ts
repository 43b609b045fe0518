// Debian's kernels for the guests: the newest linux-image package of a series (6.1, 6.12),
// fetched with apt-get download and unpacked with dpkg-deb into a work directory (never
// installed on the host), with the module indexes its postinst would have made.
import { exec, log, tryExec } from "./sh.ts";

export interface DebianKernel {
  /** linux-image-6.1.0-57-cloud-amd64 */
  package: string;
  /** The package version, 6.1.192-3 */
  version: string;
  /** What `uname -r` says once booted: 6.1.0-57-cloud-amd64 */
  release: string;
  vmlinuz: string;
  /** The unpacked /lib/modules/<release> */
  modulesDir: string;
}

/** Debian's image package names for a kernel series, newest first: 6.1 is
 * linux-image-6.1.0-<ABI>-<flavour>, 6.12 (also in bookworm) linux-image-6.12.<N>+deb12-<flavour>. */
export function newestFirst(names: string[], series: string, flavour: string): string[] {
  const esc = (s: string) => s.replaceAll(".", "\\.").replaceAll("+", "\\+");
  const re = new RegExp(
    `^linux-image-${esc(series)}(?:\\.0-(\\d+)|\\.(\\d+)\\+deb\\d+)-${esc(flavour)}$`,
  );
  return names
    .map((n) => {
      const m = n.match(re);
      return { n, abi: m ? Number(m[1] ?? m[2]) : NaN };
    })
    .filter((x) => !Number.isNaN(x.abi))
    .sort((a, b) => b.abi - a.abi)
    .map((x) => x.n);
}

async function search(series: string, flavour: string): Promise<string[]> {
  const pattern = `^linux-image-${series.replaceAll(".", "\\.")}[.-].*-${flavour}$`;
  const r = await tryExec("apt-cache", ["search", "--names-only", pattern]);
  const names = r.stdout.split("\n").map((l) => l.split(" ")[0] ?? "").filter(Boolean);
  return newestFirst(names, series, flavour);
}

export async function fetchDebianKernel(
  series: string,
  flavour: string,
  workDir: string,
): Promise<DebianKernel> {
  await Deno.mkdir(workDir, { recursive: true });
  // Old apt lists may know no such package, or one the mirror has dropped since: then
  // update them once and try again. (_apt cannot enter the private temp dir, so apt
  // downloads as root there; it says so on stderr, which is not shown.)
  let pkg: string | undefined;
  for (const fresh of [false, true]) {
    if (fresh) {
      log("apt-get update (the apt lists are missing or out of date)");
      await exec("apt-get", ["update", "-qq"]);
    }
    pkg = (await search(series, flavour))[0];
    if (!pkg) continue;
    log(`downloading ${pkg}`);
    const r = await tryExec("apt-get", ["download", "-qq", pkg], { cwd: workDir });
    if (r.code === 0) break;
    if (fresh) throw new Error(`apt-get download ${pkg} failed: ${r.stderr.trim()}`);
    pkg = undefined;
  }
  if (!pkg) {
    throw new Error(`No Debian linux-image package of ${series} for ${flavour} in the apt sources`);
  }
  const debs = [...Deno.readDirSync(workDir)].filter((e) => e.name.startsWith(`${pkg}_`));
  const deb = debs[0] && `${workDir}/${debs[0].name}`;
  if (!deb) throw new Error(`apt-get download ${pkg} left no .deb in "${workDir}"`);
  const version = (await exec("dpkg-deb", ["-f", deb, "Version"])).trim();
  const root = `${workDir}/root`;
  await exec("dpkg-deb", ["-x", deb, root]);
  await Deno.remove(deb);
  const releases = [...Deno.readDirSync(`${root}/lib/modules`)].map((e) => e.name);
  const release = releases[0];
  if (releases.length !== 1 || !release) {
    throw new Error(`${pkg} holds ${releases.length} module trees, expected one`);
  }
  const vmlinuz = `${root}/boot/vmlinuz-${release}`;
  Deno.statSync(vmlinuz);
  // The package ships no modules.dep (postinst runs depmod); modprobe in the guest needs it.
  await exec("depmod", ["-b", root, release]);
  return { package: pkg, version, release, vmlinuz, modulesDir: `${root}/lib/modules/${release}` };
}

/** Modules under `subdirs` of an unpacked module tree, with everything they depend on
 * (from modules.dep), as paths relative to the tree. */
export function moduleClosure(modulesDir: string, subdirs: string[]): string[] {
  const dep = new Map<string, string[]>();
  for (const line of Deno.readTextFileSync(`${modulesDir}/modules.dep`).split("\n")) {
    const [mod, deps] = line.split(":");
    if (mod) dep.set(mod, (deps ?? "").trim().split(/\s+/).filter(Boolean));
  }
  const out = new Set<string>();
  const queue = [...dep.keys()].filter((m) => subdirs.some((d) => m.startsWith(`kernel/${d}/`)));
  while (queue.length) {
    const m = queue.pop()!;
    if (out.has(m)) continue;
    out.add(m);
    queue.push(...(dep.get(m) ?? []));
  }
  return [...out].sort();
}
