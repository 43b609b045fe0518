// libmnl (libmnl.so.0): netlink sockets. Messages are built and parsed in TypeScript
// (src/net/wire.ts); this file only opens, binds, sends, receives and closes, so raw pointers
// stay here.
import { openLibrary } from "./_lib.ts";
import { Errno, SysError } from "./errors.ts";
import { errno } from "./libc.ts";

const symbols = {
  mnl_socket_open2: { parameters: ["i32", "i32"], result: "pointer" }, // int bus, int flags
  mnl_socket_bind: { parameters: ["pointer", "u32", "i32"], result: "i32" }, // nl, groups, pid
  mnl_socket_close: { parameters: ["pointer"], result: "i32" },
  mnl_socket_get_portid: { parameters: ["pointer"], result: "u32" },
  mnl_socket_setsockopt: { parameters: ["pointer", "i32", "buffer", "u32"], result: "i32" },
  mnl_socket_sendto: { parameters: ["pointer", "buffer", "usize"], result: "isize" },
  mnl_socket_recvfrom: { parameters: ["pointer", "buffer", "usize"], result: "isize" },
} as const satisfies Deno.ForeignLibraryInterface;

let lib: { symbols: Deno.DynamicLibrary<typeof symbols>["symbols"] } | undefined;
function mnl() {
  return lib ??= openLibrary("libmnl", "libmnl.so.0", "EBPFCNI_LIBMNL", symbols, "libmnl0");
}

export const NETLINK_ROUTE = 0;
const SOCK_CLOEXEC = 0o2000000;
const NETLINK_EXT_ACK = 11;

// A socket dropped without close() is closed when collected (see guardFd in libc.ts).
const unclosed = new FinalizationRegistry<Deno.PointerObject>((nl) => {
  mnl().symbols.mnl_socket_close(nl);
});

/** A bound netlink socket in the network namespace of the thread that opened it. */
export class MnlSocket {
  #nl: Deno.PointerObject | null;
  readonly portid: number;

  constructor(bus = NETLINK_ROUTE) {
    const s = mnl().symbols;
    // Close-on-exec: a delegated IPAM plugin must not inherit a socket into a pod's netns.
    const nl = s.mnl_socket_open2(bus, SOCK_CLOEXEC);
    if (!nl) throw new SysError("open netlink socket", errno());
    if (s.mnl_socket_bind(nl, 0, 0) < 0) {
      const e = errno();
      s.mnl_socket_close(nl);
      throw new SysError("bind netlink socket", e);
    }
    // Ask for extended acks so refusals carry the kernel's reason.
    s.mnl_socket_setsockopt(nl, NETLINK_EXT_ACK, new Uint8Array(new Int32Array([1]).buffer), 4);
    this.#nl = nl;
    this.portid = s.mnl_socket_get_portid(nl);
    unclosed.register(this, nl, this);
  }

  #sock(op: string): Deno.PointerObject {
    if (!this.#nl) throw new SysError(`${op}: closed netlink socket`, Errno.EBADF);
    return this.#nl;
  }

  send(bytes: Uint8Array<ArrayBuffer>, op: string): void {
    const n = Number(mnl().symbols.mnl_socket_sendto(this.#sock(op), bytes, BigInt(bytes.length)));
    if (n < 0) throw new SysError(`${op}: send`, errno());
  }

  /** One datagram into `buf`; its length. */
  receive(buf: Uint8Array<ArrayBuffer>, op: string): number {
    const n = Number(mnl().symbols.mnl_socket_recvfrom(this.#sock(op), buf, BigInt(buf.length)));
    if (n < 0) throw new SysError(`${op}: receive`, errno());
    return n;
  }

  close(): void {
    if (this.#nl) {
      unclosed.unregister(this);
      mnl().symbols.mnl_socket_close(this.#nl);
    }
    this.#nl = null;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
