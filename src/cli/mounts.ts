// Which filesystem holds the pin directory: pins only work on bpffs, and an unmounted
// /sys/fs/bpf is the usual reason a node has no maps. Read from /proc/self/mountinfo, without
// creating anything (the pin directory may not exist: its nearest existing ancestor decides).

export interface Mount {
  mountPoint: string;
  fsType: string;
}

/** Undoes mountinfo's octal escapes ("\040" for a space). */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Parses /proc/<pid>/mountinfo (proc(5)): mount point is field 5, fs type follows " - ". */
export function parseMountInfo(text: string): Mount[] {
  const out: Mount[] = [];
  for (const line of text.split("\n")) {
    const fields = line.split(" ");
    const sep = fields.indexOf("-", 6);
    const mountPoint = fields[4];
    const fsType = sep < 0 ? undefined : fields[sep + 1];
    if (mountPoint === undefined || fsType === undefined) continue;
    out.push({ mountPoint: unescape(mountPoint), fsType });
  }
  return out;
}

/** The mount `path` (absolute, resolved) lies on: the longest matching mount point, the later
 * one when several are stacked on it. */
export function mountOf(path: string, mounts: readonly Mount[]): Mount | undefined {
  let best: Mount | undefined;
  for (const m of mounts) {
    const p = m.mountPoint;
    const inside = p === "/" || path === p || path.startsWith(`${p}/`);
    if (inside && (best === undefined || p.length >= best.mountPoint.length)) best = m;
  }
  return best;
}

export interface PinDirFs {
  /** The pin directory exists. */
  exists: boolean;
  /** The mount holding it (or its nearest existing ancestor). */
  mount: Mount | undefined;
  bpffs: boolean;
}

function parentOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

/** Finds the filesystem of `pinDir` without creating anything. */
export function pinDirFs(pinDir: string): PinDirFs {
  let path = pinDir;
  let exists = true;
  let real: string | undefined;
  for (;;) {
    try {
      real = Deno.realPathSync(path);
      break;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound) || path === "/") throw err;
      exists = false;
      path = parentOf(path);
    }
  }
  const mount = mountOf(real, parseMountInfo(Deno.readTextFileSync("/proc/self/mountinfo")));
  return { exists, mount, bpffs: mount?.fsType === "bpf" };
}
