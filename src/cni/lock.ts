// One CNI operation at a time per attachment (container ID + interface): ADD, DEL and CHECK
// hold an exclusive flock on <stateDir>/<network>/<id>_<ifname>.lock for their whole run, and
// GC tears an attachment down only when it can take that lock at once (an attachment whose
// lock is held is being added or removed: not GC's to touch). A runtime that retries an ADD
// after a timeout, or sends a DEL while the ADD still runs, waits for the first to finish.
//
// The lock file is opened O_NOFOLLOW (a planted symlink is refused) in the private state
// directory, and removed by the holder once the attachment is gone (DEL, a failed ADD): a
// waiter that then gets the lock of a removed file notices (the path no longer names the
// file it locked) and opens the new one.
import {
  closeFd,
  LOCK_EX,
  O_CLOEXEC,
  O_CREAT,
  O_NOFOLLOW,
  O_RDWR,
  openFd,
  tryFlock,
} from "../../ffi/libc.ts";
import { Errno, SysError } from "../../ffi/errors.ts";
import { CniError, ErrCode } from "../spec/cni.ts";
import { quote } from "../spec/text.ts";

/** How long an operation waits for the one before it (ADD's agent wait is 10 s of it). */
export const LOCK_WAIT_MS = 60_000;
const POLL_MS = 10;

function inode(path: string): number | null {
  try {
    return Deno.statSync(path).ino;
  } catch {
    return null;
  }
}

export class AttachmentLock implements Disposable {
  #fd: number;
  readonly path: string;

  private constructor(fd: number, path: string) {
    this.#fd = fd;
    this.path = path;
  }

  static pathOf(dir: string, containerId: string, ifname: string): string {
    // Both were validated (no "/", no ".."): safe as a file name.
    return `${dir}/${containerId}_${ifname}.lock`;
  }

  /** Takes the lock now, or returns undefined if another process holds it. */
  static tryAcquire(dir: string, containerId: string, ifname: string): AttachmentLock | undefined {
    const path = AttachmentLock.pathOf(dir, containerId, ifname);
    for (;;) {
      let fd: number;
      try {
        fd = openFd(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600);
      } catch (err) {
        throw new CniError(
          ErrCode.IoFailure,
          `Cannot open lock file ${quote(path)}${
            err instanceof SysError && err.errno === Errno.ELOOP ? ": it is a symlink" : ""
          }`,
          String(err),
          { cause: err },
        );
      }
      let locked: boolean;
      try {
        locked = tryFlock(fd, LOCK_EX);
      } catch (err) {
        closeFd(fd);
        throw new CniError(ErrCode.IoFailure, `Cannot lock ${quote(path)}`, String(err), {
          cause: err,
        });
      }
      if (!locked) {
        closeFd(fd);
        return undefined;
      }
      // The holder before us may have removed (or a new one replaced) the file: ours must
      // still be the one the path names.
      if (inode(`/proc/self/fd/${fd}`) === inode(path)) return new AttachmentLock(fd, path);
      closeFd(fd);
    }
  }

  /** Waits (polling, so the process stays responsive) up to `waitMs` for the lock, or until
   * `signal` aborts (its reason is thrown: the call is no longer wanted). */
  static async acquire(
    dir: string,
    containerId: string,
    ifname: string,
    waitMs = LOCK_WAIT_MS,
    signal?: AbortSignal,
  ): Promise<AttachmentLock> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      signal?.throwIfAborted();
      const lock = AttachmentLock.tryAcquire(dir, containerId, ifname);
      if (lock) return lock;
      if (Date.now() >= deadline) {
        throw new CniError(
          ErrCode.TryAgainLater,
          `Another CNI operation on container ${quote(containerId)} interface ${
            quote(ifname)
          } is still running (waited ${Math.round(waitMs / 1000)} s)`,
        );
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  /** The attachment is gone: removes the lock file (still holding it). */
  discard(): void {
    try {
      Deno.removeSync(this.path);
    } catch {
      // already gone
    }
  }

  [Symbol.dispose](): void {
    if (this.#fd >= 0) closeFd(this.#fd);
    this.#fd = -1;
  }
}
