// The one door to tracked connections for whoever ends them: CNI DEL and GC (every
// connection of an address leaving its pod) and the agent (what a change no longer allows).
// Kept apart so the conntrack's layout (how many maps, which entries) changes in one place.
import { type CtJudged, CtMap, encodeCtKey, scanCt } from "./maps.ts";
import { CT_EST_MAP, CT_MAP, STRUCTS } from "../spec/bpf_layout.ts";
import type { Datapath } from "./loader.ts";

export type Tracked = CtJudged;

type Maps = Pick<Datapath, "maps" | "fd">;

/** ct_map (new connections, an LRU) and ct_est_map (answered ones, kept apart). */
function ctFds(dp: Maps): number[] {
  return [CT_MAP, CT_EST_MAP].filter((m) => dp.maps.has(m.name)).map((m) => dp.fd(m));
}

/** Every tracked connection of the pin directory: its key, identities and flags, each once.
 * The datapath moves an answered connection from ct_map to ct_est_map and a closing one back:
 * ct_est_map is read before and after ct_map, so one moving meanwhile is still seen. */
export function trackedConnections(dp: Maps): Tracked[] {
  const fds = ctFds(dp);
  const reads = fds.length > 1 ? [fds[1]!, fds[0]!, fds[1]!] : fds;
  const seen = new Set<string>();
  const out: Tracked[] = [];
  for (const fd of reads) {
    for (const c of scanCt(fd)) {
      const k = c.key;
      const id = `${k.saddr}/${k.daddr}/${k.sport}/${k.dport}/${k.proto}`;
      if (seen.has(id)) continue;
      seen.add(id);
      out.push(c);
    }
  }
  return out;
}

/** Deletes `connections` (as trackedConnections() gave them): their next packet is judged. */
export function endConnections(dp: Maps, connections: readonly Tracked[]): void {
  if (connections.length === 0) return;
  const size = STRUCTS.ct_key.size;
  const keys = connections.map((c) => encodeCtKey(c.key, new Uint8Array(size)));
  if (dp.maps.has(CT_MAP.name)) CtMap.of(dp).deleteMany(keys);
}

/** Deletes every tracked connection with an end at one of `addrs` (host-order IPv4): an
 * address leaving its pod takes its connections with it, so a pod that gets the address
 * next rides none of them. Returns how many there were. */
export function endConnectionsOf(dp: Maps, addrs: ReadonlySet<number>): number {
  if (addrs.size === 0) return 0;
  const ending = trackedConnections(dp).filter((c) =>
    addrs.has(c.key.saddr) || addrs.has(c.key.daddr)
  );
  endConnections(dp, ending);
  return ending.length;
}
