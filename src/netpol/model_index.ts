// Lookups over a Model that evaluation needs per flow, built once per Model object (Models are
// snapshots, see model_build.ts) so that judging a flow does not scan every policy and pod.
import { type Model, objectKey, type Pod, type Policy } from "./model.ts";

export interface PolicyEntry {
  key: string;
  policy: Policy;
}

export interface ModelIndex {
  /** Each namespace's policies, sorted by key. */
  policiesByNamespace: ReadonlyMap<string, readonly PolicyEntry[]>;
  /**
   * The pod each IPv4 address is. hostNetwork pods are left out: their addresses are their
   * node's, shared with every other hostNetwork pod there, so such an address is the node.
   * When two pods report one address (a stale status during reuse), the pod with the smaller
   * key ("namespace/name", in UTF-16 code unit order) is chosen, whatever the insertion order.
   */
  podByIp: ReadonlyMap<number, Pod>;
}

const cache = new WeakMap<Model, ModelIndex>();

export function indexModel(model: Model): ModelIndex {
  let index = cache.get(model);
  if (index === undefined) {
    index = buildIndex(model);
    cache.set(model, index);
  }
  return index;
}

function buildIndex(model: Model): ModelIndex {
  const policiesByNamespace = new Map<string, PolicyEntry[]>();
  for (const [key, policy] of model.policies) {
    const list = policiesByNamespace.get(policy.namespace) ?? [];
    list.push({ key, policy });
    policiesByNamespace.set(policy.namespace, list);
  }
  for (const list of policiesByNamespace.values()) list.sort((a, b) => compareKeys(a.key, b.key));

  const podByIp = new Map<number, Pod>();
  for (const pod of model.pods.values()) {
    if (pod.hostNetwork) continue;
    for (const ip of pod.ips) {
      const held = podByIp.get(ip);
      if (held === undefined || compareKeys(podKey(pod), podKey(held)) < 0) podByIp.set(ip, pod);
    }
  }
  return { policiesByNamespace, podByIp };
}

export function podKey(pod: Pod): string {
  return objectKey(pod.namespace, pod.name);
}

/** Code unit order: the same on every machine and locale. */
export function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
