// Reading one file of the manifest directory without trusting what the path is: only a regular
// file, at most MAX_FILE_BYTES, and only inside the directory once symlinks are resolved (a
// ConfigMap volume's files are symlinks through `..data`, which resolve inside it; a symlink to
// a token or a key elsewhere is not followed). It is opened non-blocking and checked again
// through the open descriptor, so a FIFO or an outside file swapped in after the checks can
// neither hang the source nor be read.
import { closeFd, O_CLOEXEC, O_NOCTTY, O_NONBLOCK, O_RDONLY, openFd } from "../../ffi/libc.ts";
import { SysError } from "../../ffi/errors.ts";
import { quote } from "../spec/text.ts";

/** The most one file may hold (a Kubernetes object is at most 1.5 MiB in etcd). */
export const MAX_FILE_BYTES = 8 * 1024 * 1024;

/** A file the source will not read; the message says why, without the path. */
export class FileRefused extends Error {
  override name = "FileRefused";
}

/** The path's file is gone (removed meanwhile, or a dangling symlink). */
export class FileGone extends Error {
  override name = "FileGone";
}

/** `path` is `root` or under it (both resolved). */
export function isInside(root: string, path: string): boolean {
  const r = root.endsWith("/") ? root : `${root}/`;
  return path === root || path.startsWith(r);
}

function kindOf(st: Deno.FileInfo): string {
  if (st.isDirectory) return "a directory";
  if (st.isFifo) return "a FIFO";
  if (st.isSocket) return "a socket";
  if (st.isCharDevice) return "a character device";
  if (st.isBlockDevice) return "a block device";
  return "not a regular file";
}

function checkRegular(st: Deno.FileInfo, limit: number): void {
  if (!st.isFile) throw new FileRefused(`not a regular file (${kindOf(st)}): not read`);
  if (st.size > limit) {
    throw new FileRefused(
      `${st.size} bytes, more than the limit of ${limit} bytes for one file: not read`,
    );
  }
}

async function gone<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw new FileGone("gone", { cause: err });
    throw err;
  }
}

/** The text of the file at `path` in the directory whose real path is `root`. Throws
 * FileRefused (say why), FileGone (skip it), or another error (could not read it). */
export async function readManifestFile(
  root: string,
  path: string,
  limit = MAX_FILE_BYTES,
): Promise<string> {
  const real = await gone(Deno.realPath(path));
  if (!isInside(root, real)) {
    throw new FileRefused(
      `a symbolic link to ${quote(real)}, outside the directory: not followed`,
    );
  }
  checkRegular(await gone(Deno.stat(real)), limit);
  let fd: number;
  try {
    fd = openFd(real, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  } catch (err) {
    if (err instanceof SysError && err.notFound) throw new FileGone("gone", { cause: err });
    throw err;
  }
  try {
    // What was opened, whatever the path is now.
    const opened = `/proc/self/fd/${fd}`;
    checkRegular(Deno.statSync(opened), limit);
    const target = Deno.readLinkSync(opened);
    if (!isInside(root, target)) {
      throw new FileRefused(`resolves to ${quote(target)}, outside the directory: not followed`);
    }
    using file = await Deno.open(opened);
    const chunks: Uint8Array[] = [];
    let n = 0;
    for (;;) {
      const buf = new Uint8Array(64 * 1024);
      const r = await file.read(buf);
      if (r === null) break;
      chunks.push(buf.subarray(0, r));
      n += r;
      // It grew since the check.
      if (n > limit) {
        throw new FileRefused(`more than the limit of ${limit} bytes for one file: not read`);
      }
    }
    const all = new Uint8Array(n);
    let at = 0;
    for (const c of chunks) (all.set(c, at), at += c.length);
    return new TextDecoder().decode(all);
  } finally {
    closeFd(fd);
  }
}
