// Names for a datapath event: the pod each address is, and the policies the engine says
// decided it, judged on the model the maps were last written from (what the datapath
// enforced). Answers are cached per flow (addresses, not identity pairs: an ipBlock can tell
// two addresses of one identity apart, pods' addresses too) until the model changes, the
// least recently used forgotten first; and judging is rationed (a port scan is a new flow per
// packet), past which a record names the pods only. Pure.
import { type DatapathEvent } from "../spec/bpf_layout.ts";
import { IPPROTO } from "../spec/rule_key.ts";
import { evaluate, type FlowEnd, indexModel, type Model, type Protocol } from "../netpol/mod.ts";
import { type FlowNames, type PodName, reasonOf } from "./flow_record.ts";

const PROTOCOLS: Record<number, Protocol> = {
  [IPPROTO.tcp]: "TCP",
  [IPPROTO.udp]: "UDP",
  [IPPROTO.sctp]: "SCTP",
};

/** Bounds the cache (a scan of many addresses must not grow the agent without end). */
const MAX_CACHED = 4096;
/** Flows judged (the engine run) at most per window, on the agent's main thread. */
const JUDGED_PER_WINDOW = 256;
const WINDOW_MS = 100;

/** The names of one event under `model`; `hosts` are the node's addresses. */
export function nameFlow(model: Model, hosts: ReadonlySet<number>, e: DatapathEvent): FlowNames {
  const names = podNames(model, e);
  const policies = decidingPolicies(model, hosts, e);
  if (policies) names.policies = policies;
  return names;
}

/** The pods at each end (a lookup: no judging). */
function podNames(model: Model, e: DatapathEvent): FlowNames {
  const { podByIp } = indexModel(model);
  const podName = (ip: number): PodName | undefined => {
    const pod = podByIp.get(ip);
    return pod && { namespace: pod.namespace, pod: pod.name };
  };
  const names: FlowNames = {};
  const src = podName(e.saddr);
  const dst = podName(e.daddr);
  if (src) names.src = src;
  if (dst) names.dst = dst;
  return names;
}

function decidingPolicies(
  model: Model,
  hosts: ReadonlySet<number>,
  e: DatapathEvent,
): string[] | undefined {
  const reason = reasonOf(e);
  const protocol = PROTOCOLS[e.proto];
  // Only the verdicts the engine judges: a drop by a direction's isolation, or an allow by
  // rules (an allow of another protocol than the engine's three has no port to judge).
  const judged = reason === "drop_ingress" || reason === "drop_egress" ||
    (reason === "allow" && protocol !== undefined);
  if (!judged) return undefined;
  // The node as a source is the engine's `node` (always allowed in); as a destination, an
  // address (ipBlocks can hold it, as the datapath's CIDR lookup does).
  const src: FlowEnd = hosts.has(e.saddr) ? { kind: "node" } : { kind: "ip", ip: e.saddr };
  const decision = evaluate(model, {
    src,
    dst: { kind: "ip", ip: e.daddr },
    // Isolation does not depend on the port: a drop of another protocol is still named.
    protocol: protocol ?? "TCP",
    port: e.dport,
  });
  if (reason === "allow") {
    const by = [...decision.egress.allowedBy, ...decision.ingress.allowedBy].map((r) => r.policy);
    return decision.allowed ? [...new Set(by)].sort() : undefined;
  }
  const side = reason === "drop_ingress" ? decision.ingress : decision.egress;
  // The engine no longer isolates that side (the model changed since): it cannot name them.
  return side.isolatedBy.length > 0 ? side.isolatedBy : undefined;
}

export interface FlowNamerOptions {
  maxCached?: number;
  judgedPerWindow?: number;
  windowMs?: number;
  now?: () => number;
}

/** nameFlow with answers kept per flow for as long as the model is the same object. */
export class FlowNamer {
  #model: Model | undefined;
  readonly #cache = new Map<string, FlowNames>();
  readonly #max: number;
  readonly #budget: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  #windowStart = -Infinity;
  #judged = 0;

  constructor(o: FlowNamerOptions = {}) {
    this.#max = o.maxCached ?? MAX_CACHED;
    this.#budget = o.judgedPerWindow ?? JUDGED_PER_WINDOW;
    this.#windowMs = o.windowMs ?? WINDOW_MS;
    this.#now = o.now ?? Date.now;
  }

  names(model: Model, hosts: ReadonlySet<number>, e: DatapathEvent): FlowNames {
    if (model !== this.#model) {
      this.#cache.clear();
      this.#model = model;
    }
    const key = `${e.saddr} ${e.daddr} ${e.proto} ${e.dport} ${e.verdict} ${e.reason}`;
    let names = this.#cache.get(key);
    if (names !== undefined) {
      // Most recently used last: the first key is the one to forget.
      this.#cache.delete(key);
      this.#cache.set(key, names);
      return names;
    }
    const now = this.#now();
    if (now - this.#windowStart >= this.#windowMs) {
      this.#windowStart = now;
      this.#judged = 0;
    }
    if (this.#judged >= this.#budget) {
      // Over the ration: the pods only (cheap), not kept, so a later event is judged.
      return podNames(model, e);
    }
    this.#judged++;
    names = nameFlow(model, hosts, e);
    if (this.#cache.size >= this.#max) this.#cache.delete(this.#cache.keys().next().value!);
    this.#cache.set(key, names);
    return names;
  }
}
