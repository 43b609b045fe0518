// The node's datapath, loaded or reused for whoever needs it first (CNI ADD and STATUS, the
// policy agent): an upgrade over an older build's pins also registers in veth_map the pods the
// attachment records say are attached (pods attached before veth_map existed).
import { type Datapath, ensureDatapath } from "../datapath/loader.ts";
import { VethMap } from "../datapath/maps.ts";
import { VETH_MAP } from "../spec/bpf_layout.ts";
import { tryParseIpv4 } from "../spec/ipv4.ts";
import { StateStore } from "./attachment_store.ts";
import { NetlinkSocket } from "../net/socket.ts";
import { Links } from "../net/link.ts";
import { log } from "../log.ts";

/** Registers in veth_map every pod the records under `stateDir` say is attached with this
 * pin directory: an upgrade from a build without veth_map must not strand them (the new
 * programs drop frames from unregistered veths). */
function registerRecordedVeths(dp: Datapath, stateDir: string): void {
  const veths = new VethMap(dp.fd(VETH_MAP));
  using nl = new NetlinkSocket();
  const links = new Links(nl);
  let n = 0;
  for (const record of StateStore.all(stateDir)) {
    if (record.pinDir !== dp.pinDir) continue;
    const link = links.get(record.hostVeth);
    if (!link) continue;
    const ips = record.ips.map(tryParseIpv4).filter((ip) => ip !== undefined);
    if (veths.get(link.index) === undefined) {
      veths.set(link.index, { ips, flags: 0 });
      n++;
    }
  }
  if (n > 0) log.info(`registered ${n} attached veth(s) in veth_map from the CNI records`);
}

/** Load-or-reuse of the pin directory's datapath, registering the pods the CNI records under
 * `stateDir` say are attached there (ADD, STATUS and the policy agent). Throws the loader's
 * errors. */
export function loadNodeDatapath(pinDir: string, stateDir: string): Datapath {
  return ensureDatapath(pinDir, { prepare: (dp) => registerRecordedVeths(dp, stateDir) });
}
