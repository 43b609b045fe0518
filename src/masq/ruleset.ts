// The nftables rulesets of masquerade, as libnftables JSON batches (libnftables-json(5)):
// pure builders, no FFI. Two tables, each ebpfcni's alone:
// - `ip ebpfcni`: the agent's masquerade of this node's pods, replaced whole in one
//   transaction whenever the cluster's nodes change;
// - `ip ebpfcni-ipmasq`: the network config's `ipMasq`, one rule per attachment, added at ADD
//   and removed at DEL and GC (found again by its comment).
import type { ClusterNode } from "../spec/node.ts";
import { broadcast, type Cidr, formatCidr, formatIpv4 } from "../spec/ipv4.ts";
import { hex, sha256 } from "../hash.ts";

export const FAMILY = "ip";
export const AGENT_TABLE = "ebpfcni";
export const IPMASQ_TABLE = "ebpfcni-ipmasq";
const CHAIN = "postrouting";
/** NF_IP_PRI_NAT_SRC: where kube-proxy and flannel masquerade too. */
const SRCNAT = 100;
const MULTICAST = { prefix: { addr: "224.0.0.0", len: 4 } };
/** Longest comment nftables keeps (NFTNL_UDATA_COMMENT_MAXLEN). */
const COMMENT_MAX = 128;

export type NftBatch = { nftables: unknown[] };

/** What the agent's table holds. */
export interface MasqueradePlan {
  /** This node's pod CIDRs: the sources masqueraded. */
  local: Cidr[];
  /** Disjoint, sorted [first, last] address ranges never masqueraded to: every node's pod
   * CIDRs (withheld ones too) and address, and the non-masquerade CIDRs. */
  exempt: [number, number][];
}

/** The plan for node `self`, or why there is none yet (this node unknown or without a pod
 * CIDR: nothing to masquerade, and nothing to change). `claimed`: pod CIDRs some node
 * claims that `nodes` leaves out (withheld: two nodes claim them), exempt all the same. */
export function masqueradePlan(
  self: string,
  nodes: ReadonlyMap<string, ClusterNode>,
  nonMasquerade: readonly Cidr[],
  claimed: readonly Cidr[] = [],
): MasqueradePlan | { waiting: string } {
  const me = nodes.get(self);
  if (me === undefined) return { waiting: `node "${self}" is not known yet` };
  if (me.podCidrs.length === 0) return { waiting: `node "${self}" has no pod CIDR yet` };
  const all: Cidr[] = [...nonMasquerade, ...claimed];
  for (const n of nodes.values()) {
    all.push(...n.podCidrs);
    if (n.address !== undefined) all.push({ network: n.address, prefix: 32 });
  }
  return { local: [...me.podCidrs], exempt: mergeRanges(all) };
}

/** The union of `cidrs` as disjoint address ranges, sorted (an interval set refuses
 * overlapping elements). */
