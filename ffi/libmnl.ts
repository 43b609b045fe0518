// libmnl (libmnl.so.0): netlink sockets and message construction. Requests are described
// as data (NlRequest, NlAttr) and serialised here with mnl_nlmsg_* / mnl_attr_*; replies
// come back as plain byte arrays for the pure parsers in src/net/.
import { openLibrary, toCString } from "./_lib.ts";
import { Errno, NetlinkError, SysError } from "./errors.ts";
import { errno } from "./libc.ts";

const symbols = {
  mnl_socket_open2: { parameters: ["i32", "i32"], result: "pointer" }, // int bus, int flags
  mnl_socket_bind: { parameters: ["pointer", "u32", "i32"], result: "i32" }, // nl, groups, pid
  mnl_socket_close: { parameters: ["pointer"], result: "i32" },
  mnl_socket_get_portid: { parameters: ["pointer"], result: "u32" },
  mnl_socket_setsockopt: { parameters: ["pointer", "i32", "buffer", "u32"], result: "i32" },
  mnl_socket_sendto: { parameters: ["pointer", "buffer", "usize"], result: "isize" },
  mnl_socket_recvfrom: { parameters: ["pointer", "buffer", "usize"], result: "isize" },
  mnl_nlmsg_put_header: { parameters: ["buffer"], result: "pointer" }, // void *buf
  mnl_nlmsg_put_extra_header: { parameters: ["pointer", "usize"], result: "pointer" }, // nlh, size
  mnl_attr_put: { parameters: ["pointer", "u16", "usize", "buffer"], result: "void" },
  mnl_attr_put_u8: { parameters: ["pointer", "u16", "u8"], result: "void" },
  mnl_attr_put_u16: { parameters: ["pointer", "u16", "u16"], result: "void" },
  mnl_attr_put_u32: { parameters: ["pointer", "u16", "u32"], result: "void" },
  mnl_attr_put_strz: { parameters: ["pointer", "u16", "buffer"], result: "void" },
  mnl_attr_nest_start: { parameters: ["pointer", "u16"], result: "pointer" },
  mnl_attr_nest_end: { parameters: ["pointer", "pointer"], result: "void" },
  // buf, numbytes, seq, portid, cb_data, data: validates a reply, errors on NLMSG_ERROR
  mnl_cb_run: {
    parameters: ["buffer", "usize", "u32", "u32", "pointer", "pointer"],
    result: "i32",
  },
} as const satisfies Deno.ForeignLibraryInterface;

let lib: { symbols: Deno.DynamicLibrary<typeof symbols>["symbols"] } | undefined;
function mnl() {
  return lib ??= openLibrary("libmnl", "libmnl.so.0", "EBPFCNI_LIBMNL", symbols, "libmnl0");
}

export const NETLINK_ROUTE = 0;
const SOCK_CLOEXEC = 0o2000000;
const NETLINK_EXT_ACK = 11;
const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;
export const NLM_F_DUMP = 0x300;
export const NLMSG_ERROR = 0x2;
export const NLMSG_DONE = 0x3;
const NLMSGERR_ATTR_MSG = 1;
const NLM_F_ACK_TLVS = 0x200;
/** Receive buffer: dumps arrive in chunks of up to a page or so per message batch. */
const BUF_SIZE = 32768;
/** Our requests are small (a veth pair with its peer is the largest, < 200 bytes). */
const MSG_SIZE = 4096;

/** One attribute: a scalar, a string, raw bytes, or a nest (optionally opening with a raw
 * struct, as IFLA_INFO_DATA/VETH_INFO_PEER does with its ifinfomsg). */
export type NlAttr =
  | { type: number; u8: number }
  | { type: number; u16: number }
  | { type: number; u32: number }
  | { type: number; str: string }
  | { type: number; bytes: Uint8Array<ArrayBuffer> }
  | { type: number; nest: NlAttr[]; header?: Uint8Array };

