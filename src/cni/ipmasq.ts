// The network config's "ipMasq" (the reference bridge plugin's field): a pod's traffic leaving
// the bridge's subnet, except to multicast, leaves with the node's address. One rule per pod
// address in nftables table `ip ebpfcni-ipmasq` (src/masq/ruleset.ts), its comment naming the
// network and the attachment: added at ADD, removed at DEL and GC. libnftables is loaded only
// here, so a network without ipMasq pays nothing for it. Calls run in the plugin's (the
// node's) network namespace, synchronously.
import { errorMessage } from "../spec/text.ts";
import { CniError, ErrCode } from "../spec/cni.ts";
import { type Cidr, prefixMask } from "../spec/ipv4.ts";
import {
  addIpMasqRule,
  deleteRules,
  ipMasqComment,
  ipMasqRules,
  listIpMasqChain,
  networkTag,
} from "../masq/ruleset.ts";
import type { NftContext } from "../../ffi/libnftables.ts";

async function context(): Promise<NftContext> {
  const { NftContext } = await import("../../ffi/libnftables.ts");
  return new NftContext();
}

/** The chain's ipMasq rules; none when the table or chain does not exist. */
async function rulesOf(nft: NftContext): Promise<{ handle: number; comment: string }[]> {
  const { NftError } = await import("../../ffi/libnftables.ts");
  try {
    return ipMasqRules(nft.run(listIpMasqChain(), "list nftables table ip ebpfcni-ipmasq"));
  } catch (err) {
    if (err instanceof NftError && err.notFound) return [];
    throw err;
  }
}

function failed(what: string, err: unknown): CniError {
  return new CniError(ErrCode.Internal, `ipMasq: cannot ${what}`, errorMessage(err), {
    cause: err,
  });
}

/** Masquerades the attachment's addresses leaving their subnets (replacing rules of an
 * earlier ADD of the same attachment). */
export async function ipMasqAdd(
  network: string,
  containerId: string,
  ifname: string,
  addrs: readonly { ip: number; prefix: number }[],
): Promise<void> {
  const comment = ipMasqComment(network, containerId, ifname);
  try {
    using nft = await context();
    const stale = (await rulesOf(nft)).filter((r) => r.comment === comment).map((r) => r.handle);
    const batch = { nftables: [] as unknown[] };
    addrs.forEach((a, i) => {
      const subnet: Cidr = { network: (a.ip & prefixMask(a.prefix)) >>> 0, prefix: a.prefix };
      batch.nftables.push(...addIpMasqRule(comment, a.ip, subnet, i === 0 ? stale : []).nftables);
    });
    nft.run(batch, "add ipMasq rules");
  } catch (err) {
    throw failed(`masquerade ${containerId}/${ifname}`, err);
  }
}

/** Removes the ipMasq rules of the network's attachments `drop` says to; returns how many
 * it removed. Rule by rule, each in its own transaction: a rule that a concurrent DEL or GC
 * removed since the listing is gone already, and must not fail the others. */
async function removeWhere(
  network: string,
  drop: (comment: string) => boolean,
  what: string,
  listed?: () => Promise<void>,
): Promise<number> {
  const head = `${networkTag(network)} `;
  const { NftError } = await import("../../ffi/libnftables.ts");
  try {
    using nft = await context();
    const handles = (await rulesOf(nft))
      .filter((r) => r.comment.startsWith(head) && drop(r.comment))
      .map((r) => r.handle);
    await listed?.();
    let removed = 0;
    for (const handle of handles) {
      try {
        nft.run(deleteRules([handle]), "delete an ipMasq rule");
        removed++;
      } catch (err) {
        if (!(err instanceof NftError && err.notFound)) throw err;
      }
    }
    return removed;
  } catch (err) {
    throw failed(what, err);
  }
}

/** DEL: the attachment's rules go (none is no error). */
export function ipMasqDel(network: string, containerId: string, ifname: string): Promise<number> {
  const comment = ipMasqComment(network, containerId, ifname);
  return removeWhere(network, (c) => c === comment, `remove ${containerId}/${ifname}'s rules`);
}

/** GC: the network's rules of attachments not in `valid` go (`listed`: a test's hook between
 * the listing and the removals). */
export function ipMasqGc(
  network: string,
  valid: readonly { containerId: string; ifname: string }[],
  listed?: () => Promise<void>,
): Promise<number> {
  const keep = new Set(valid.map((v) => ipMasqComment(network, v.containerId, v.ifname)));
  return removeWhere(network, (c) => !keep.has(c), "remove stale rules", listed);
}
