// Upstream's expected-reachability semantics (test/e2e/network/netpol/reachability.go and
// truthtable.go): a truth table over every ordered pod pair, filled with the default, then
// each Expect operation overwrites its cells in order, so a later operation wins. A pod
// probing itself is left out, as upstream ignores loopback when it compares.
import type { ExpectOp, PeerSel, PodName, Reachability } from "./format.ts";

/** Thrown for an operation upstream would fail on (framework.Failf): an unknown pod, or a
 * pod name that is not "namespace/name". */
export class ReachabilityError extends Error {
  override name = "ReachabilityError";
}

/** The expected verdict of every `from->to` pair of distinct pods, keyed "x/a->y/b", in
 * `pods` order (from outer, to inner). */
export function expectedMatrix(pods: PodName[], r: Reachability): Map<string, boolean> {
  const table = new Map<PodName, Map<PodName, boolean>>();
  for (const from of pods) {
    splitPod(from);
    table.set(from, new Map(pods.map((to) => [to, r.default])));
  }
  for (const op of r.ops) applyOp(table, pods, op);

  const out = new Map<string, boolean>();
  for (const [from, row] of table) {
    for (const [to, connected] of row) {
      if (from !== to) out.set(`${from}->${to}`, connected);
    }
  }
  return out;
}

function applyOp(table: Map<PodName, Map<PodName, boolean>>, pods: PodName[], op: ExpectOp) {
  const row = (from: PodName): Map<PodName, boolean> => {
    const found = table.get(from);
    if (found === undefined) throw unknownPod(op.op, from);
    return found;
  };
  const checkTo = (to: PodName) => {
    if (!table.has(to)) throw unknownPod(op.op, to);
  };
  switch (op.op) {
    case "expect": {
      const r = row(op.from);
      checkTo(op.to);
      r.set(op.to, op.connected);
      return;
    }
    case "expectAllIngress":
      // TruthTable.SetAllTo: the pod's column, every source including itself.
      checkTo(op.pod);
      for (const from of pods) row(from).set(op.pod, op.connected);
      return;
    case "expectAllEgress": {
      // TruthTable.SetAllFrom: the pod's row, every destination including itself.
      const r = row(op.pod);
      for (const to of pods) r.set(to, op.connected);
      return;
    }
    case "expectPeer":
      for (const from of pods) {
        if (!peerMatches(op.from, from)) continue;
        for (const to of pods) {
          if (peerMatches(op.to, to)) row(from).set(to, op.connected);
        }
      }
      return;
  }
}

/** Peer.Matches: an absent (or empty, as Go's zero value) field matches every pod. */
export function peerMatches(peer: PeerSel, pod: PodName): boolean {
  const [namespace, name] = splitPod(pod);
  const nsOk = peer.namespace === undefined || peer.namespace === "" ||
    peer.namespace === namespace;
  const podOk = peer.pod === undefined || peer.pod === "" || peer.pod === name;
  return nsOk && podOk;
}

function splitPod(pod: PodName): [string, string] {
  const pieces = pod.split("/");
  if (pieces.length !== 2) {
    throw new ReachabilityError(`Cannot parse pod name "${pod}": expected namespace/pod`);
  }
  return [pieces[0] ?? "", pieces[1] ?? ""];
}

function unknownPod(op: string, pod: PodName): ReachabilityError {
  return new ReachabilityError(`Unknown pod "${pod}" in ${op}: not one of the reachability's pods`);
}