export interface NlRequest {
  /** nlmsg_type, e.g. RTM_NEWLINK. */
  type: number;
  /** nlmsg_flags besides NLM_F_REQUEST (and NLM_F_ACK, which is always set). */
  flags: number;
  /** The family header (ifinfomsg, ifaddrmsg, rtmsg) as bytes. */
  header: Uint8Array;
  attrs: NlAttr[];
  /** Words for error messages, e.g. `create link "cni0"`. */
  op: string;
}

/** A message of a reply: its type and the bytes after the netlink header. */
export interface NlMessage {
  type: number;
  flags: number;
  payload: Uint8Array;
}

class MessageBuilder {
  readonly buf = new Uint8Array(MSG_SIZE);
  readonly #base = Deno.UnsafePointer.value(Deno.UnsafePointer.of(this.buf));
  readonly nlh: Deno.PointerObject;

  constructor(type: number, flags: number, seq: number) {
    const nlh = mnl().symbols.mnl_nlmsg_put_header(this.buf);
    if (!nlh) throw new Error("mnl_nlmsg_put_header returned NULL");
    this.nlh = nlh;
    const v = new DataView(this.buf.buffer);
    v.setUint16(4, type, true);
    v.setUint16(6, flags, true);
    v.setUint32(8, seq, true);
  }

  get length(): number {
    return new DataView(this.buf.buffer).getUint32(0, true);
  }

