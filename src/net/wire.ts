// Netlink on the wire, pure: requests described as data (NlRequest, NlAttr) are serialised
// here, and replies are split into messages and their errors read from the nlmsgerr payload
// (linux/netlink.h). Bounds are checked before anything is written, so an oversized request
// is an error, never a write past the buffer. ffi/libmnl.ts only moves the bytes.

// linux/netlink.h
export const NLMSG_HDRLEN = 16;
export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
export const NLM_F_DUMP_INTR = 0x10;
export const NLM_F_DUMP = 0x300;
export const NLM_F_ACK_TLVS = 0x200;
export const NLMSG_ERROR = 0x2;
export const NLMSG_DONE = 0x3;
export const NLMSGERR_ATTR_MSG = 1;
const NLA_HDRLEN = 4;

/** Our requests are small (a veth pair with its peer is the largest, < 200 bytes). */
export const MAX_REQUEST = 4096;

/** One attribute: a scalar, a string, raw bytes, or a nest (optionally opening with a raw
 * struct, as IFLA_INFO_DATA/VETH_INFO_PEER does with its ifinfomsg). */
export type NlAttr =
  | { type: number; u8: number }
  | { type: number; u16: number }
  | { type: number; u32: number }
  | { type: number; str: string }
  | { type: number; bytes: Uint8Array }
  | { type: number; nest: NlAttr[]; header?: Uint8Array };

export interface NlRequest {
  /** nlmsg_type, e.g. RTM_NEWLINK. */
  type: number;
  /** nlmsg_flags besides NLM_F_REQUEST (and NLM_F_ACK, which is always set). */
  flags: number;
  /** The family header (ifinfomsg, ifaddrmsg, rtmsg, tcmsg) as bytes. */
  header: Uint8Array;
  attrs: NlAttr[];
  /** Words for error messages, e.g. `create link "cni0"`. */
  op: string;
}

/** A message of a reply: its type, flags, sequence number and the bytes after the header. */
export interface NlMessage {
  type: number;
  flags: number;
  seq: number;
  portid: number;
  payload: Uint8Array;
}

/** The request does not fit MAX_REQUEST bytes. */
export class NetlinkEncodeError extends Error {
  override name = "NetlinkEncodeError";
}

const align = (n: number) => (n + 3) & ~3;
const encoder = new TextEncoder();

function attrSize(a: NlAttr): number {
  if ("u8" in a) return NLA_HDRLEN + 1;
  if ("u16" in a) return NLA_HDRLEN + 2;
  if ("u32" in a) return NLA_HDRLEN + 4;
  if ("str" in a) return NLA_HDRLEN + encoder.encode(a.str).length + 1;
  if ("bytes" in a) return NLA_HDRLEN + a.bytes.length;
  return NLA_HDRLEN + align(a.header?.length ?? 0) + attrsSize(a.nest);
}

function attrsSize(list: readonly NlAttr[]): number {
  return list.reduce((n, a) => n + align(attrSize(a)), 0);
}

/** The serialised size of `req`. */
export function requestSize(req: NlRequest): number {
  return NLMSG_HDRLEN + align(req.header.length) + attrsSize(req.attrs);
}

const NLA_F_NESTED = 0x8000;

function putAttrs(out: Uint8Array, v: DataView, at: number, list: readonly NlAttr[]): number {
  for (const a of list) {
    const len = attrSize(a);
    v.setUint16(at, len, true);
    v.setUint16(at + 2, "nest" in a ? a.type | NLA_F_NESTED : a.type, true);
    const data = at + NLA_HDRLEN;
    if ("u8" in a) v.setUint8(data, a.u8);
    else if ("u16" in a) v.setUint16(data, a.u16, true);
    else if ("u32" in a) v.setUint32(data, a.u32 >>> 0, true);
    else if ("str" in a) out.set(encoder.encode(a.str), data); // NUL: the buffer is zeroed
    else if ("bytes" in a) out.set(a.bytes, data);
    else {
      if (a.header) out.set(a.header, data);
      putAttrs(out, v, data + align(a.header?.length ?? 0), a.nest);
    }
    at += align(len);
  }
  return at;
}

