// The datapath as the CNI commands see it: load-or-reuse for ADD and STATUS (a failure means
// the node is not ready: code 11; the loading itself is the node's, node/datapath_load.ts),
// open-only for DEL, CHECK and GC (which must not create pins); the pin directory's config
// checked against the network's.
import { errorMessage } from "../spec/text.ts";
import { type Datapath, DatapathError, openPinnedMaps } from "../datapath/loader.ts";
import { ConfigMap, CtMap, VethMap } from "../datapath/maps.ts";
import { CONFIG_MAP, VETH_MAP } from "../spec/bpf_layout.ts";
import { planConfig } from "../datapath/config_plan.ts";
import { BpfError, LibraryError, monotonicNs } from "../datapath/kernel.ts";
import { CniError, ErrCode } from "../spec/cni.ts";
import type { NetConf } from "./net_conf.ts";
import { loadNodeDatapath } from "../node/datapath_load.ts";
import { log } from "../log.ts";

function notReady(err: unknown): never {
  if (err instanceof DatapathError || err instanceof LibraryError) {
    const log = err.cause instanceof BpfError ? err.cause.log : "";
    throw new CniError(ErrCode.TryAgainLater, err.message, log, { cause: err });
  }
  throw err;
}

/** Load-or-reuse, for ADD and STATUS. */
export function ensureNodeDatapath(conf: NetConf): Datapath {
  try {
    return loadNodeDatapath(conf.pinDir, conf.stateDir);
  } catch (err) {
    notReady(err);
  }
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

/** Identity mode has no agent to sweep ct_est_map: each ADD removes its expired entries, so
 * connections whose peers vanished give their pods' shares back (one read of at most
 * ct_est_map's 131,072 entries; none when it is empty). Kubernetes mode's agent sweeps at
 * every resync. A failure is logged: it is not the ADD's. */
export function sweepConntrack(dp: Datapath, conf: NetConf): void {
  if (conf.datapath.mode === "kubernetes" || !conf.datapath.conntrack) return;
  try {
    const n = CtMap.of(dp).sweep(monotonicNs());
    if (n > 0) log.info(`removed ${n} expired established connection(s) from ct_est_map`);
  } catch (err) {
    log.warn(`Cannot sweep ct_est_map: ${errorMessage(err)}`);
  }
}
