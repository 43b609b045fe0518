// The model as this node enforces it: which pods are local, and the addresses the datapath
// knows them by. A pod's addresses are its status.podIPs where given, except that a pod
// attached here is known by its CNI attachments' addresses (what the datapath holds: the
// status lags behind ADD), and an address attached here belongs to the attached pod only (a
// deleted pod's status may still name an address being reused). A pod is local when it is
// attached here, or the source says it is scheduled on this node. Pure.
import { type Model, objectKey, type Pod } from "../netpol/mod.ts";

/** One CNI attachment of this node (a pod's interface). */
export interface Attachment {
  containerId: string;
  ifname: string;
  namespace: string;
  name: string;
  /** IPv4, host order. */
  ips: number[];
}

export function attachmentKey(a: { containerId: string; ifname: string }): string {
  return `${a.containerId}/${a.ifname}`;
}

export interface LocalView {
  model: Model;
  isLocal(pod: Pod): boolean;
  /** Every attached address (kept in ipcache_map even when the source no longer shows the
   * pod: DEL removes them). */
  attached: Set<number>;
}

export function localView(
  model: Model,
  attachments: Iterable<Attachment>,
  node: string,
): LocalView {
  const byPod = new Map<string, number[]>();
  const attached = new Set<number>();
  for (const a of attachments) {
    const key = objectKey(a.namespace, a.name);
    const list = byPod.get(key) ?? [];
    for (const ip of a.ips) {
      if (!list.includes(ip)) list.push(ip);
      attached.add(ip);
    }
    byPod.set(key, list);
  }
  const onNode = (pod: Pod) => pod.node === node;
  const pods = new Map<string, Pod>();
  for (const [key, pod] of model.pods) {
    const mine = byPod.get(key);
    if (mine !== undefined) pods.set(key, { ...pod, ips: [...mine].sort((a, b) => a - b) });
    else if (pod.ips.some((ip) => attached.has(ip))) {
      // A pod whose (stale) status names an address attached here: the attachment wins.
      pods.set(key, { ...pod, ips: pod.ips.filter((ip) => !attached.has(ip)) });
    } else pods.set(key, pod);
  }
  return {
    model: { ...model, pods },
    isLocal: (pod) => byPod.has(objectKey(pod.namespace, pod.name)) || onNode(pod),
    attached,
  };
}
