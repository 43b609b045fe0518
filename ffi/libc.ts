// libc symbols the product needs: namespaces (setns), fds, interface lookup, flock, errno,
// syscall (for bpf(2)), and vsnprintf to render libbpf's printf-style log lines.
import { openLibrary, toCString } from "./_lib.ts";
import { Errno, SysError } from "./errors.ts";

const symbols = {
  setns: { parameters: ["i32", "i32"], result: "i32" }, // int fd, int nstype
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" }, // path, flags, mode
  close: { parameters: ["i32"], result: "i32" },
  if_nametoindex: { parameters: ["buffer"], result: "u32" }, // const char *
  flock: { parameters: ["i32", "i32"], result: "i32" }, // fd, operation
  __errno_location: { parameters: [], result: "pointer" }, // int *
  vsnprintf: { parameters: ["buffer", "usize", "pointer", "pointer"], result: "i32" }, // buf, n, fmt, va_list
  clock_gettime: { parameters: ["i32", "buffer"], result: "i32" }, // clockid_t, struct timespec *
  // epfd, struct epoll_event *, maxevents, timeout ms; on a worker thread, so waiting for
  // events does not block the event loop.
  epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32", nonblocking: true },
  inotify_init1: { parameters: ["i32"], result: "i32" }, // int flags
  inotify_add_watch: { parameters: ["i32", "buffer", "u32"], result: "i32" }, // fd, path, mask
  // struct pollfd *, nfds, timeout ms; on a worker thread, like epoll_wait.
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" }, // fd, buf, count
  // long syscall(long number, ...): three integer/pointer arguments are all bpf(2) needs.
  syscall: { parameters: ["i64", "i64", "u64", "u64"], result: "i64" },
  // fd, level, optname, void *optval, socklen_t *optlen
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" }, // fd, sockaddr *, socklen_t *
  ioctl: { parameters: ["i32", "u64", "u64"], result: "i32" }, // fd, request, arg (an integer here)
} as const satisfies Deno.ForeignLibraryInterface;

let lib: { symbols: Deno.DynamicLibrary<typeof symbols>["symbols"] } | undefined;
function libc() {
  return lib ??= openLibrary("libc", "libc.so.6", "EBPFCNI_LIBC", symbols, "libc6");
}

export const O_RDONLY = 0;
export const O_CLOEXEC = 0o2000000;
export const O_DIRECTORY = 0o200000;
export const CLONE_NEWNET = 0x40000000;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const O_RDWR = 2;
export const O_CREAT = 0o100;
export const O_NOFOLLOW = 0o400000;
export const O_NONBLOCK = 0o4000;
export const O_NOCTTY = 0o400;

/** errno of the last failed libc call on this thread. */
export function errno(): number {
  const p = libc().symbols.__errno_location();
  return p ? new Deno.UnsafePointerView(p).getInt32() : 0;
}

function check(op: string, rc: number): number {
  if (rc < 0) throw new SysError(op, errno());
  return rc;
}

export function openFd(path: string, flags = O_RDONLY | O_CLOEXEC, mode = 0): number {
  return check(`open "${path}"`, libc().symbols.open(toCString(path), flags, mode));
}

export function closeFd(fd: number): void {
  libc().symbols.close(fd);
}

// A handle that owns an fd and is dropped without close() (or `using`) would leak it for the
// life of the process, which for the agent is long: the registry closes it when the handle
// is collected, and says so on stderr.
const unclosed = new FinalizationRegistry<{ fd: number; what: string }>(({ fd, what }) => {
  closeFd(fd);
  try {
    Deno.stderr.writeSync(new TextEncoder().encode(`ebpfcni: closed leaked ${what} fd ${fd}\n`));
  } catch {
    // nothing to report to
  }
});

/** Closes `fd` if `owner` is garbage-collected before `releaseFd(owner)`. */
export function guardFd(owner: object, fd: number, what: string): void {
  unclosed.register(owner, { fd, what }, owner);
}

/** `owner` closed its fd itself. */
export function releaseFd(owner: object): void {
  unclosed.unregister(owner);
}

/** Moves the calling thread into the namespace behind `fd`. */
export function setns(fd: number, nstype: number): void {
  check("setns", libc().symbols.setns(fd, nstype));
}

/** Interface index of `name` in the calling thread's network namespace, or 0. */
export function ifNameToIndex(name: string): number {
  return libc().symbols.if_nametoindex(toCString(name));
}

export function flock(fd: number, op: number): void {
  check("flock", libc().symbols.flock(fd, op));
}

/** flock(op | LOCK_NB): false when someone else holds it. */
export function tryFlock(fd: number, op: number): boolean {
  if (libc().symbols.flock(fd, op | LOCK_NB) === 0) return true;
  const e = errno();
  if (e === Errno.EAGAIN) return false;
  throw new SysError("flock", e);
}

/** Waits up to `timeoutMs` for `epfd` to report an event (off the main thread): true when it
 * did, false on timeout or interruption. */
export async function epollWait(epfd: number, timeoutMs: number): Promise<boolean> {
  const events = new Uint8Array(12); // struct epoll_event (packed on x86-64)
  const n = await libc().symbols.epoll_wait(epfd, events, 1, timeoutMs);
  return n > 0;
}

