// Network namespaces. A namespace belongs to a thread, so entering one is synchronous on
// the calling (main) thread and always undone before returning. Netlink sockets stay bound
// to the namespace they were opened in, so we enter only to open a socket.
import {
  CLONE_NEWNET,
  closeFd,
  guardFd,
  O_CLOEXEC,
  O_RDONLY,
  openFd,
  releaseFd,
  setns,
} from "../../ffi/libc.ts";
import { NetlinkSocket } from "./socket.ts";
import { SysError } from "../../ffi/errors.ts";

/** An open namespace file; dispose of it when done (`using`). */
export class Netns implements Disposable {
  private constructor(readonly path: string, readonly fd: number) {
    guardFd(this, fd, `netns "${path}"`);
  }

  /** Opens `path` (e.g. /var/run/netns/x or /proc/PID/ns/net). NotFound → SysError. */
  static open(path: string): Netns {
    return new Netns(path, openFd(path, O_RDONLY | O_CLOEXEC));
  }

  /** Runs `fn` inside this namespace on the current thread, then returns to the original. */
  run<T>(fn: () => T): T {
    const home = openFd("/proc/thread-self/ns/net");
    try {
      try {
        setns(this.fd, CLONE_NEWNET);
      } catch (err) {
        if (err instanceof SysError && err.errno === 22) {
          throw new SysError(`enter "${this.path}"`, 22, "not a network namespace", {
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
