// The agent's routing loop: whenever the node set changes (and every resync, to repair
// drift), the routing plan is applied in the agent's network namespace (src/routing/), and
// each node's state kept for `agent status`. Synchronous netlink on the main thread: the
// namespace belongs to the thread.
import type { NodeRouteState, NodeSource } from "../spec/node.ts";
import type { RoutingMode } from "../spec/routing.ts";
import { NetlinkSocket } from "../net/socket.ts";
import { applyRouting } from "../routing/apply.ts";
import { enableForwarding } from "../routing/forwarding.ts";
import type { AgentLog } from "../log.ts";
import { attach, attachedProgramId } from "../datapath/tc.ts";
import { PROGRAM_PROCESS_TC_TO_NODE } from "../spec/bpf_abi.gen.ts";

export interface RoutingOptions {
  mode: RoutingMode;
  /** This node's name. */
  node: string;
  vxlan: { port: number; vni: number };
  /** How often the entries are checked again without a change (drift repair). */
  resyncMs: number;
  log: AgentLog;
  /** The classifier judging this node's pods' egress as it leaves for another node
   * (process_tc_to_node), attached on tc egress of every device routing carries it on. */
  toNode?: { fd: number };
}

export interface RoutingStatus {
  mode: RoutingMode;
  /** vxlan mode's UDP port and VNI. */
  vxlan?: { port: number; vni: number };
  nodes: Record<string, NodeRouteState>;
  /** When the last pass ended (ms since the epoch), and what it wrote. */
  lastPass: { at: number; writes: number; errors: string[] } | null;
}

export interface Routing {
  /** A node's state after the last pass (undefined: not known to routing yet). */
  state(name: string): NodeRouteState | undefined;
  status(): RoutingStatus;
  /** Runs a pass now (also what a change triggers). */
  reconcile(): void;
  stop(): void;
}

const sameState = (a: NodeRouteState | undefined, b: NodeRouteState) =>
  a !== undefined && a.routed === b.routed &&
  (a.routed ? a.via === (b as { via: string }).via : a.reason === (b as { reason: string }).reason);

/** Attaches the to-node classifier where none of ours is: one already there (this build's or,
 * during a live upgrade, the one the loader moves to the new build) is left as it is. */
function attachToNode(nl: NetlinkSocket, fd: number, devices: number[], log: AgentLog): void {
  for (const ifindex of devices) {
    try {
      if (attachedProgramId(nl, ifindex, "egress") !== 0) continue;
      attach(nl, ifindex, "egress", fd, PROGRAM_PROCESS_TC_TO_NODE);
      log.info("pods' egress to other nodes judged on the device", { ifindex });
    } catch (err) {
      log.error("cannot attach the to-node classifier", { ifindex, error: String(err) });
    }
  }
}

export function startRouting(source: NodeSource, o: RoutingOptions): Routing {
  const nl = new NetlinkSocket();
  let states = new Map<string, NodeRouteState>();
  let lastPass: RoutingStatus["lastPass"] = null;
  let stopped = false;
  let pending: ReturnType<typeof setTimeout> | undefined;
  let forwardError: string | undefined;
  let waiting = false;
  // Once this node is among the nodes (an agent whose node the source does not know changes
  // nothing of its namespace); checked again every pass, as something may turn it off.
  const forward = () => {
    try {
      if (enableForwarding()) o.log.info("IPv4 forwarding enabled");
      forwardError = undefined;
    } catch (err) {
      if (forwardError !== String(err)) {
        o.log.error("cannot enable IPv4 forwarding", { error: String(err) });
      }
      forwardError = String(err);
    }
  };

  const reconcile = () => {
    if (stopped) return;
    const nodes = source.nodes();
    if (!nodes.has(o.node)) {
      // Not known yet (a source still listing, after a restart): the kernel keeps what the
      // last agent left, rather than losing every route until this node shows up.
      const reason = `this node ${JSON.stringify(o.node)} is not among the nodes yet`;
      if (!waiting) o.log.warn("routing waits for this node's Node object", { node: o.node });
      waiting = true;
      states = new Map([...nodes.keys()].map((n) => [n, { routed: false, reason }]));
      return;
    }
    waiting = false;
    // With none, whatever routes the pod CIDRs (BGP, the cloud) owns forwarding too.
    if (o.mode !== "none") forward();
    let result;
    try {
      result = applyRouting(nl, { mode: o.mode, self: o.node, nodes, vxlan: o.vxlan });
    } catch (err) {
      o.log.error("routing pass failed", { error: String(err) });
      return;
    }
    for (const [name, s] of result.states) {
      if (sameState(states.get(name), s)) continue;
      if (s.routed) o.log.info("node routed", { node: name, via: s.via });
      else o.log.warn("node not routed", { node: name, reason: s.reason });
    }
    for (const name of states.keys()) {
      if (!result.states.has(name)) o.log.info("node gone: its routes removed", { node: name });
    }
    for (const e of result.errors) o.log.warn("routing write refused", { error: e });
    if (o.toNode) attachToNode(nl, o.toNode.fd, result.devices, o.log);
    states = result.states;
    lastPass = { at: Date.now(), writes: result.writes, errors: result.errors };
  };
  // A burst of node events makes one pass.
  source.onChange(() => {
    if (pending !== undefined || stopped) return;
    pending = setTimeout(() => {
      pending = undefined;
      reconcile();
    }, 5);
  });
  reconcile();
  const resync = setInterval(reconcile, o.resyncMs);
  return {
    state: (name) => states.get(name),
    status: () => ({
      mode: o.mode,
      ...(o.mode === "vxlan" ? { vxlan: o.vxlan } : {}),
      nodes: Object.fromEntries(states),
      lastPass,
    }),
    reconcile,
    stop() {
      stopped = true;
      clearInterval(resync);
      if (pending !== undefined) clearTimeout(pending);
      nl.close();
    },
  };
}
