// Parses and validates the host-local IPAM config object into typed ranges, with
// host-local's defaults (plugins/ipam/host-local/backend/allocator/{config,range}.go).
//
// Differences from host-local, all stricter: IPv6 is rejected (our eBPF maps are
// IPv4-only), the gateway must lie in its subnet, range fields without a "subnet"
// are an error instead of being silently dropped, and dataDir must be an absolute
// path without ".." segments.

import { CniError, ErrCode } from "../spec/cni.ts";
import type { Dns, Route } from "../spec/cni.ts";
import { dirPathProblem } from "../spec/names.ts";
import { quote } from "../spec/text.ts";
import {
  addIp,
  broadcast,
  type Cidr,
  cidrContains,
  CidrError,
  formatCidr,
  formatIpv4,
  parseCidr,
  parseIpv4,
} from "../spec/ipv4.ts";

/** One allocatable range; all addresses are host-order u32, start..end inclusive. */
export interface Range {
  subnet: Cidr;
  rangeStart: number;
  rangeEnd: number;
  gateway: number;
}

/** Ranges that together yield one address per attachment (host-local's RangeSet). */
export type RangeSet = Range[];

export interface HostLocalConfig {
  type: string;
  ranges: RangeSet[];
  routes: Route[];
  dataDir: string;
  resolvConf?: string;
}

export const HOST_LOCAL = "host-local";
export const DEFAULT_DATA_DIR = "/var/lib/cni/networks";

type Obj = Record<string, unknown>;

function invalid(msg: string, details = "", cause?: unknown): CniError {
  return new CniError(ErrCode.InvalidConfig, msg, details, cause === undefined ? {} : { cause });
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v;
}

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function optString(o: Obj, key: string, path: string): string | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== "string") {
    throw invalid(`IPAM config field "${path}" must be a string, got ${describe(v)}`);
  }
  return v;
}

function optArray(o: Obj, key: string, path: string): unknown[] | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) {
    throw invalid(`IPAM config field "${path}" must be an array, got ${describe(v)}`);
  }
  return v;
}

/** Wraps a CidrError as code 7, naming the field in details. */
function withField<T>(path: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof CidrError) throw invalid(err.message, `field "${path}"`, err);
    throw err;
  }
}

/** The "ipam" object itself, or a code 7 error. */
export function asIpamObject(ipam: unknown): Obj {
  if (!isObj(ipam)) throw invalid(`IPAM config "ipam" must be an object, got ${describe(ipam)}`);
  return ipam;
}

/** The plugin type; a name with "/" is refused because it is looked up in CNI_PATH. */
export function ipamType(ipam: unknown): string {
  const type = optString(asIpamObject(ipam), "type", "type");
  if (type === undefined || type === "") throw invalid(`IPAM config field "type" is missing`);
  if (type.includes("/") || type === "." || type === "..") {
    throw invalid(`IPAM plugin type "${type}" is not a plain plugin name`);
  }
  return type;
}

/** Just the data directory: DEL and GC need nothing else, so a broken range config cannot block them. */
export function parseDataDir(ipam: unknown): string {
  const dir = optString(asIpamObject(ipam), "dataDir", "dataDir");
  if (dir === undefined || dir === "") return DEFAULT_DATA_DIR;
  // Stricter than host-local, which would follow a relative or ".." path anywhere.
  const problem = dirPathProblem(dir);
  if (problem !== undefined) {
    throw invalid(
      `IPAM config field "dataDir" must be an absolute path without ".." segments (${problem}), got ${
        quote(dir)
      }`,
    );
  }
  return dir;
}

function ipv4Field(o: Obj, key: string, path: string): number | undefined {
  const text = optString(o, key, path);
  if (text === undefined || text === "") return undefined;
  return withField(path, () => parseIpv4(text));
}

