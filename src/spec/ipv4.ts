// Pure IPv4 arithmetic, the one IPv4 syntax of the product: dotted-quad and CIDR parsing, u32 maths.
//
// Addresses are plain numbers in host order (0 ..= 0xffffffff) so they compare and
// increment naturally; every helper keeps results in that range with `>>> 0`.

/** Thrown for text that is not a valid IPv4 address or CIDR; callers wrap it in a CniError. */
export class CidrError extends Error {
  override name = "CidrError";
}

/** An IPv4 network: `network` has no host bits set. */
export interface Cidr {
  network: number;
  prefix: number;
}

/** Parses a dotted quad; rejects leading zeros, missing octets and surrounding junk. */
export function parseIpv4(text: string): number {
  const why = ipv4Problem(text);
  if (why !== undefined) throw new CidrError(`Cannot parse IPv4 address "${text}": ${why}`);
  return ipv4ToU32Unchecked(text);
}

/** Like parseIpv4 but returns undefined instead of throwing (for file names and the like). */
export function tryParseIpv4(text: string): number | undefined {
  return ipv4Problem(text) === undefined ? ipv4ToU32Unchecked(text) : undefined;
}

/** Is `s` an IPv6 address in RFC 4291 text form (no zone), IPv4-suffixed forms included? */
export function isIpv6(s: string): boolean {
  if (s.length > 45 || !s.includes(":")) return false;
  const halves = s.split("::");
  if (halves.length > 2) return false;
  const groups = (half: string): string[] | undefined => (half === "" ? [] : half.split(":"));
  const head = groups(halves[0] ?? "");
  const tail = halves.length === 2 ? groups(halves[1] ?? "") : [];
  if (head === undefined || tail === undefined) return false;
  const all = [...head, ...tail];
  let count = 0;
  for (let i = 0; i < all.length; i++) {
    const g = all[i] ?? "";
    if (i === all.length - 1 && g.includes(".")) {
      if (ipv4Problem(g) !== undefined) return false;
      count += 2;
    } else if (/^[0-9a-fA-F]{1,4}$/.test(g)) {
      count += 1;
    } else {
      return false;
    }
  }
  // "::" stands for at least one zero group.
  return halves.length === 2 ? count <= 7 : count === 8;
}

/** Why `text` is not a dotted-quad IPv4 address (no leading zeros), or undefined. The one
 * IPv4 syntax rule of the product: IPAM, CNI_ARGS, and the CLI all use it. */
export function ipv4Problem(text: string): string | undefined {
  if (text.includes(":")) {
    return isIpv6(text)
      ? "IPv6 addresses are not supported (IPv4 dotted quad only)"
      : "not an IPv4 address (dotted quad, e.g. 10.13.0.2)";
  }
  if (text.includes("/")) return "expected a single address, not a CIDR";
  const parts = text.split(".");
  if (parts.length !== 4) return `expected 4 dot-separated octets, found ${parts.length}`;
  for (const part of parts) {
    if (!/^[0-9]{1,3}$/.test(part)) return `invalid octet ${JSON.stringify(part.slice(0, 16))}`;
    // Leading zeros are refused because some tools (inet_aton) read them as octal.
    if (part.length > 1 && part.startsWith("0")) return `octet "${part}" has a leading zero`;
    if (Number(part) > 255) return `octet ${part} out of range 0-255`;
  }
  return undefined;
}

function ipv4ToU32Unchecked(text: string): number {
  let n = 0;
  for (const part of text.split(".")) n = n * 256 + Number(part);
  return n >>> 0;
}

/** Formats a host-order u32 as a dotted quad. */
export function formatIpv4(ip: number): string {
  if (!Number.isInteger(ip) || ip < 0 || ip > 0xffffffff) {
    throw new CidrError(`Cannot format IPv4 address: ${ip} is not a 32-bit unsigned integer`);
  }
  return [ip >>> 24, (ip >>> 16) & 0xff, (ip >>> 8) & 0xff, ip & 0xff].join(".");
}

