// "subnet": "usePodCidr" in the host-local IPAM section: this node's pod CIDR, from the policy
// agent (which reads the node's Node object). A call the agent runs (handed over) asks it
// directly; a plugin process asks it on its socket. Either way, no CIDR is code 11 and the
// call changes nothing.
import { errorMessage } from "../spec/text.ts";
import { CniError, ErrCode } from "../spec/cni.ts";
import { awaitsPodCidr, withPodCidr } from "../ipam/ipam_conf.ts";
import { agentPodCidr } from "./agent_client.ts";
import type { RoutingMode } from "../spec/routing.ts";
import type { Ctx } from "./context.ts";
import { type Cidr, cidrContains, formatCidr } from "../spec/ipv4.ts";

/** Puts this node's pod CIDR into `ctx.conf.ipam` when the config asks for it; returns it,
 * with the agent's routing mode when it says. */
export async function resolvePodCidr(
  ctx: Ctx,
): Promise<{ cidr: Cidr; routing?: RoutingMode } | undefined> {
  const ipam = ctx.conf.ipam;
  if (!ipam.builtIn || !awaitsPodCidr(ipam)) return undefined;
  const ask = ctx.caller?.podCidr;
  let cidr: Cidr;
  let routing: RoutingMode | undefined = ctx.caller?.routing;
  if (ask === undefined) ({ cidr, routing } = await agentPodCidr(ctx.conf.agentSocket));
  else {
    try {
      cidr = await ask();
    } catch (err) {
      throw new CniError(
        ErrCode.TryAgainLater,
        `No pod CIDR for this node: ${errorMessage(err)}`,
        "",
        { cause: err },
      );
    }
  }
  // The agent withholds such a CIDR once it knows the Service CIDRs (from the first ADD's
  // datapath config); this one may be that first ADD.
  const svc = ctx.conf.datapath.mode === "kubernetes"
    ? ctx.conf.datapath.serviceCidrs.find((s) =>
      cidrContains(s, cidr.network) || cidrContains(cidr, s.network)
    )
    : undefined;
  if (svc !== undefined) {
    throw new CniError(
      ErrCode.TryAgainLater,
      `No pod CIDR for this node: its pod CIDR ${formatCidr(cidr)} overlaps the Service CIDR ${
        formatCidr(svc)
      }`,
    );
  }
  ctx.conf = { ...ctx.conf, ipam: withPodCidr(ipam, cidr) };
  return { cidr, ...(routing === undefined ? {} : { routing }) };
}