function parseSubnet(text: string, path: string): Cidr {
  if (text.includes(":")) {
    throw invalid(
      `IPv6 subnet "${text}" is not supported: ebpfcni's maps hold IPv4 addresses only`,
      `field "${path}"`,
    );
  }
  const subnet = withField(path, () => parseCidr(text));
  // A /31 or /32 has no address left once network and broadcast are excluded.
  if (subnet.prefix > 30) {
    throw invalid(`Subnet "${text}" is too small to allocate from`, `field "${path}"`);
  }
  return subnet;
}

/** One range with host-local's defaults: start .1, end broadcast-1, gateway .1. */
function parseRange(raw: unknown, path: string): Range {
  if (!isObj(raw)) {
    throw invalid(`IPAM config field "${path}" must be an object, got ${describe(raw)}`);
  }
  // path is "" for the single-range shorthand at the top of the ipam object.
  const at = (key: string): string => path === "" ? key : `${path}.${key}`;
  const subnetText = optString(raw, "subnet", at("subnet"));
  if (subnetText === undefined || subnetText === "") {
    throw invalid(`IPAM config field "${at("subnet")}" is missing`);
  }
  const subnet = parseSubnet(subnetText, at("subnet"));
  const cidr = formatCidr(subnet);
  const inSubnet = (ip: number, key: string): number => {
    if (!cidrContains(subnet, ip)) {
      throw invalid(
        `${key} ${formatIpv4(ip)} is not in subnet ${cidr}`,
        `field "${at(key)}"`,
      );
    }
    return ip;
  };
  const rangeStart = inSubnet(
    ipv4Field(raw, "rangeStart", at("rangeStart")) ?? addIp(subnet.network, 1),
    "rangeStart",
  );
  const rangeEnd = inSubnet(
    ipv4Field(raw, "rangeEnd", at("rangeEnd")) ?? addIp(broadcast(subnet), -1),
    "rangeEnd",
  );
  const gateway = inSubnet(
    ipv4Field(raw, "gateway", at("gateway")) ?? addIp(subnet.network, 1),
    "gateway",
  );
  if (rangeEnd < rangeStart) {
    throw invalid(
      `rangeEnd ${formatIpv4(rangeEnd)} is before rangeStart ${formatIpv4(rangeStart)}`,
      path === "" ? "" : `field "${path}"`,
    );
  }
  return { subnet, rangeStart, rangeEnd, gateway };
}

export function formatRange(r: Range): string {
  return `${formatIpv4(r.rangeStart)}-${formatIpv4(r.rangeEnd)}`;
}

export function formatRangeSet(set: RangeSet): string {
  return set.map(formatRange).join(",");
}

function rangesOverlap(a: Range, b: Range): boolean {
  return a.rangeStart <= b.rangeEnd && b.rangeStart <= a.rangeEnd;
}

function parseRangeSet(raw: unknown, path: string): RangeSet {
  if (!Array.isArray(raw)) {
    throw invalid(`IPAM config field "${path}" must be an array, got ${describe(raw)}`);
  }
  if (raw.length === 0) throw invalid(`IPAM config field "${path}" is an empty range set`);
  const set = raw.map((r, i) => parseRange(r, `${path}[${i}]`));
  for (let i = 0; i < set.length; i++) {
    for (let j = i + 1; j < set.length; j++) {
      const a = set[i]!, b = set[j]!;
      if (rangesOverlap(a, b)) {
        throw invalid(
          `Ranges ${formatRange(a)} and ${formatRange(b)} overlap`,
          `field "${path}"`,
        );
      }
    }
  }
  return set;
}

function parseRangeSets(raw: unknown[] | undefined, path: string): RangeSet[] {
  return (raw ?? []).map((s, i) => parseRangeSet(s, `${path}[${i}]`));
}

const ROUTE_INTS = ["mtu", "advmss", "priority", "table", "scope"] as const;