/** The netmask of a prefix length as a u32 (prefix 0 gives 0). */
export function prefixMask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/**
 * Parses "a.b.c.d/n". With `strict` (the default) host bits must be zero, as
 * host-local requires for a subnet; otherwise they are masked off.
 */
export function parseCidr(text: string, opts: { strict?: boolean } = {}): Cidr {
  const fail = (why: string): never => {
    throw new CidrError(`Cannot parse subnet "${text}": ${why}`);
  };
  const slash = text.indexOf("/");
  if (slash < 0) fail("missing prefix length");
  const addrText = text.slice(0, slash);
  const prefixText = text.slice(slash + 1);
  if (addrText.includes(":")) fail("IPv6 subnets are not supported");
  const why = ipv4Problem(addrText);
  if (why !== undefined) fail(why);
  if (!/^(0|[1-9][0-9]?)$/.test(prefixText)) fail(`invalid prefix length "${prefixText}"`);
  const prefix = Number(prefixText);
  if (prefix > 32) fail("prefix length out of range");
  const ip = ipv4ToU32Unchecked(addrText);
  const network = (ip & prefixMask(prefix)) >>> 0;
  if ((opts.strict ?? true) && network !== ip) {
    fail(`host bits set (the network address is ${formatIpv4(network)})`);
  }
  return { network, prefix };
}

/** Formats a Cidr as "a.b.c.d/n". */
export function formatCidr(c: Cidr): string {
  return `${formatIpv4(c.network)}/${c.prefix}`;
}

/** The broadcast (last) address of a network. */
export function broadcast(c: Cidr): number {
  return (c.network | ~prefixMask(c.prefix)) >>> 0;
}

/** Whether ip lies inside the network (network and broadcast addresses included). */
export function cidrContains(c: Cidr, ip: number): boolean {
  return ((ip & prefixMask(c.prefix)) >>> 0) === c.network;
}

/** The number of addresses in a network, network and broadcast included. */
export function cidrSize(c: Cidr): number {
  return 2 ** (32 - c.prefix);
}

/** ip + delta, wrapping modulo 2^32 like host-local's NextIP. */
export function addIp(ip: number, delta: number): number {
  return ((ip + delta) % 0x100000000 + 0x100000000) % 0x100000000;
}

/** An address with a prefix length, of either family ("10.13.0.2/24", "fd00::2/64"): what
 * results, prevResults and routes carry. Host bits are kept; IPv4 ones also as numbers. */
export type IpPrefix =
  | { family: 4; address: string; prefix: number; ip: number }
  | { family: 6; address: string; prefix: number };

/** Parses "address/prefix" of either family with the product's address syntax (IPv4 dotted
 * quads without leading zeros, RFC 4291 IPv6); undefined when it is not one. */
export function parseIpPrefix(text: string): IpPrefix | undefined {
  const slash = text.indexOf("/");
  if (slash < 0) return undefined;
  const address = text.slice(0, slash);
  const p = text.slice(slash + 1);
  if (!/^(?:0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
  const prefix = Number(p);
  if (ipv4Problem(address) === undefined) {
    return prefix <= 32
      ? { family: 4, address, prefix, ip: ipv4ToU32Unchecked(address) }
      : undefined;
  }
  if (isIpv6(address)) return prefix <= 128 ? { family: 6, address, prefix } : undefined;
  return undefined;
}

/** An IPv4 address with an optional prefix length ("10.13.0.2" is a /32); undefined for
 * anything else, IPv6 included. */
export function parseIpv4Prefix(text: string): { ip: number; prefix: number } | undefined {
  const ip = tryParseIpv4(text);
  if (ip !== undefined) return { ip, prefix: 32 };
  const p = parseIpPrefix(text);
  return p?.family === 4 ? { ip: p.ip, prefix: p.prefix } : undefined;
}

/** Is `s` an IPv4 or IPv6 address? */
export function isIp(s: string): boolean {
  return ipv4Problem(s) === undefined || isIpv6(s);
}
