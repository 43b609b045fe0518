// Parses and validates the host-local IPAM config object into typed ranges, with
// host-local's defaults (plugins/ipam/host-local/backend/allocator/{config,range}.go).
//
// Differences from host-local, all stricter: IPv6 is rejected (our eBPF maps are
// IPv4-only), the gateway must lie in its subnet, range fields without a "subnet"
// are an error instead of being silently dropped, and dataDir must be an absolute
// path without ".." segments.

import { CniError, ErrCode } from "../spec/cni.ts";
import type { Dns, Route } from "../spec/cni.ts";
import { FieldReader, isObject, type Obj } from "../spec/json.ts";
import { dirPathProblem } from "../spec/name_rules.ts";
import { jsonKind, quote } from "../spec/text.ts";
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

/** The IPAM messages' style: `IPAM config field "ranges[0]" must be an array, got object`. */
const fields = new FieldReader({
  code: ErrCode.InvalidConfig,
  invalid: (path, expected, v) =>
    `IPAM config field "${path}" must be ${expected}, got ${jsonKind(v)}`,
  missing: (path) => `IPAM config field "${path}" is missing`,
});

function invalid(msg: string, details = "", cause?: unknown): CniError {
  return new CniError(ErrCode.InvalidConfig, msg, details, cause === undefined ? {} : { cause });
}

/** A string field where "" counts as absent, as host-local reads it. */
function optText(o: Obj, key: string, parent = ""): string | undefined {
  const v = fields.optString(o, key, parent);
  return v === "" ? undefined : v;
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
  if (!isObject(ipam)) throw invalid(`IPAM config "ipam" must be an object, got ${jsonKind(ipam)}`);
  return ipam;
}

/** The plugin type; a name with "/" is refused because it is looked up in CNI_PATH. */
export function ipamType(ipam: unknown): string {
  const type = optText(asIpamObject(ipam), "type");
  if (type === undefined) throw fields.missing("type");
  if (type.includes("/") || type === "." || type === "..") {
    throw invalid(`IPAM plugin type "${type}" is not a plain plugin name`);
  }
  return type;
}

