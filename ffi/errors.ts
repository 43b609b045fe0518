// Typed errors for the native layer: every failing C call becomes one of these, carrying the
// operation and errno so callers can tell "not found" from a real failure.

/** errno values the product reacts to (asm-generic/errno-base.h, errno.h). */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  E2BIG: 7,
  EBADF: 9,
  EAGAIN: 11, // also EWOULDBLOCK (flock, nonblocking read)
  ENOMEM: 12,
  EACCES: 13,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  ENOTDIR: 20,
  EINVAL: 22,
  ENOSPC: 28,
  ERANGE: 34,
  ELOOP: 40,
  EOPNOTSUPP: 95,
  EADDRNOTAVAIL: 99,
} as const;

const names = new Map<number, string>(Object.entries(Errno).map(([k, v]) => [v, k]));

/** A C call failed with an errno. */
export class SysError extends Error {
  override name = "SysError";
  constructor(readonly op: string, readonly errno: number, detail = "", options?: ErrorOptions) {
    const code = names.get(errno) ?? `errno ${errno}`;
    super(`${op}: ${code}${detail ? `: ${detail}` : ""}`, options);
  }
  /** The object or interface does not exist. */
  get notFound(): boolean {
    return this.errno === Errno.ENOENT || this.errno === Errno.ENODEV ||
      this.errno === Errno.ESRCH;
  }
  get exists(): boolean {
    return this.errno === Errno.EEXIST;
  }
  get notSupported(): boolean {
    return this.errno === Errno.EOPNOTSUPP;
  }
}

/** A bpf() or libbpf call failed; `log` holds what libbpf printed (the verifier log). */
export class BpfError extends SysError {
  override name = "BpfError";
  constructor(op: string, errno: number, readonly log = "", options?: ErrorOptions) {
    super(op, errno, "", options);
    if (log) this.message += `\n${log}`;
  }
}

/** A netlink request was refused by the kernel; `detail` is its extended ack message. */
export class NetlinkError extends SysError {
  override name = "NetlinkError";
}

/** nftables refused a command; `detail` is what libnftables wrote to its error buffer. */
export class NftError extends Error {
  override name = "NftError";
  constructor(readonly op: string, readonly detail: string, options?: ErrorOptions) {
    // libnftables prefixes each line with the place in its input ("internal:0:0-0: ").
    const text = detail.split("\n").map((l) => l.replace(/^internal:[0-9:-]+: /, "").trim())
      .filter(Boolean).join("; ");
    super(`${op}: ${text || "refused"}`, options);
  }
  /** The table, chain or rule named does not exist. */
  get notFound(): boolean {
    return /No such file or directory/.test(this.detail);
  }
}

/** A shared library could not be opened or lacks a symbol. */
export class LibraryError extends Error {
  override name = "LibraryError";
  constructor(
    readonly library: string,
    readonly path: string,
    hint: string,
    options?: ErrorOptions,
  ) {
    super(`Cannot load ${library} from "${path}": ${hint}`, options);
  }
}

export function isNotFound(err: unknown): boolean {
  return err instanceof SysError && err.notFound;
}
