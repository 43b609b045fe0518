// The one door to tracked connections for whoever ends them: CNI DEL and GC (every
// connection of an address leaving its pod) and the agent (what a change no longer allows).
// Kept apart so the conntrack's layout (how many maps, which entries) changes in one place.
import { CtMap } from "./maps.ts";
import { CT_MAP, type CtEntry, type CtKey } from "./layout.ts";
import type { Datapath } from "./loader.ts";

export interface Tracked {
  key: CtKey;
  entry: CtEntry;
  /** The key's bytes, to delete it by. */
  raw: Uint8Array;
}

function ctMaps(dp: Pick<Datapath, "maps" | "fd">): CtMap[] {
  return dp.maps.has(CT_MAP.name) ? [new CtMap(dp.fd(CT_MAP))] : [];
}

/** Every tracked connection of the pin directory. */
export function trackedConnections(dp: Pick<Datapath, "maps" | "fd">): Tracked[] {
  return ctMaps(dp).flatMap((m) => m.list());
}

/** Deletes `connections` (as trackedConnections() gave them): their next packet is judged. */
export function endConnections(
  dp: Pick<Datapath, "maps" | "fd">,
  connections: readonly Tracked[],
): void {
  if (connections.length === 0) return;
  for (const m of ctMaps(dp)) m.delete(connections.map((c) => c.raw));
}

/** Deletes every tracked connection with an end at one of `addrs` (host-order IPv4): an
 * address leaving its pod takes its connections with it, so a pod that gets the address
 * next rides none of them. Returns how many there were. */
export function endConnectionsOf(
  dp: Pick<Datapath, "maps" | "fd">,
  addrs: ReadonlySet<number>,
): number {
  if (addrs.size === 0) return 0;
  const ending = trackedConnections(dp).filter((c) =>
    addrs.has(c.key.saddr) || addrs.has(c.key.daddr)
  );
  endConnections(dp, ending);
  return ending.length;
}
