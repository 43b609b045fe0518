// Results and errors on the wire: the 1.x Result converted to the shape of the requested spec
// version, and prevResult (either shape) read back into a validated 1.x Result.

import { CniError, ErrCode } from "../spec/cni.ts";
import { describeValue } from "../spec/text.ts";
import { contextStyle, FieldReader, isObject } from "../spec/json.ts";
import { parseDns } from "../spec/dns.ts";
import { isIp, parseIpPrefix } from "../spec/ipv4.ts";
import type { Dns, Interface, IpConfig, Result, Route } from "../spec/cni.ts";
import {
  CURRENT_VERSION,
  isSupportedVersion,
  negotiate,
  type SupportedVersion,
} from "./spec_version.ts";

/** Versions whose ip entries carry "version" ("4"/"6"): the 0.3.x/0.4.0 shape (types/040). */
function isLegacyShape(v: SupportedVersion): boolean {
  return v === "0.3.0" || v === "0.3.1" || v === "0.4.0";
}

/**
 * The result as the plain object to print for `cniVersion`. Empty optional fields are left
 * out, as libcni's omitempty tags do (including an empty dns, which 1.x libcni drops too).
 * Interface mtu only exists from 1.0.0 on; route attributes are emitted for every version,
 * as libcni's shared Route type does.
 */
export function formatResult(result: Result, cniVersion: string): Record<string, unknown> {
  const version = negotiate(cniVersion);
  const legacy = isLegacyShape(version);
  const out: Record<string, unknown> = { cniVersion: version };
  if (result.interfaces && result.interfaces.length > 0) {
    out.interfaces = result.interfaces.map((i) => formatInterface(i, legacy));
  }
  if (result.ips && result.ips.length > 0) {
    out.ips = result.ips.map((ip) => formatIp(ip, legacy));
  }
  if (result.routes && result.routes.length > 0) out.routes = result.routes.map(formatRoute);
  const dns = result.dns ? formatDns(result.dns) : undefined;
  if (dns) out.dns = dns;
  return out;
}

function formatInterface(i: Interface, legacy: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = { name: i.name };
  if (i.mac) out.mac = i.mac;
  if (!legacy && i.mtu) out.mtu = i.mtu;
  if (i.sandbox) out.sandbox = i.sandbox;
  return out;
}

function formatIp(ip: IpConfig, legacy: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  // types/040 derives the family from the address; the key order follows its struct.
  if (legacy) out.version = parseIpPrefix(ip.address)?.family === 6 ? "6" : "4";
  if (ip.interface !== undefined) out.interface = ip.interface;
  out.address = ip.address;
  if (ip.gateway) out.gateway = ip.gateway;
  return out;
}

function formatRoute(r: Route): Record<string, unknown> {
  const out: Record<string, unknown> = { dst: r.dst };
  if (r.gw) out.gw = r.gw;
  if (r.mtu) out.mtu = r.mtu;
  if (r.advmss) out.advmss = r.advmss;
  if (r.priority) out.priority = r.priority;
  // Pointers in libcni, so an explicit 0 (e.g. scope universe) is kept.
  if (r.table !== undefined) out.table = r.table;
  if (r.scope !== undefined) out.scope = r.scope;
  return out;
}

/** The dns object without empty fields, or undefined when nothing is left. */
function formatDns(d: Dns): Record<string, unknown> | undefined {
  const out: Record<string, unknown> = {};
  if (d.nameservers && d.nameservers.length > 0) out.nameservers = [...d.nameservers];
  if (d.domain) out.domain = d.domain;
  if (d.search && d.search.length > 0) out.search = [...d.search];
  if (d.options && d.options.length > 0) out.options = [...d.options];
  return Object.keys(out).length > 0 ? out : undefined;
}

/**
 * The spec's error object. A request whose version the plugin cannot speak (or could not read)
 * gets the current version, so the runtime still sees a well-formed error.
 */