/** Just the data directory: DEL and GC need nothing else, so a broken range config cannot block them. */
export function parseDataDir(ipam: unknown): string {
  const dir = optText(asIpamObject(ipam), "dataDir");
  if (dir === undefined) return DEFAULT_DATA_DIR;
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

function ipv4Field(o: Obj, key: string, parent: string): number | undefined {
  const text = optText(o, key, parent);
  if (text === undefined) return undefined;
  return withField(parent === "" ? key : `${parent}.${key}`, () => parseIpv4(text));
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

/** The subnet that stands for this node's pod CIDR (Calico's spelling; any case). */
export const USE_POD_CIDR = "usePodCidr";

function isUsePodCidr(v: unknown): boolean {
  return typeof v === "string" && v.toLowerCase() === USE_POD_CIDR.toLowerCase();
}

/** Whether a subnet of the ipam object (the shorthand's, or a range's) is "usePodCidr". */
export function usesPodCidr(ipam: Obj): boolean {
  if (isUsePodCidr(ipam["subnet"])) return true;
  const sets = Array.isArray(ipam["ranges"]) ? ipam["ranges"] : [];
  return sets.some((set) =>
    Array.isArray(set) && set.some((r) => isObject(r) && isUsePodCidr(r["subnet"]))
  );
}

/** One range with host-local's defaults: start .1, end broadcast-1, gateway .1. */
function parseRange(v: unknown, path: string, podCidr: Cidr | undefined): Range {
  // path is "" for the single-range shorthand at the top of the ipam object.
  const raw = path === "" ? asIpamObject(v) : fields.object(v, path);
  const at = (key: string): string => path === "" ? key : `${path}.${key}`;
  const subnetText = optText(raw, "subnet", path);
  if (subnetText === undefined) throw fields.missing(at("subnet"));
  if (isUsePodCidr(subnetText) && podCidr === undefined) throw needPodCidr();
  const subnet = isUsePodCidr(subnetText)
    ? parseSubnet(formatCidr(podCidr!), at("subnet"))
    : parseSubnet(subnetText, at("subnet"));
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
    ipv4Field(raw, "rangeStart", path) ?? addIp(subnet.network, 1),
    "rangeStart",
  );
  const rangeEnd = inSubnet(
    ipv4Field(raw, "rangeEnd", path) ?? addIp(broadcast(subnet), -1),
    "rangeEnd",
  );
  const gateway = inSubnet(
    ipv4Field(raw, "gateway", path) ?? addIp(subnet.network, 1),
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

function parseRangeSet(raw: unknown, path: string, podCidr: Cidr | undefined): RangeSet {
  if (!Array.isArray(raw)) throw fields.invalid(path, "an array", raw);
  if (raw.length === 0) throw invalid(`IPAM config field "${path}" is an empty range set`);
  const set = raw.map((r, i) => parseRange(r, `${path}[${i}]`, podCidr));
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

function parseRangeSets(
  raw: unknown[] | undefined,
  path: string,
  podCidr?: Cidr,
): RangeSet[] {
  return (raw ?? []).map((s, i) => parseRangeSet(s, `${path}[${i}]`, podCidr));
}

/** ADD without the node's pod CIDR (the caller gets it from the agent first). */
function needPodCidr(): CniError {
  return new CniError(
    ErrCode.TryAgainLater,
    `IPAM "subnet": "${USE_POD_CIDR}" needs this node's pod CIDR, which the policy agent gives`,
  );
}

const ROUTE_INTS = ["mtu", "advmss", "priority", "table", "scope"] as const;

function parseRoute(v: unknown, path: string): Route {
  const raw = fields.object(v, path);
  const dst = optText(raw, "dst", path);
  if (dst === undefined) throw fields.missing(`${path}.dst`);
  if (dst.includes(":")) {
    throw invalid(
      `IPv6 route "${dst}" is not supported: ebpfcni's maps hold IPv4 addresses only`,
      `field "${path}.dst"`,
    );
  }
  // host-local keeps the destination as written (host bits included), so only validate it.
  withField(`${path}.dst`, () => parseCidr(dst, { strict: false }));
  const route: Route = { dst };
  const gw = optText(raw, "gw", path);
  if (gw !== undefined) {
    withField(`${path}.gw`, () => parseIpv4(gw));
    route.gw = gw;
  }
  for (const key of ROUTE_INTS) {
    const n = fields.optInt(raw, key, path, 0, Number.MAX_SAFE_INTEGER, "a non-negative integer");
    if (n !== undefined) route[key] = n;
  }
  return route;
}

/**
 * Parses a host-local "ipam" object. `runtimeIpRanges` is runtimeConfig.ipRanges
 * (the "ipRanges" capability), prepended to the configured ranges as host-local does.
 * `podCidr`: this node's pod CIDR, which a "usePodCidr" subnet stands for (without it such a
 * subnet is code 11).
 */
export function parseHostLocalConfig(
  ipam: unknown,
  runtimeIpRanges?: unknown,
  podCidr?: Cidr,
): HostLocalConfig {
  const o = asIpamObject(ipam);
  const type = ipamType(o);

  const ranges: RangeSet[] = [];
  if (runtimeIpRanges !== undefined && runtimeIpRanges !== null) {
    if (!Array.isArray(runtimeIpRanges)) {
      throw invalid(
        `Runtime config field "ipRanges" must be an array, got ${jsonKind(runtimeIpRanges)}`,
      );
    }
    ranges.push(...parseRangeSets(runtimeIpRanges, "runtimeConfig.ipRanges"));
  }
  const subnet = optText(o, "subnet");
  if (subnet !== undefined) {
    ranges.push([parseRange(o, "", podCidr)]);
  } else {
    for (const key of ["rangeStart", "rangeEnd", "gateway"]) {
      if (o[key] !== undefined && o[key] !== null) {
        throw invalid(`IPAM config field "${key}" requires "subnet"`);
      }
    }
  }
  ranges.push(...parseRangeSets(fields.optArray(o, "ranges"), "ranges", podCidr));
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

  const routes = (fields.optArray(o, "routes") ?? []).map((r, i) => parseRoute(r, `routes[${i}]`));
  const resolvConf = optText(o, "resolvConf");
  const config: HostLocalConfig = { type, ranges, routes, dataDir: parseDataDir(o) };
  if (resolvConf !== undefined) config.resolvConf = resolvConf;
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

/** The "ipam" section, parsed once where the network config is read. */
interface IpamConfBase {
  type: string;
  /** The ipam object as given, or as built from podcidr; a delegated plugin reads its own
   * fields from the config it is handed. */
  raw: Obj;
  /** Built from the legacy top-level "podcidr" rather than given as "ipam". */
  fromPodCidr: boolean;
}

/** The built-in host-local allocator. `dataDir` is all DEL and GC need, so a range config that
 * is now invalid cannot block them: its error is kept and thrown only where ranges are used. */
export interface BuiltInIpamConf extends IpamConfBase {
  builtIn: true;
  dataDir: string;
  config: HostLocalConfig | CniError;
  /** A subnet is "usePodCidr": `config` is code 11 until withPodCidr gives it the node's pod
   * CIDR (the rest of the config is checked already). */
  podCidr?: { runtimeIpRanges: unknown };
}

export interface DelegatedIpamConf extends IpamConfBase {
  builtIn: false;
}

export type IpamConf = BuiltInIpamConf | DelegatedIpamConf;

/** Parses the ipam object: the type, and for host-local its dataDir (errors now) and ranges
 * (errors kept for the commands that use them). `runtimeIpRanges` is runtimeConfig.ipRanges. */
export function parseIpamConf(
  ipam: Obj,
  fromPodCidr: boolean,
  runtimeIpRanges?: unknown,
): IpamConf {
  const type = ipamType(ipam);
  if (type !== HOST_LOCAL) return { builtIn: false, type, raw: ipam, fromPodCidr };
  const dataDir = parseDataDir(ipam);
  if (usesPodCidr(ipam)) {
    // Checked now with a stand-in for the node's CIDR, so that a bad field is code 7 before
    // the agent is asked anything.
    let config: HostLocalConfig | CniError = needPodCidr();
    try {
      parseHostLocalConfig(ipam, runtimeIpRanges, { network: 0, prefix: 0 });
    } catch (err) {
      if (!(err instanceof CniError)) throw err;
      config = err;
    }
    return {
      builtIn: true,
      type,
      raw: ipam,
      fromPodCidr,
      dataDir,
      config,
      podCidr: { runtimeIpRanges },
    };
  }
  let config: HostLocalConfig | CniError;
  try {
    config = parseHostLocalConfig(ipam, runtimeIpRanges);
  } catch (err) {
    if (!(err instanceof CniError)) throw err;
    config = err;
  }
  return { builtIn: true, type, raw: ipam, fromPodCidr, dataDir, config };
}

/** Whether the config is good but for the node's pod CIDR (ADD and CHECK ask the agent). */
export function awaitsPodCidr(conf: BuiltInIpamConf): boolean {
  return conf.podCidr !== undefined && conf.config instanceof CniError &&
    conf.config.code === ErrCode.TryAgainLater;
}

/** `conf` with its "usePodCidr" subnets standing for `cidr`, this node's pod CIDR. */
export function withPodCidr(conf: BuiltInIpamConf, cidr: Cidr): BuiltInIpamConf {
  if (!awaitsPodCidr(conf) || conf.podCidr === undefined) return conf;
  let config: HostLocalConfig | CniError;
  try {
    config = parseHostLocalConfig(conf.raw, conf.podCidr.runtimeIpRanges, cidr);
  } catch (err) {
    if (!(err instanceof CniError)) throw err;
    config = err;
  }
  return { ...conf, config };
}

/** The parsed host-local config, or the error that made it invalid. */
export function hostLocalConfig(conf: BuiltInIpamConf): HostLocalConfig {
  if (conf.config instanceof CniError) throw conf.config;
  return conf.config;
}