/** The request as bytes: header (NLM_F_REQUEST | NLM_F_ACK | req.flags | extraFlags), family
 * header, attributes. Throws NetlinkEncodeError rather than exceed MAX_REQUEST. */
export function encodeRequest(
  req: NlRequest,
  seq: number,
  extraFlags = 0,
  portid = 0,
): Uint8Array<ArrayBuffer> {
  const size = requestSize(req);
  if (size > MAX_REQUEST) {
    throw new NetlinkEncodeError(`${req.op}: request of ${size} bytes exceeds ${MAX_REQUEST}`);
  }
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  v.setUint32(0, size, true);
  v.setUint16(4, req.type, true);
  v.setUint16(6, NLM_F_REQUEST | NLM_F_ACK | req.flags | extraFlags, true);
  v.setUint32(8, seq >>> 0, true);
  v.setUint32(12, portid >>> 0, true);
  out.set(req.header, NLMSG_HDRLEN);
  putAttrs(out, v, NLMSG_HDRLEN + align(req.header.length), req.attrs);
  return out;
}

/** Splits a received datagram into messages (a truncated tail is dropped). */
export function decodeMessages(buf: Uint8Array, len = buf.length): NlMessage[] {
  const v = new DataView(buf.buffer, buf.byteOffset, len);
  const out: NlMessage[] = [];
  for (let off = 0; off + NLMSG_HDRLEN <= len;) {
    const mlen = v.getUint32(off, true);
    if (mlen < NLMSG_HDRLEN || off + mlen > len) break;
    out.push({
      type: v.getUint16(off + 4, true),
      flags: v.getUint16(off + 6, true),
      seq: v.getUint32(off + 8, true),
      portid: v.getUint32(off + 12, true),
      payload: buf.slice(off + NLMSG_HDRLEN, off + mlen),
    });
    off += align(mlen);
  }
  return out;
}

/** Splits netlink attributes (struct nlattr TLVs, 4-byte aligned) starting at `start`. */
export function decodeAttrs(b: Uint8Array, start = 0): { type: number; data: Uint8Array }[] {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: { type: number; data: Uint8Array }[] = [];
  for (let off = start; off + NLA_HDRLEN <= b.length;) {
    const len = v.getUint16(off, true);
    if (len < NLA_HDRLEN || off + len > b.length) break;
    out.push({ type: v.getUint16(off + 2, true) & 0x3fff, data: b.subarray(off + 4, off + len) });
    off += align(len);
  }
  return out;
}

/** An NLMSG_ERROR's verdict: errno 0 is the ack; `message` is the extended ack's text. */
export function nlmsgerr(msg: NlMessage): { errno: number; message: string } {
  const v = new DataView(msg.payload.buffer, msg.payload.byteOffset, msg.payload.byteLength);
  if (msg.payload.length < 4) return { errno: 0, message: "" };
  const errno = -v.getInt32(0, true) | 0;
  if (!(msg.flags & NLM_F_ACK_TLVS)) return { errno, message: "" };
  // struct nlmsgerr: int error + the original nlmsghdr; with NLM_F_CAPPED (the kernel's
  // default for errors, 0x100) only the header, else the whole request follows.
  const origLen = msg.payload.length >= 8 ? v.getUint32(4, true) : 0;
  const capped = (msg.flags & 0x100) !== 0;
  const tlvs = 4 + (capped ? NLMSG_HDRLEN : align(Math.max(origLen, NLMSG_HDRLEN)));
  for (const a of decodeAttrs(msg.payload, tlvs)) {
    if (a.type === NLMSGERR_ATTR_MSG) {
      const end = a.data.indexOf(0);
      return {
        errno,
        message: new TextDecoder().decode(end < 0 ? a.data : a.data.subarray(0, end)),
      };
    }
  }
  return { errno, message: "" };
}
