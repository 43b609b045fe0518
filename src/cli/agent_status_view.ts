// `agent status` as text. Pure.
import type { AgentStatus, NodeStatus, NotEnforced } from "../agent/agent_core.ts";
import { describeWait } from "../agent/rule_ledger.ts";
import type { RoutingStatus } from "../agent/routing.ts";

/** One line per policy not enforced as written: which, its pods, the room it needs. */
export function notEnforcedLine(w: NotEnforced): string {
  const more = w.podCount > w.pods.length ? ` and ${w.podCount - w.pods.length} more` : "";
  const pods = w.podCount === 0 ? "no pods" : `pods ${w.pods.join(", ")}${more}`;
  return `${w.policy} (#${w.place} in line since ${w.since}; selects ${pods}): ${describeWait(w)}`;
}

/** One line per node: name, pod CIDR, address, routing state. */
export function nodeLine(n: NodeStatus): string {
  const cidr = n.podCidrs.length === 0 ? "no pod CIDR" : n.podCidrs.join(",");
  const routing = n.routing.routed
    ? n.routing.via === "this node" ? "this node" : `routed via ${n.routing.via}`
    : `not routed: ${n.routing.reason}`;
  return `${n.name}${n.self ? " (this node)" : ""}  ${cidr}  ${
    n.address ?? "no address"
  }  ${routing}`;
}

/** The routing mode, how many remote nodes it routes, and (`perNode`: when no node lines say
 * it) why each other one is not. */
export function routingLines(r: RoutingStatus, perNode = true): string[] {
  const mode = r.vxlan ? `vxlan (UDP ${r.vxlan.port}, VNI ${r.vxlan.vni})` : r.mode;
  const remote = Object.entries(r.nodes).filter(([, s]) => !(s.routed && s.via === "this node"));
  const routed = remote.filter(([, s]) => s.routed).length;
  const lines = [`routing:      ${mode}, ${routed} of ${remote.length} remote node(s) routed`];
  if (perNode) {
    for (const [name, s] of remote) if (!s.routed) lines.push(`not routed:   ${name}: ${s.reason}`);
  }
  for (const e of r.lastPass?.errors ?? []) lines.push(`route refused: ${e}`);
  return lines;
}

export function renderStatus(s: AgentStatus): string {
  const e = s.entries;
  const last = s.lastReconcile;
  const lines = [
    `source:       ${
      s.synced ? "synced" : "not synced yet"
    } (generation ${s.generation}, applied ${s.appliedGeneration})`,
    `node:         ${s.node}`,
    `model:        ${s.namespaces} namespace(s), ${s.pods} pod(s), ${s.policies} polic${
      s.policies === 1 ? "y" : "ies"
    }`,
    `attachments:  ${s.attachments} on this node`,
    `entries:      ipcache ${e.ipcache}, isolation ${e.isolation}, rules ${e.rules}, cidrs ${e.cidrs}, hosts ${e.hosts}`,
    `last reconcile: ${
      last === null
        ? "none yet"
        : `${last.at}, ${last.ms.toFixed(1)} ms, ${last.writes} write(s), ${last.failed} failed`
    }`,
  ];
  if (s.cni !== undefined) {
    const by = Object.entries(s.cni.handled).map(([c, n]) =>
      `${c} ${n}${s.cni!.lastMs[c] === undefined ? "" : ` (last ${s.cni!.lastMs[c]} ms)`}`
    ).join(", ");
    lines.push(`cni calls:    ${by || "none"} handled here, ${s.cni.declined} declined`);
  }
  // An agent older than the rule_map ledger does not say.
  const notEnforced = s.notEnforced ?? [];
  const n = notEnforced.length;
  lines.push(
    `enforced:     ${
      n === 0
        ? "every policy"
        : `NOT ${n} polic${n === 1 ? "y" : "ies"} (rule_map full; their pods are isolated)`
    }`,
  );
  for (const w of notEnforced) lines.push(`not enforced: ${notEnforcedLine(w)}`);
  if (s.flowLog !== undefined) {
    const f = s.flowLog;
    lines.push(
      `flow log:     ${f.path}, ${f.written} line(s) written, ${f.dropped} dropped, ` +
        `${f.rotations} rotation(s)` +
        (f.error === undefined ? "" : `; NOT WRITING: the events are not read: ${f.error}`),
    );
  }
  if (s.revocation !== undefined) {
    const r = s.revocation;
    const pass = r.last === null
      ? "no pass yet"
      : `last pass ${r.last.at}, ${
        r.last.ms.toFixed(1)
      } ms, ${r.last.checked} checked, ${r.last.ended} ended`;
    lines.push(
      `connections:  ${
        r.mode === "revoke" ? "revoked when no longer allowed" : "established ones kept"
      }; ended ${r.ended.denied} denied, ${r.ended["identity-changed"]} identity changed; ${pass}`,
    );
  }
  if (s.metricsAddress !== undefined) {
    lines.push(
      `metrics:      ${s.metricsAddress === null ? "off" : `http://${s.metricsAddress}/metrics`}`,
    );
  }
  if (s.masquerade !== undefined) {
    const m = s.masquerade;
    lines.push(
      `masquerade:   ${
        m === null
          ? "off"
          : m.state === "applied"
          ? `table ip ebpfcni, ${m.rules}`
          : m.state === "waiting"
          ? `waiting: ${m.reason}`
          : `not applied: ${m.error}`
      }`,
    );
  }
  if (s.routing !== undefined) lines.push(...routingLines(s.routing, (s.nodes ?? []).length === 0));
  lines.push(`nodes:        ${(s.nodes ?? []).length}`);
  for (const node of s.nodes ?? []) {
    lines.push(`node:         ${nodeLine(node)}`);
    for (const p of node.problems) lines.push(`node problem: ${p}`);
  }
  for (const f of s.failed) lines.push(`refused entry: ${f}`);
  for (const p of s.problems) lines.push(`problem: ${p}`);
  if (s.problemsNotShown > 0) lines.push(`problems not shown: ${s.problemsNotShown}`);
  return lines.join("\n") + "\n";
}
