// The CNI side of the agent's socket (kubernetes mode): ADD asks the agent for the pod's
// identity before the pod's interface is up (the agent writes the pod's ipcache entry and
// whatever its policies need first, so the pod is isolated from its first packet); DEL
// tells it, best effort. One JSON request, one JSON reply, per connection.
import { CniError, ErrCode } from "../spec/cni.ts";
import { ROUTING_MODES, type RoutingMode } from "../spec/routing.ts";
import { errorMessage, quote } from "../spec/text.ts";
import { requestLine, RpcError } from "../net/unix_rpc.ts";

export type { AddRequest as AgentAdd, DelRequest as AgentDel } from "../spec/agent_wire.ts";
import type {
  AddRequest as AgentAdd,
  DelRequest as AgentDel,
  PodCidrRequest,
} from "../spec/agent_wire.ts";
import { type Cidr, parseCidr } from "../spec/ipv4.ts";

/** How long ADD waits for the agent to answer (it may wait for the pod to show up in its
 * source first). */
export const AGENT_TIMEOUT_MS = 10_000;

async function exchange(socket: string, req: unknown, timeoutMs: number): Promise<unknown> {
  try {
    return await requestLine(socket, req, timeoutMs);
  } catch (err) {
    if (!(err instanceof RpcError)) throw err;
    const message = err.kind === "unreachable"
      ? `The policy agent is not reachable on ${quote(socket)}: is "ebpfcni agent run" running?`
      : err.kind === "timeout"
      ? `The policy agent on ${quote(socket)} did not answer within ${timeoutMs / 1000} s`
      : `The policy agent on ${quote(socket)} failed to answer`;
    throw new CniError(ErrCode.TryAgainLater, message, err.message, { cause: err });
  }
}

/** The identity the agent gives the pod; code 11 when it is unreachable, or does not know
 * the pod in time. */
export async function agentIdentity(
  socket: string,
  req: AgentAdd,
  timeoutMs = AGENT_TIMEOUT_MS,
): Promise<number> {
  const reply = await exchange(socket, req, timeoutMs) as { identity?: unknown; error?: unknown };
  if (typeof reply?.identity === "number") return reply.identity;
  const why = typeof reply?.error === "string" ? reply.error : "no identity in its answer";
  throw new CniError(
    ErrCode.TryAgainLater,
    `The policy agent refused pod ${quote(`${req.namespace}/${req.name}`)}: ${why}`,
  );
}

/** Tells the agent the attachment is gone; never fails (DEL must not depend on the agent). */
export async function agentForget(socket: string, req: AgentDel): Promise<string | undefined> {
  try {
    await exchange(socket, req, 2_000);
    return undefined;
  } catch (err) {
    return errorMessage(err);
  }
}

/** This node's pod CIDR as the agent knows it from the node's Node object ("subnet":
 * "usePodCidr"); code 11 when the agent is unreachable or has none to give. */
export async function agentPodCidr(
  socket: string,
  timeoutMs = AGENT_TIMEOUT_MS,
): Promise<{ cidr: Cidr; routing?: RoutingMode }> {
  const req: PodCidrRequest = { op: "podcidr" };
  const reply = await exchange(socket, req, timeoutMs) as {
    podCidr?: unknown;
    routing?: unknown;
    error?: unknown;
  };
  if (typeof reply?.podCidr === "string") {
    // An older agent does not say how it routes.
    const routing = ROUTING_MODES.find((m) => m === reply.routing);
    try {
      return { cidr: parseCidr(reply.podCidr), ...(routing === undefined ? {} : { routing }) };
    } catch (err) {
      throw new CniError(ErrCode.TryAgainLater, `The policy agent gave a bad pod CIDR: ${err}`);
    }
  }
  const why = typeof reply?.error === "string" ? reply.error : "no pod CIDR in its answer";
  throw new CniError(ErrCode.TryAgainLater, `No pod CIDR for this node: ${why}`);
}