function parseRoute(raw: unknown, path: string): Route {
  if (!isObj(raw)) {
    throw invalid(`IPAM config field "${path}" must be an object, got ${describe(raw)}`);
  }
  const dst = optString(raw, "dst", `${path}.dst`);
  if (dst === undefined || dst === "") throw invalid(`IPAM config field "${path}.dst" is missing`);
  if (dst.includes(":")) {
    throw invalid(
      `IPv6 route "${dst}" is not supported: ebpfcni's maps hold IPv4 addresses only`,
      `field "${path}.dst"`,
    );
  }
  // host-local keeps the destination as written (host bits included), so only validate it.
  withField(`${path}.dst`, () => parseCidr(dst, { strict: false }));
  const route: Route = { dst };
  const gw = optString(raw, "gw", `${path}.gw`);
  if (gw !== undefined && gw !== "") {
    withField(`${path}.gw`, () => parseIpv4(gw));
    route.gw = gw;
  }
  for (const key of ROUTE_INTS) {
    const v = raw[key];
    if (v === undefined) continue;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
      throw invalid(`IPAM config field "${path}.${key}" must be a non-negative integer`);
    }
    route[key] = v;
  }
  return route;
}

/**
 * Parses a host-local "ipam" object. `runtimeIpRanges` is runtimeConfig.ipRanges
 * (the "ipRanges" capability), prepended to the configured ranges as host-local does.
 */
export function parseHostLocalConfig(ipam: unknown, runtimeIpRanges?: unknown): HostLocalConfig {
  const o = asIpamObject(ipam);
  const type = ipamType(o);

  const ranges: RangeSet[] = [];
  if (runtimeIpRanges !== undefined && runtimeIpRanges !== null) {
    if (!Array.isArray(runtimeIpRanges)) {
      throw invalid(
        `Runtime config field "ipRanges" must be an array, got ${describe(runtimeIpRanges)}`,
      );
    }
    ranges.push(...parseRangeSets(runtimeIpRanges, "runtimeConfig.ipRanges"));
  }
  const subnet = optString(o, "subnet", "subnet");
  if (subnet !== undefined && subnet !== "") {
    ranges.push([parseRange(o, "")]);
  } else {
    for (const key of ["rangeStart", "rangeEnd", "gateway"]) {
      if (o[key] !== undefined) throw invalid(`IPAM config field "${key}" requires "subnet"`);
    }
  }
  ranges.push(...parseRangeSets(optArray(o, "ranges", "ranges"), "ranges"));
  if (ranges.length === 0) {
    throw invalid(`IPAM config has no IP ranges: set "subnet" or "ranges"`);
  }

  // Range sets are allocated independently, so an overlap would hand out one IP twice.
  for (let i = 0; i < ranges.length; i++) {
    for (let j = i + 1; j < ranges.length; j++) {
      for (const a of ranges[i]!) {
        for (const b of ranges[j]!) {
          if (rangesOverlap(a, b)) {
            throw invalid(
              `Range set ${i} (${formatRangeSet(ranges[i]!)}) overlaps with range set ${j} (${
                formatRangeSet(ranges[j]!)
              })`,
            );
          }
        }
      }
    }
  }

  const routes = (optArray(o, "routes", "routes") ?? []).map((r, i) =>
    parseRoute(r, `routes[${i}]`)
  );
  const resolvConf = optString(o, "resolvConf", "resolvConf");
  const config: HostLocalConfig = { type, ranges, routes, dataDir: parseDataDir(o) };
  if (resolvConf !== undefined && resolvConf !== "") config.resolvConf = resolvConf;
  return config;
}

/** Parses resolv.conf text exactly as host-local's dns.go does (first field wins per line). */
export function parseResolvConf(text: string): Dns {
  const dns: Dns = {};
  for (const rawLine of text.split("\n")) {
    const line = rawLine.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const fields = line.split(/\s+/);
    const [key, first] = fields;
    if (first === undefined) continue;
    switch (key) {
      case "nameserver":
        (dns.nameservers ??= []).push(first);
        break;
      case "domain":
        dns.domain = first;
        break;
      case "search":
        (dns.search ??= []).push(...fields.slice(1));
        break;
      case "options":
        (dns.options ??= []).push(...fields.slice(1));
        break;
    }
  }
  return dns;
}
