// What the agent makes of the cluster's Node objects before routing and IPAM use them: a pod
// CIDR that two nodes claim, or that overlaps a Service CIDR, is withheld (from every node
// claiming it: routing it to either node, or handing out its addresses on either, would send
// some pods' traffic to the wrong place); a node without a pod CIDR or an address is kept but
// reported (the controller-manager assigns a CIDR after the node registers). Each problem
// names the Node and the field. Pure.
import { type Cidr, cidrContains, formatCidr } from "../spec/ipv4.ts";
import type { ClusterNode } from "../spec/node.ts";

export interface NodeCheck {
  /** Every node, with the CIDRs it may use (none withheld ones). */
  nodes: Map<string, ClusterNode>;
  /** What is wrong with each node that has a problem, by name. */
  problems: Map<string, string[]>;
}

function overlap(a: Cidr, b: Cidr): boolean {
  return cidrContains(a, b.network) || cidrContains(b, a.network);
}

export function checkNodes(
  nodes: ReadonlyMap<string, ClusterNode>,
  serviceCidrs: readonly Cidr[],
): NodeCheck {
  const problems = new Map<string, string[]>();
  const report = (name: string, field: string, detail: string) => {
    const list = problems.get(name) ?? [];
    list.push(`Node ${JSON.stringify(name)}: ${field}: ${detail}`);
    problems.set(name, list);
  };
  const sorted = [...nodes.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  const withheld = new Map<string, Set<number>>(); // node -> indexes of its withheld CIDRs
  const withhold = (name: string, i: number) =>
    withheld.set(name, (withheld.get(name) ?? new Set()).add(i));
  for (const [ai, a] of sorted.entries()) {
    a.podCidrs.forEach((c, i) => {
      const svc = serviceCidrs.find((s) => overlap(s, c));
      if (svc !== undefined) {
        report(
          a.name,
          "spec.podCIDRs",
          `${formatCidr(c)} overlaps the Service CIDR ${formatCidr(svc)}: withheld ` +
            "(not routed, no pod addresses from it)",
        );
        withhold(a.name, i);
      }
      for (const b of sorted.slice(ai + 1)) {
        b.podCidrs.forEach((d, j) => {
          if (!overlap(c, d)) return;
          const why = (other: string, mine: Cidr, theirs: Cidr) =>
            `${formatCidr(mine)} overlaps Node ${JSON.stringify(other)}'s ${
              formatCidr(theirs)
            }: withheld from both (not routed, no pod addresses from it)`;
          report(a.name, "spec.podCIDRs", why(b.name, c, d));
          report(b.name, "spec.podCIDRs", why(a.name, d, c));
          withhold(a.name, i);
          withhold(b.name, j);
        });
      }
    });
  }
  const out = new Map<string, ClusterNode>();
  for (const n of sorted) {
    if (n.podCidrs.length === 0) {
      report(n.name, "spec.podCIDRs", "no IPv4 pod CIDR assigned (yet): not routed");
    }
    if (n.address === undefined) {
      report(n.name, "status.addresses", "no IPv4 InternalIP or ExternalIP: not routed");
    }
    const skip = withheld.get(n.name);
    const node: ClusterNode = {
      ...n,
      podCidrs: skip === undefined ? [...n.podCidrs] : n.podCidrs.filter((_, i) => !skip.has(i)),
    };
    out.set(n.name, node);
  }
  return { nodes: out, problems };
}
