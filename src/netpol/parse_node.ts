// A v1 Node into the cluster node the multi-node rooms read (spec/node.ts): its name, its IPv4
// pod CIDRs (spec.podCIDRs, else spec.podCIDR) and the address other nodes reach it at
// (status.addresses: the first IPv4 InternalIP, else the first IPv4 ExternalIP). IPv6 entries
// are skipped (the product is IPv4-only). A Node without a pod CIDR or an address is valid
// (kube-controller-manager assigns the CIDR after the node registers): node_check.ts reports
// it; a field that is not what the API server accepts is an ObjectError.
import { dnsSubdomainProblem } from "./_k8s_names.ts";
import { child, describeValue, index, type JsonObject, type Reader } from "./_reader.ts";
import { readMetadata } from "./parse_meta.ts";
import type { ClusterNode } from "../spec/node.ts";
import { type Cidr, CidrError, ipv4Problem, isIpv6, parseCidr, parseIpv4 } from "../spec/ipv4.ts";

export function readNode(r: Reader, obj: JsonObject): ClusterNode {
  const meta = readMetadata(r, obj, "cluster", dnsSubdomainProblem);
  const spec = r.optObject(obj, "spec", "") ?? {};
  const status = r.optObject(obj, "status", "") ?? {};
  const node: ClusterNode = { name: meta.name, podCidrs: readPodCidrs(r, spec) };
  const address = readAddress(r, status);
  if (address !== undefined) node.address = address;
  return node;
}

function readPodCidrs(r: Reader, spec: JsonObject): Cidr[] {
  const texts: [string, string][] = [];
  const list = r.optArray(spec, "podCIDRs", "spec");
  if (list !== undefined && list.length > 0) {
    list.forEach((value, i) => {
      const path = index("spec.podCIDRs", i);
      if (typeof value !== "string") r.fail(path, `must be a string, got ${describeValue(value)}`);
      texts.push([value, path]);
    });
  } else {
    const single = r.optString(spec, "podCIDR", "spec");
    if (single !== undefined && single !== "") texts.push([single, "spec.podCIDR"]);
  }
  const out: Cidr[] = [];
  for (const [text, path] of texts) {
    if (text.includes(":")) continue; // IPv6
    try {
      // The API server accepts host bits here (ParseCIDRSloppy): the network is what counts.
      out.push(parseCidr(text, { strict: false }));
    } catch (err) {
      if (!(err instanceof CidrError)) throw err;
      r.fail(path, `must be a valid CIDR (${err.message}), got ${describeValue(text)}`, err);
    }
  }
  return out.slice(0, 1); // at most one per family, as the API server allows
}

function readAddress(r: Reader, status: JsonObject): number | undefined {
  const list = r.optArray(status, "addresses", "status") ?? [];
  const found: Record<string, number> = {};
  list.forEach((value, i) => {
    const path = index("status.addresses", i);
    const entry = r.object(value, path);
    const type = r.requiredString(entry, "type", path);
    const text = r.requiredString(entry, "address", path);
    if (type !== "InternalIP" && type !== "ExternalIP") return; // Hostname, InternalDNS, ...
    if (isIpv6(text)) return;
    const why = ipv4Problem(text);
    if (why !== undefined) {
      r.fail(
        child(path, "address"),
        `must be a valid IP address (${why}), got ${describeValue(text)}`,
      );
    }
    found[type] ??= parseIpv4(text);
  });
  return found["InternalIP"] ?? found["ExternalIP"];
}
