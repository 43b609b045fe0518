// Pure IPv4 arithmetic for the IPAM module: dotted-quad and CIDR parsing, u32 maths.
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

const OCTET = /^(0|[1-9][0-9]{0,2})$/;

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

function ipv4Problem(text: string): string | undefined {
  if (text.includes(":")) return "IPv6 addresses are not supported";
  const parts = text.split(".");
  if (parts.length !== 4) return `expected 4 octets, found ${parts.length}`;
  for (const part of parts) {
    // Leading zeros are rejected because some tools read them as octal.
    if (!OCTET.test(part)) return `invalid octet "${part}"`;
    if (Number(part) > 255) return `octet ${part} out of range`;
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
