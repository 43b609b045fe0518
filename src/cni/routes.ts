// What ADD configures inside the pod and CHECK verifies: the IPv4 addresses IPAM returned, and
// the routes as the bridge plugin makes them.
import type { IpConfig, Route } from "../spec/cni.ts";
import { formatIpv4, parseIpv4Prefix, tryParseIpv4 } from "../spec/ipv4.ts";
import type { RouteSpec } from "../net/messages.ts";

export interface PodAddress {
  ip: number;
  prefix: number;
  gateway: number | undefined;
  config: IpConfig;
}

/** The IPv4 entries of an IPAM result (others are not configured: the maps are IPv4-only). */
export function podAddresses(ips: readonly IpConfig[]): PodAddress[] {
  const out: PodAddress[] = [];
  for (const c of ips) {
    const p = parseIpv4Prefix(c.address);
    if (p === undefined) continue;
    const gateway = c.gateway === undefined ? undefined : tryParseIpv4(c.gateway);
    out.push({ ip: p.ip, prefix: p.prefix, gateway, config: c });
  }
  return out;
}

/** Container routes as the bridge plugin makes them: a route without gw goes via the
 * gateway; isDefaultGateway adds 0.0.0.0/0 via the gateway. */
export function containerRoutes(
  routes: readonly Route[],
  gateway: number | undefined,
  isDefaultGateway: boolean,
): { specs: Omit<RouteSpec, "oif">[]; result: Route[] } {
  const result = [...routes];
  if (isDefaultGateway && gateway !== undefined && !routes.some((r) => r.dst === "0.0.0.0/0")) {
    result.push({ dst: "0.0.0.0/0", gw: formatIpv4(gateway) });
  }
  const specs: Omit<RouteSpec, "oif">[] = [];
  for (const r of result) {
    const d = parseIpv4Prefix(r.dst);
    if (!d) continue; // IPv6 routes from a delegated IPAM: not configured here
    const gw = r.gw !== undefined ? tryParseIpv4(r.gw) : gateway;
    const spec: Omit<RouteSpec, "oif"> = { dst: d.ip, dstLen: d.prefix };
    if (gw !== undefined) spec.gw = gw;
    if (r.priority !== undefined) spec.priority = r.priority;
    if (r.table !== undefined) spec.table = r.table;
    if (r.mtu !== undefined) spec.mtu = r.mtu;
    if (r.advmss !== undefined) spec.advmss = r.advmss;
    specs.push(spec);
  }
  return { specs, result };
}
