// Network namespaces. A namespace belongs to a thread, so entering one is synchronous on
// the calling (main) thread and always undone before returning. Netlink sockets stay bound
// to the namespace they were opened in, so we enter only to open a socket.
//
// A path handed to us (CNI_NETNS) is resolved before it is judged or opened (`..` and symlinks
// cannot make a path look like something else), opened without blocking (a FIFO would block
// open(2), and with it the thread) and kept only if the kernel says the file is a network
// namespace (NS_GET_NSTYPE: nsfs files alone answer it).
import {
  CLONE_NEWNET,
  closeFd,
  guardFd,
  nsType,
  O_CLOEXEC,
  O_NOFOLLOW,
  O_NONBLOCK,
  O_RDONLY,
  openFd,
  releaseFd,
  setns,
} from "../../ffi/libc.ts";
import { NetlinkSocket } from "./socket.ts";
import { Errno, SysError } from "../../ffi/errors.ts";

/** A namespace as the kernel knows it: equal ids, same namespace. */
export interface NsId {
  dev: number;
  ino: number;
}

/** A namespace file of a process (or thread): a magic link, the one kind of symlink a
 * namespace path may end in (of any type: NS_GET_NSTYPE then tells). */
const PROC_NS_RE = /^\/proc\/\d+\/(task\/\d+\/)?ns\/[a-z_]+$/;

/** Why a path is not opened as a network namespace. */
export class NetnsPathError extends Error {
  override name = "NetnsPathError";
  /** What is wrong with the path, as the end of a sentence naming it. */
  readonly what: string;
  constructor(
    readonly path: string,
    readonly reason: "missing" | "not a network namespace" | "cannot be opened",
    options?: ErrorOptions,
  ) {
    const what = reason === "missing"
      ? "does not exist"
      : reason === "cannot be opened"
      ? reason
      : `is ${reason}`;
    super(`${JSON.stringify(path)} ${what}`, options);
    this.what = what;
  }
}

/** `path` with every `..` and symlink resolved. A /proc/PID/ns/net magic link at its end names
 * no file that realpath could return: there only the directory is resolved. */
export function resolveNetnsPath(path: string): string {
  try {
    return Deno.realPathSync(path);
  } catch {
    // missing, or ending in a magic link: resolve the directory, keep the name
  }
  const slash = path.lastIndexOf("/");
  const base = path.slice(slash + 1);
  if (base === "" || base === "." || base === "..") return path;
  let dir: string;
  try {
    dir = Deno.realPathSync(path.slice(0, slash) || "/");
  } catch {
    return path; // its directory is missing: opening it says so
  }
  return `${dir === "/" ? "" : dir}/${base}`;
}

/** The namespace behind a path the caller trusts (/proc/self/ns/net, /proc/PID/ns/net). */
export function nsIdOf(path: string): NsId | undefined {
  try {
    const st = Deno.statSync(path);
    return st.ino === null ? undefined : { dev: st.dev, ino: st.ino };
  } catch {
    return undefined;
  }
}

export function sameNs(a: NsId | undefined, b: NsId | undefined): boolean {
  return a !== undefined && b !== undefined && a.dev === b.dev && a.ino === b.ino;
}

/** An open namespace file; dispose of it when done (`using`). */
export class Netns implements Disposable {
  private constructor(readonly path: string, readonly fd: number, readonly resolved = path) {
    guardFd(this, fd, `netns "${path}"`);
  }

  /** Opens the network namespace `path` names (e.g. /var/run/netns/x or /proc/PID/ns/net),
   * resolved first (`resolved`); anything else is a NetnsPathError, found without blocking. */
  static open(path: string): Netns {
    const resolved = resolveNetnsPath(path);
    const nofollow = PROC_NS_RE.test(resolved) ? 0 : O_NOFOLLOW;
    let fd: number;
    try {
      fd = openFd(resolved, O_RDONLY | O_NONBLOCK | O_CLOEXEC | nofollow);
    } catch (err) {
      const missing = err instanceof SysError && err.notFound;
      throw new NetnsPathError(path, missing ? "missing" : "cannot be opened", { cause: err });
    }
    let type = 0;
    try {
      type = nsType(fd);
    } catch {
      // not a namespace file at all (ENOTTY)
    }
    if (type !== CLONE_NEWNET) {
      closeFd(fd);
      throw new NetnsPathError(path, "not a network namespace");
    }
    return new Netns(path, fd, resolved);
  }

  /** The namespace's identity (to compare with a process's /proc/PID/ns/net). */
  id(): NsId | undefined {
    return nsIdOf(`/proc/self/fd/${this.fd}`);
  }

  /** Runs `fn` inside this namespace on the current thread, then returns to the original. */
  run<T>(fn: () => T): T {
    const home = openFd("/proc/thread-self/ns/net");
    try {
      try {
        setns(this.fd, CLONE_NEWNET);
      } catch (err) {
        if (err instanceof SysError && err.errno === Errno.EINVAL) {
          throw new SysError(`enter "${this.path}"`, Errno.EINVAL, "not a network namespace", {
            cause: err,
          });
        }
        throw err;
      }
      try {
        return fn();
      } finally {
        try {
          setns(home, CLONE_NEWNET);
        } catch (err) {
          // Carrying on would run host-side work (rollback included) inside the pod's
          // namespace: stop here, the runtime sees a failed call.
          console.error(`ebpfcni: fatal: cannot return from "${this.path}": ${err}`);
          Deno.exit(70);
        }
      }
    } finally {
      closeFd(home);
    }
  }

  /** A netlink socket that operates inside this namespace. */
  socket(): NetlinkSocket {
    return this.run(() => new NetlinkSocket());
  }

  #closed = false;

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    releaseFd(this);
    closeFd(this.fd);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