export function formatError(err: CniError, cniVersion: string): Record<string, unknown> {
  return err.toJSON(isSupportedVersion(cniVersion) ? cniVersion : CURRENT_VERSION);
}

// ---- prevResult --------------------------------------------------------------------------------

const U32_MAX = 4294967295;

/**
 * Reads a previous plugin's result into the 1.x shape, accepting the 0.3.x/0.4.0 shape too (its
 * "version" must then match the address family). Unknown fields are ignored; malformed known
 * fields are code 7. The result takes the config's `cniVersion`, as libcni parses it so.
 */
export function parsePrevResult(obj: unknown, cniVersion: string): Result {
  const r = new FieldReader(contextStyle("Invalid prevResult"));
  if (!isObject(obj)) {
    throw new CniError(
      ErrCode.InvalidConfig,
      `Invalid prevResult: must be an object, got ${describeValue(obj)}`,
    );
  }
  const out: Result = { cniVersion };
  const u32 = (o: Record<string, unknown>, key: string, path: string) =>
    r.optInt(o, key, path, 0, U32_MAX);

  const interfaces = (r.optArray(obj, "interfaces") ?? []).map((v, i) => {
    const path = `interfaces[${i}]`;
    const o = r.object(v, path);
    if (typeof o.name !== "string" || o.name === "") {
      throw r.invalid(`${path}.name`, "a non-empty string", o.name);
    }
    const intf: Interface = { name: o.name };
    const mac = r.optString(o, "mac", path);
    if (mac) intf.mac = mac;
    const mtu = u32(o, "mtu", path);
    if (mtu) intf.mtu = mtu;
    const sandbox = r.optString(o, "sandbox", path);
    if (sandbox) intf.sandbox = sandbox;
    return intf;
  });
  if (interfaces.length > 0) out.interfaces = interfaces;

  const ips = (r.optArray(obj, "ips") ?? []).map((v, i) => {
    const path = `ips[${i}]`;
    const o = r.object(v, path);
    const address = o.address;
    const cidr = typeof address === "string" ? parseIpPrefix(address) : undefined;
    if (typeof address !== "string" || cidr === undefined) {
      throw r.invalid(`${path}.address`, "an address in CIDR notation", address);
    }
    const version = r.optString(o, "version", path);
    if (version !== undefined && version !== String(cidr.family)) {
      throw r.invalid(`${path}.version`, `"${cidr.family}" for its address`, version);
    }
    const ip: IpConfig = { address };
    const gateway = r.optString(o, "gateway", path);
    if (gateway) {
      if (!isIp(gateway)) throw r.invalid(`${path}.gateway`, "an IP address", gateway);
      ip.gateway = gateway;
    }
    const intf = u32(o, "interface", path);
    if (intf !== undefined) ip.interface = intf;
    return ip;
  });
  if (ips.length > 0) out.ips = ips;

  const routes = (r.optArray(obj, "routes") ?? []).map((v, i) => {
    const path = `routes[${i}]`;
    const o = r.object(v, path);
    const dst = o.dst;
    if (typeof dst !== "string" || parseIpPrefix(dst) === undefined) {
      throw r.invalid(`${path}.dst`, "a destination in CIDR notation", dst);
    }
    const route: Route = { dst };
    const gw = r.optString(o, "gw", path);
    if (gw) {
      if (!isIp(gw)) throw r.invalid(`${path}.gw`, "an IP address", gw);
      route.gw = gw;
    }
    for (const key of ["mtu", "advmss", "priority"] as const) {
      const n = u32(o, key, path);
      if (n) route[key] = n;
    }
    for (const key of ["table", "scope"] as const) {
      const n = u32(o, key, path);
      if (n !== undefined) route[key] = n;
    }
    return route;
  });
  if (routes.length > 0) out.routes = routes;

  if (obj.dns !== undefined && obj.dns !== null) {
    const dns = parseDns(obj.dns, r);
    if (Object.keys(dns).length > 0) out.dns = dns;
  }
  return out;
}