export function mergeRanges(cidrs: readonly Cidr[]): [number, number][] {
  const ranges = cidrs.map((c): [number, number] => [c.network, broadcast(c)])
    .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const out: [number, number][] = [];
  for (const [lo, hi] of ranges) {
    const last = out[out.length - 1];
    if (last !== undefined && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

function element([lo, hi]: [number, number]): unknown {
  return lo === hi ? formatIpv4(lo) : { range: [formatIpv4(lo), formatIpv4(hi)] };
}

function cidrElement(c: Cidr): unknown {
  return { prefix: { addr: formatIpv4(c.network), len: c.prefix } };
}

const saddr = { payload: { protocol: "ip", field: "saddr" } };
const daddr = { payload: { protocol: "ip", field: "daddr" } };
const match = (op: "==" | "!=", left: unknown, right: unknown) => ({
  match: { op, left, right },
});
const masquerade = { masquerade: { flags: "fully-random" } };

function natChain(table: string): unknown {
  return {
    chain: {
      family: FAMILY,
      table,
      name: CHAIN,
      type: "nat",
      hook: "postrouting",
      prio: SRCNAT,
      policy: "accept",
    },
  };
}

/** The agent's table, replacing any table of that name in the same transaction: `add` then
 * `delete` then `add` works whether or not it existed, and no packet sees it half-built. */
export function replaceAgentTable(plan: MasqueradePlan): NftBatch {
  const table = { table: { family: FAMILY, name: AGENT_TABLE } };
  const set = (name: string, elem: unknown[]) => ({
    set: {
      family: FAMILY,
      table: AGENT_TABLE,
      name,
      type: "ipv4_addr",
      flags: ["interval"],
      ...(elem.length > 0 ? { elem } : {}),
    },
  });
  return {
    nftables: [
      { add: table },
      { delete: table },
      { add: table },
      { add: set("local-pods", mergeRanges(plan.local).map(element)) },
      { add: set("no-masquerade", plan.exempt.map(element)) },
      { add: natChain(AGENT_TABLE) },
      {
        add: {
          rule: {
            family: FAMILY,
            table: AGENT_TABLE,
            chain: CHAIN,
            comment: "ebpfcni: this node's pods leaving the cluster",
            expr: [
              match("==", saddr, "@local-pods"),
              match("!=", daddr, "@no-masquerade"),
              match("!=", daddr, MULTICAST),
              masquerade,
            ],
          },
        },
      },
    ],
  };
}

/** A listing of the agent's table (to tell whether it drifted from what was applied). */
export function listAgentTable(): NftBatch {
  return { nftables: [{ list: { table: { family: FAMILY, name: AGENT_TABLE } } }] };
}

/** A listing as text to compare, without its metainfo (libnftables' version). */
export function listingKey(listing: unknown): string {
  const items = (listing as { nftables?: unknown[] } | undefined)?.nftables ?? [];
  return JSON.stringify(items.filter((i) => !(i && typeof i === "object" && "metainfo" in i)));
}

/** Removes `table` if it exists (`add` first, so a missing one is no error). */
export function deleteTable(table: string): NftBatch {
  const t = { table: { family: FAMILY, name: table } };
  return { nftables: [{ add: t }, { delete: t }] };
}

/** A listing of `table`'s chain, for its rules' handles and comments. */
export function listIpMasqChain(): NftBatch {
  return { nftables: [{ list: { chain: { family: FAMILY, table: IPMASQ_TABLE, name: CHAIN } } }] };
}

/** The first word of an ipMasq comment: the network, or its hash when the name is long. */
export function networkTag(network: string): string {
  return network.length <= 48 ? network : `#${hex(sha256(network)).slice(0, 24)}`;
}

/** The comment of an attachment's ipMasq rule: "<network> <containerID>/<ifname>", the
 * second part hashed when the whole would not fit in a comment. */
export function ipMasqComment(network: string, containerId: string, ifname: string): string {
  const head = networkTag(network);
  const text = `${head} ${containerId}/${ifname}`;
  if (new TextEncoder().encode(text).length <= COMMENT_MAX) return text;
  return `${head} #${hex(sha256(`${containerId}/${ifname}`)).slice(0, 48)}`;
}

/** An attachment's ipMasq rule: traffic from `ip` leaving `subnet` (the bridge's), except
 * to multicast, is masqueraded. `stale` handles (the same attachment's rules of an earlier
 * ADD) are removed in the same transaction. */
export function addIpMasqRule(
  comment: string,
  ip: number,
  subnet: Cidr,
  stale: readonly number[] = [],
): NftBatch {
  return {
    nftables: [
      { add: { table: { family: FAMILY, name: IPMASQ_TABLE } } },
      { add: natChain(IPMASQ_TABLE) },
      ...deleteRules(stale).nftables,
      {
        add: {
          rule: {
            family: FAMILY,
            table: IPMASQ_TABLE,
            chain: CHAIN,
            comment,
            expr: [
              match("==", saddr, formatIpv4(ip)),
              match("!=", daddr, cidrElement(subnet)),
              match("!=", daddr, MULTICAST),
              masquerade,
            ],
          },
        },
      },
    ],
  };
}

export function deleteRules(handles: readonly number[]): NftBatch {
  return {
    nftables: handles.map((handle) => ({
      delete: { rule: { family: FAMILY, table: IPMASQ_TABLE, chain: CHAIN, handle } },
    })),
  };
}

/** The ipMasq rules of a chain listing (libnftables JSON output): handle and comment. */
export function ipMasqRules(listing: unknown): { handle: number; comment: string }[] {
  const items = (listing as { nftables?: unknown[] } | undefined)?.nftables ?? [];
  const out: { handle: number; comment: string }[] = [];
  for (const item of items) {
    const r = (item as { rule?: { handle?: unknown; comment?: unknown } }).rule;
    if (r && typeof r.handle === "number" && typeof r.comment === "string") {
      out.push({ handle: r.handle, comment: r.comment });
    }
  }
  return out;
}

/** For logs and status: the plan in words. */
export function describePlan(plan: MasqueradePlan): string {
  const ranges = plan.exempt.map(([lo, hi]) =>
    lo === hi ? formatIpv4(lo) : `${formatIpv4(lo)}-${formatIpv4(hi)}`
  );
  return `from ${plan.local.map(formatCidr).join(", ")} except to ${ranges.join(", ")}`;
}