  /** Appends raw bytes (aligned, zero-padded) at the message tail. */
  raw(bytes: Uint8Array): void {
    const p = mnl().symbols.mnl_nlmsg_put_extra_header(this.nlh, BigInt(bytes.length));
    const at = Number(BigInt(Deno.UnsafePointer.value(p)) - BigInt(this.#base));
    this.buf.set(bytes, at);
  }

  attrs(list: NlAttr[]): void {
    const s = mnl().symbols;
    for (const a of list) {
      if ("u8" in a) s.mnl_attr_put_u8(this.nlh, a.type, a.u8);
      else if ("u16" in a) s.mnl_attr_put_u16(this.nlh, a.type, a.u16);
      else if ("u32" in a) s.mnl_attr_put_u32(this.nlh, a.type, a.u32);
      else if ("str" in a) s.mnl_attr_put_strz(this.nlh, a.type, toCString(a.str));
      else if ("bytes" in a) s.mnl_attr_put(this.nlh, a.type, BigInt(a.bytes.length), a.bytes);
      else {
        const nest = s.mnl_attr_nest_start(this.nlh, a.type);
        if (a.header) this.raw(a.header);
        this.attrs(a.nest);
        s.mnl_attr_nest_end(this.nlh, nest);
      }
      if (this.length > MSG_SIZE - 256) throw new Error("Netlink message too large");
    }
  }
}

function parseMessages(buf: Uint8Array, len: number): NlMessage[] {
  const v = new DataView(buf.buffer, buf.byteOffset, len);
  const out: NlMessage[] = [];
  for (let off = 0; off + 16 <= len;) {
    const mlen = v.getUint32(off, true);
    if (mlen < 16 || off + mlen > len) break;
    out.push({
      type: v.getUint16(off + 4, true),
      flags: v.getUint16(off + 6, true),
      payload: buf.slice(off + 16, off + mlen),
    });
    off += (mlen + 3) & ~3;
  }
  return out;
}

/** The extended ack's human message of an NLMSG_ERROR payload, if the kernel sent one. */
function extAckMessage(msg: NlMessage): string {
  if (!(msg.flags & NLM_F_ACK_TLVS)) return "";
  const v = new DataView(msg.payload.buffer, msg.payload.byteOffset, msg.payload.byteLength);
  // struct nlmsgerr: int error + the original nlmsghdr (its payload is capped: 16 bytes).
  for (let off = 4 + 16; off + 4 <= msg.payload.length;) {
    const alen = v.getUint16(off, true);
    const atype = v.getUint16(off + 2, true) & 0x3fff;
    if (alen < 4) break;
    if (atype === NLMSGERR_ATTR_MSG) {
      const s = msg.payload.subarray(off + 4, off + alen);
      const end = s.indexOf(0);
      return new TextDecoder().decode(end < 0 ? s : s.subarray(0, end));
    }
    off += (alen + 3) & ~3;
  }
  return "";
}

/** A NETLINK_ROUTE socket bound in the network namespace of the thread that opened it. */
export class NetlinkSocket {
  #nl: Deno.PointerObject | null;
  readonly #portid: number;
  #seq = Math.floor(Date.now() / 1000) & 0x7fffffff;
  readonly #rx = new Uint8Array(BUF_SIZE);

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
    this.#portid = s.mnl_socket_get_portid(nl);
  }

  #sock(): Deno.PointerObject {
    if (!this.#nl) throw new SysError("use closed netlink socket", 9);
    return this.#nl;
  }

  #send(req: NlRequest, extraFlags: number): number {
    const seq = ++this.#seq;
    const m = new MessageBuilder(req.type, NLM_F_REQUEST | NLM_F_ACK | req.flags | extraFlags, seq);
    m.raw(req.header);
    m.attrs(req.attrs);
    const n = mnl().symbols.mnl_socket_sendto(this.#sock(), m.buf, BigInt(m.length));
    if (Number(n) < 0) throw new SysError(`${req.op}: send`, errno());
    return seq;
  }

  /** Sends `req` and collects reply messages until the ack or NLMSG_DONE. */
  #exchange(req: NlRequest, extraFlags: number): NlMessage[] {
    const seq = this.#send(req, extraFlags);
    const out: NlMessage[] = [];
    let interrupted = false;
    for (;;) {
      const n = Number(
        mnl().symbols.mnl_socket_recvfrom(this.#sock(), this.#rx, BigInt(BUF_SIZE)),
      );
      if (n < 0) throw new SysError(`${req.op}: receive`, errno());
      // mnl_cb_run checks sequence and port, and turns NLMSG_ERROR into -1 with errno
      // (EINTR for a dump the kernel marked inconsistent: links came or went meanwhile).
      const rc = mnl().symbols.mnl_cb_run(this.#rx, BigInt(n), seq, this.#portid, null, null);
      const msgs = parseMessages(this.#rx, n);
      const done = msgs.some((m) => m.type === NLMSG_DONE || m.type === NLMSG_ERROR);
      if (rc < 0) {
        const e = errno();
        if (e === Errno.EINTR && !done) {
          interrupted = true; // read the rest of the dump so the socket stays usable
          continue;
        }
        const err = msgs.find((m) => m.type === NLMSG_ERROR);
        throw new NetlinkError(req.op, e, err ? extAckMessage(err) : "");
      }
      if (interrupted && done) throw new NetlinkError(req.op, Errno.EINTR, "dump interrupted");
      for (const m of msgs) {
        if (m.type === NLMSG_DONE || m.type === NLMSG_ERROR) return out;
        out.push(m);
      }
    }
  }

  /** Sends one request and waits for its ack; throws NetlinkError when refused. */
  request(req: NlRequest): void {
    this.#exchange(req, 0);
  }

  /** Sends a get request (not a dump) and returns its reply messages. */
  get(req: NlRequest): NlMessage[] {
    return this.#exchange(req, 0);
  }

  /** Sends a dump request and returns every reply message; a dump the kernel reports as
   * interrupted (the table changed meanwhile) is retried a few times. */
  dump(req: NlRequest): NlMessage[] {
    for (let attempt = 1;; attempt++) {
      try {
        return this.#exchange(req, NLM_F_DUMP);
      } catch (err) {
        if (!(err instanceof NetlinkError && err.errno === Errno.EINTR) || attempt >= 5) throw err;
      }
    }
  }

  close(): void {
    if (this.#nl) mnl().symbols.mnl_socket_close(this.#nl);
    this.#nl = null;
  }
}
