// `agent status` as text. Pure.
import type { AgentStatus } from "../agent/agent.ts";

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
  for (const f of s.failed) lines.push(`refused entry: ${f}`);
  for (const p of s.problems) lines.push(`problem: ${p}`);
  if (s.problemsNotShown > 0) lines.push(`problems not shown: ${s.problemsNotShown}`);
  return lines.join("\n") + "\n";
}
