// The CNI "dns" object (network config, results, IPAM plugin results), read with the
// caller's FieldReader so its errors read like the caller's others.
import type { Dns } from "./cni.ts";
import type { FieldReader } from "./json.ts";

export function parseDns(v: unknown, r: FieldReader, path = "dns"): Dns {
  const o = r.object(v, path);
  const out: Dns = {};
  const nameservers = r.optStringArray(o, "nameservers", path);
  if (nameservers !== undefined) out.nameservers = nameservers;
  const domain = r.optString(o, "domain", path);
  if (domain !== undefined) out.domain = domain;
  const search = r.optStringArray(o, "search", path);
  if (search !== undefined) out.search = search;
  const options = r.optStringArray(o, "options", path);
  if (options !== undefined) out.options = options;
  return out;
}
