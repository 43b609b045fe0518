// The datapath as the CNI commands see it: load-or-reuse for ADD and STATUS (a failure means
// the node is not ready: code 11), open-only for DEL, CHECK and GC (which must not create
// pins); the pin directory's config checked against the network's; and what an upgrade over
// an older build's pins needs from the CNI's records (veth_map for pods attached before it).
import {
  type Datapath,
  DatapathError,
  ensureDatapath,
  openPinnedMaps,
} from "../datapath/loader.ts";
import { ConfigMap, VethMap } from "../datapath/maps.ts";
import { CONFIG_MAP, VETH_MAP } from "../spec/bpf_layout.ts";
import { planConfig } from "../datapath/config_plan.ts";
import { BpfError, LibraryError } from "../../ffi/errors.ts";
import { CniError, ErrCode } from "../spec/cni.ts";
import { tryParseIpv4 } from "../spec/ipv4.ts";
import type { NetConf } from "./net_conf.ts";
import { StateStore } from "../node/attachment_store.ts";
import { NetlinkSocket } from "../net/socket.ts";
import { Links } from "../net/link.ts";
import { log } from "../log.ts";

function notReady(err: unknown): never {
  if (err instanceof DatapathError || err instanceof LibraryError) {
    const log = err.cause instanceof BpfError ? err.cause.log : "";
    throw new CniError(ErrCode.TryAgainLater, err.message, log, { cause: err });
  }
  throw err;
}

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

/** Load-or-reuse, for ADD and STATUS. */
export function ensureNodeDatapath(conf: NetConf): Datapath {
  try {
    return loadNodeDatapath(conf.pinDir, conf.stateDir);
  } catch (err) {
    notReady(err);
  }
}

/** Load-or-reuse of the pin directory's datapath, registering the pods the CNI records under
 * `stateDir` say are attached there (ADD, STATUS and the policy agent). Throws the loader's
 * errors. */
export function loadNodeDatapath(pinDir: string, stateDir: string): Datapath {
  return ensureDatapath(pinDir, { prepare: (dp) => registerRecordedVeths(dp, stateDir) });
}

/** Open-only, for DEL, CHECK and GC; undefined when nothing is pinned. */
export function openDatapath(pinDir: string): Datapath | undefined {
  try {
    return openPinnedMaps(pinDir);
  } catch (err) {
    notReady(err);
  }
}

/** Makes config_map say what the network asks, or refuses (code 7) a mode or conntrack
 * change under attached pods. */
export function applyDatapathConf(dp: Datapath, conf: NetConf): void {
  const configMap = new ConfigMap(dp.fd(CONFIG_MAP));
  const attached = new VethMap(dp.fd(VETH_MAP)).list().length;
  const plan = planConfig(configMap.get(), conf.datapath, attached, conf.pinDir);
  if (plan.kind === "conflict") throw new CniError(ErrCode.InvalidConfig, plan.message);
  if (plan.kind === "write") configMap.set(plan.config);
}