const IN_NONBLOCK = 0o4000;
const IN_CLOEXEC = 0o2000000;
/** inotify events that mean a directory's entries (or a file's content) changed. */
export const IN_MODIFY = 0x2;
export const IN_ATTRIB = 0x4;
export const IN_CLOSE_WRITE = 0x8;
export const IN_MOVED_FROM = 0x40;
export const IN_MOVED_TO = 0x80;
export const IN_CREATE = 0x100;
export const IN_DELETE = 0x200;
export const IN_DELETE_SELF = 0x400;
export const IN_MOVE_SELF = 0x800;
const POLLIN = 1;

/** A non-blocking inotify instance watching `path` for `mask`. Deno.watchFs is not used for
 * a directory others write to: its event filter opens each event's path (same_file), and a
 * FIFO there blocks that open, and with it every later event, until a writer comes. */
export function inotifyWatch(path: string, mask: number): number {
  const fd = check("inotify_init1", libc().symbols.inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  try {
    const rc = libc().symbols.inotify_add_watch(fd, toCString(path), mask);
    check(`inotify_add_watch "${path}"`, rc);
  } catch (err) {
    closeFd(fd);
    throw err;
  }
  return fd;
}

/** Waits up to `timeoutMs` for `fd` to be readable (off the main thread): true when it is,
 * false on timeout or failure (its errno is that worker thread's, out of reach: EINTR is the
 * only one a valid fd gives). */
export async function pollReadable(fd: number, timeoutMs: number): Promise<boolean> {
  const pfd = new Uint8Array(8); // struct pollfd { int fd; short events; short revents; }
  const v = new DataView(pfd.buffer);
  v.setInt32(0, fd, true);
  v.setInt16(4, POLLIN, true);
  return await libc().symbols.poll(pfd, 1n, timeoutMs) > 0;
}

/** Reads a non-blocking fd until it has nothing more; how many bytes it gave. */
export function drainFd(fd: number): number {
  const buf = new Uint8Array(4096);
  let total = 0;
  for (;;) {
    const n = Number(libc().symbols.read(fd, buf, BigInt(buf.length)));
    if (n > 0) {
      total += n;
      continue;
    }
    if (n === 0) return total;
    const e = errno();
    if (e === Errno.EAGAIN) return total;
    throw new SysError("read", e);
  }
}

const CLOCK_MONOTONIC = 1;

/** CLOCK_MONOTONIC in nanoseconds: the clock of bpf_ktime_get_ns(). */
export function monotonicNs(): bigint {
  const ts = new BigInt64Array(2); // struct timespec { time_t tv_sec; long tv_nsec; }
  check("clock_gettime", libc().symbols.clock_gettime(CLOCK_MONOTONIC, new Uint8Array(ts.buffer)));
  return ts[0]! * 1_000_000_000n + ts[1]!;
}

/** syscall(2) with three arguments; -1 and errno on failure, as libc's wrapper returns. */
export function syscall(nr: bigint, a: bigint, b: bigint, c: bigint): bigint {
  return libc().symbols.syscall(nr, a, b, c);
}

/** Formats a C format string with a va_list (both raw pointers from a C callback). */
export function formatVaList(fmt: Deno.PointerValue, args: Deno.PointerValue): string {
  const buf = new Uint8Array(4096);
  const n = libc().symbols.vsnprintf(buf, BigInt(buf.length), fmt, args);
  if (n < 0) return "";
  return new TextDecoder().decode(buf.subarray(0, Math.min(n, buf.length - 1)));
}

/** The namespace type (CLONE_NEW*) of the nsfs file behind `fd` (ioctl NS_GET_NSTYPE); throws
 * (ENOTTY) for anything that is not a namespace file. */
export function nsType(fd: number): number {
  const NS_GET_NSTYPE = 0xb703n;
  return check("ioctl NS_GET_NSTYPE", libc().symbols.ioctl(fd, NS_GET_NSTYPE, 0n));
}

/** The credentials of the process that connected the unix socket `fd` (SO_PEERCRED): taken when
 * it connected, so they stay true after it exits. */
export function peerCred(fd: number): { pid: number; uid: number; gid: number } {
  const SOL_SOCKET = 1, SO_PEERCRED = 17;
  const cred = new Int32Array(3); // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
  const len = new Uint32Array([12]);
  check(
    "getsockopt SO_PEERCRED",
    libc().symbols.getsockopt(
      fd,
      SOL_SOCKET,
      SO_PEERCRED,
      new Uint8Array(cred.buffer),
      new Uint8Array(len.buffer),
    ),
  );
  return { pid: cred[0]!, uid: cred[1]! >>> 0, gid: cred[2]! >>> 0 };
}

/** The path a unix socket `fd` is bound to ("" when unnamed or abstract). */
export function unixSockName(fd: number): string {
  const addr = new Uint8Array(110); // struct sockaddr_un { sa_family_t; char sun_path[108]; }
  const len = new Uint32Array([addr.length]);
  check("getsockname", libc().symbols.getsockname(fd, addr, new Uint8Array(len.buffer)));
  const AF_UNIX = 1;
  if ((addr[0]! | (addr[1]! << 8)) !== AF_UNIX || addr[2] === 0) return "";
  const path = addr.subarray(2, Math.min(len[0]!, addr.length));
  const nul = path.indexOf(0);
  return new TextDecoder().decode(nul < 0 ? path : path.subarray(0, nul));
}
