// A newc ("070701") cpio writer: the format the kernel unpacks an initramfs from
// (Documentation/driver-api/early-userspace/buffer-format.rst). Written here so building a
// guest needs neither a cpio tool nor a staging copy of the files.

/** One member of the archive; `path` is absolute in the guest. */
export type CpioEntry =
  | { kind: "dir"; path: string; mode: number }
  | { kind: "file"; path: string; source: string; mode: number }
  | { kind: "data"; path: string; data: Uint8Array; mode: number }
  | { kind: "symlink"; path: string; target: string };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const encoder = new TextEncoder();

function hex8(n: number): string {
  return n.toString(16).padStart(8, "0");
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

/** The 110-byte header plus the NUL-terminated name, padded to 4 bytes. */
export function cpioHeader(
  ino: number,
  mode: number,
  nlink: number,
  size: number,
  name: string,
): Uint8Array {
  const nameBytes = encoder.encode(name);
  const fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, nameBytes.length + 1, 0];
  const head = encoder.encode("070701" + fields.map(hex8).join(""));
  const out = new Uint8Array(
    head.length + nameBytes.length + 1 + pad4(head.length + nameBytes.length + 1),
  );
  out.set(head, 0);
  out.set(nameBytes, head.length);
  return out;
}

/** Writes `entries` (parents before children) to `out`; returns the archive's size. */
export async function writeCpio(out: string, entries: CpioEntry[]): Promise<number> {
  const file = await Deno.open(out, { write: true, create: true, truncate: true });
  let written = 0;
  const write = async (b: Uint8Array) => {
    for (let off = 0; off < b.length;) off += await file.write(b.subarray(off));
    written += b.length;
  };
  try {
    let ino = 1;
    for (const e of entries) {
      // The kernel wants names relative to the root.
      const name = e.path.replace(/^\/+/, "");
      let data: Uint8Array;
      let mode: number;
      if (e.kind === "dir") {
        await write(cpioHeader(ino++, S_IFDIR | e.mode, 2, 0, name));
        continue;
      } else if (e.kind === "symlink") {
        data = encoder.encode(e.target);
        mode = S_IFLNK | 0o777;
      } else if (e.kind === "file") {
        data = await Deno.readFile(e.source);
        mode = S_IFREG | e.mode;
      } else {
        data = e.data;
        mode = S_IFREG | e.mode;
      }
      await write(cpioHeader(ino++, mode, 1, data.length, name));
      await write(data);
      await write(new Uint8Array(pad4(data.length)));
    }
    await write(cpioHeader(0, 0, 1, 0, "TRAILER!!!"));
  } finally {
    file.close();
  }
  return written;
}
