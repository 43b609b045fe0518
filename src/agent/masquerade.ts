// The agent's masquerade: traffic from this node's pods to addresses outside every node's pod
// CIDR, outside every node's address and outside the non-masquerade CIDRs leaves with the
// node's address. Pod to pod across nodes keeps the pod's address (NetworkPolicy judges it).
// The rules live in nftables table `ip ebpfcni`, replaced whole in one transaction when the
// node set changes (src/masq/ruleset.ts builds it; libnftables applies it, synchronously on
// the main thread, in the agent's network namespace). Stopping leaves it in place: pods keep
// reaching the world while the agent restarts. `ebpfcni masquerade cleanup` removes it.
import { errorMessage } from "../spec/text.ts";
import type { NodeSource } from "../spec/node.ts";
import type { Cidr } from "../spec/ipv4.ts";
import {
  describePlan,
  listAgentTable,
  listingKey,
  masqueradePlan,
  type NftBatch,
  replaceAgentTable,
} from "../masq/ruleset.ts";
import type { AgentLog } from "../log.ts";

export interface MasqueradeOptions {
  /** This node's name. */
  self: string;
  /** --non-masquerade-cidr: destinations never masqueraded to. */
  nonMasquerade: readonly Cidr[];
  log: AgentLog;
  /** Runs a batch (default: libnftables in this thread's network namespace). */
  apply?: (batch: NftBatch) => void;
  /** The table as the kernel holds it, as text to compare (undefined: no such table).
   * Default: libnftables' listing; with `apply` given and no `list`, always undefined. */
  list?: () => string | undefined;
}

export type MasqueradeStatus =
  | { state: "applied"; rules: string }
  | { state: "waiting"; reason: string }
  | { state: "failed"; error: string };

export interface Masquerade {
  status(): MasqueradeStatus;
  /** Applies the current node set now (the change hook does it on every change); `repair`
   * lists the table and writes it again when it is not as last applied (drift: someone
   * removed or changed it). */
  sync(repair?: boolean): void;
}

async function libnftables(): Promise<
  { apply: (batch: NftBatch) => void; list: () => string | undefined }
> {
  // libnftables is loaded only by an agent that masquerades.
  const { NftContext, NftError } = await import("../../ffi/libnftables.ts");
  // Opened once at start: a missing library stops the agent with the package to install.
  new NftContext().close();
  return {
    apply: (batch) => {
      using nft = new NftContext();
      nft.run(batch, "replace nftables table ip ebpfcni");
    },
    list: () => {
      using nft = new NftContext();
      try {
        return listingKey(nft.run(listAgentTable(), "list nftables table ip ebpfcni"));
      } catch (err) {
        if (err instanceof NftError && err.notFound) return undefined;
        throw err;
      }
    },
  };
}

/** Applies the masquerade for the current nodes and again after every change. Until this
 * node is known with a pod CIDR, nothing is changed (a table from an earlier run stays). */
export async function startMasquerade(
  nodes: NodeSource,
  opts: MasqueradeOptions,
): Promise<Masquerade> {
  const nft = opts.apply
    ? { apply: opts.apply, list: opts.list ?? (() => undefined) }
    : await libnftables();
  let applied: string | undefined;
  // The listing right after the last write: a resync compares the kernel's with it.
  let listed: string | undefined;
  const list = () => {
    try {
      return nft.list();
    } catch (err) {
      opts.log.warn("cannot list the masquerade table", { error: String(err) });
      return undefined;
    }
  };
  let status: MasqueradeStatus = { state: "waiting", reason: "not applied yet" };
  const sync = (repair = false) => {
    const plan = masqueradePlan(
      opts.self,
      nodes.nodes(),
      opts.nonMasquerade,
      nodes.claimedPodCidrs?.() ?? [],
    );
    if ("waiting" in plan) {
      if (status.state !== "waiting" || status.reason !== plan.waiting) {
        opts.log.warn("masquerade waits", { reason: plan.waiting });
      }
      if (applied === undefined) status = { state: "waiting", reason: plan.waiting };
      return;
    }
    const batch = replaceAgentTable(plan);
    const text = JSON.stringify(batch);
    const changed = text !== applied || status.state !== "applied";
    if (!changed && (!repair || (listed !== undefined && list() === listed))) return;
    const rules = describePlan(plan);
    try {
      nft.apply(batch);
      listed = list();
      applied = text;
      status = { state: "applied", rules };
      if (changed) opts.log.info("masquerade applied", { rules });
    } catch (err) {
      status = { state: "failed", error: errorMessage(err) };
      opts.log.error("masquerade not applied", { error: String(err) });
    }
  };
  nodes.onChange(() => sync());
  sync();
  return { status: () => status, sync };
}
