// Ethernet frames for BPF_PROG_TEST_RUN and raw sends: IPv4 with TCP, UDP, SCTP or ICMP (and
// IP fragments), IPv6, and ARP. Addresses are dotted quads; checksums are right where the
// kernel checks them (the IP header), zero elsewhere.

export interface Ipv4Opts {
  src: string;
  dst: string;
  proto: "tcp" | "udp" | "sctp" | "icmp";
  sport?: number;
  dport?: number;
  /** TCP flags byte (default SYN). */
  tcpFlags?: number;
  /** ICMP type (default echo request, 8) and echo identifier. */
  icmpType?: number;
  icmpId?: number;
  /** An ICMP error's quoted packet (its IP header and first 8 bytes). */
  inner?: Uint8Array;
  ipId?: number;
  /** More fragments / fragment offset (8-byte units). */
  mf?: boolean;
  fragOffset?: number;
  dstMac?: string;
}

export const TCP_SYN = 0x02;
export const TCP_ACK = 0x10;
export const TCP_FIN = 0x01;
export const TCP_RST = 0x04;

const PROTO = { tcp: 6, udp: 17, sctp: 132, icmp: 1 } as const;

function ipBytes(ip: string): number[] {
  return ip.split(".").map(Number);
}

function l4Of(o: Ipv4Opts): Uint8Array {
  if (o.fragOffset) return new Uint8Array(8); // a later fragment: payload only
  if (o.proto === "icmp") {
    const inner = o.inner ?? new Uint8Array(0);
    const b = new Uint8Array(8 + inner.length);
    const v = new DataView(b.buffer);
    v.setUint8(0, o.icmpType ?? 8);
    v.setUint16(4, o.icmpId ?? 0x1234);
    b.set(inner, 8);
    return b;
  }
  const b = new Uint8Array(o.proto === "tcp" ? 20 : o.proto === "sctp" ? 12 : 8);
  const v = new DataView(b.buffer);
  v.setUint16(0, o.sport ?? 40000);
  v.setUint16(2, o.dport ?? 80);
  if (o.proto === "tcp") {
    v.setUint8(12, 5 << 4);
    v.setUint8(13, o.tcpFlags ?? TCP_SYN);
  } else if (o.proto === "udp") {
    v.setUint16(4, 8);
  }
  return b;
}

/** The IPv4 packet (no Ethernet header). */
export function ipv4Packet(o: Ipv4Opts): Uint8Array {
  const l4 = l4Of(o);
  const b = new Uint8Array(20 + l4.length);
  const v = new DataView(b.buffer);
  v.setUint8(0, 0x45);
  v.setUint16(2, b.length);
  v.setUint16(4, o.ipId ?? 1);
  v.setUint16(6, (o.mf ? 0x2000 : 0) | (o.fragOffset ?? 0));
  v.setUint8(8, 64);
  v.setUint8(9, PROTO[o.proto]);
  b.set(ipBytes(o.src), 12);
  b.set(ipBytes(o.dst), 16);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += v.getUint16(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  v.setUint16(10, ~sum & 0xffff);
  b.set(l4, 20);
  return b;
}

function eth(
  type: number,
  payload: Uint8Array,
  dstMac = "02:00:00:00:00:02",
): Uint8Array<ArrayBuffer> {
  const f = new Uint8Array(14 + payload.length);
  dstMac.split(":").forEach((h, i) => f[i] = parseInt(h, 16));
  f.set([0x02, 0, 0, 0, 0, 0x01], 6);
  new DataView(f.buffer).setUint16(12, type);
  f.set(payload, 14);
  return f;
}

export function ipv4(o: Ipv4Opts): Uint8Array<ArrayBuffer> {
  return eth(0x0800, ipv4Packet(o), o.dstMac);
}

/** An IPv6 frame: ICMPv6 of `icmpType` (135 neighbour solicitation...) or another next header. */
export function ipv6(
  o: { nextHeader?: number; icmpType?: number; hopLimit?: number },
): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(40 + 8);
  const v = new DataView(b.buffer);
  v.setUint32(0, 0x60000000);
  v.setUint16(4, 8);
  v.setUint8(6, o.nextHeader ?? 58);
  v.setUint8(7, o.hopLimit ?? 255);
  b[8] = 0xfe;
  b[9] = 0x80;
  b[24] = 0xfe;
  b[25] = 0x80;
  v.setUint8(40, o.icmpType ?? 135);
  return eth(0x86dd, b);
}

/** A broadcast ARP request: who has `target`, tell `sender`. */
export function arp(sender: string, target: string): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(28);
  const v = new DataView(b.buffer);
  v.setUint16(0, 1);
  v.setUint16(2, 0x0800);
  v.setUint8(4, 6);
  v.setUint8(5, 4);
  v.setUint16(6, 1);
  b.set([0x02, 0, 0, 0, 0, 0x01], 8);
  b.set(ipBytes(sender), 14);
  b.set(ipBytes(target), 24);
  return eth(0x0806, b, "ff:ff:ff:ff:ff:ff");
}
