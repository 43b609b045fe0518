// `policy explain` as text: the verdict, then each direction with the policies that isolate
// and the rules that allow, then what the entries in the maps give (the verdict is theirs),
// and the policies deciding it that are not enforced as written. Pure.
import type { Explanation } from "../agent/agent_core.ts";
import { notEnforcedLine } from "./agent_status_view.ts";
import type { DirectionDecision, RuleRef } from "../netpol/model.ts";
import type { SimDirection } from "../netpol/simulate.ts";

function ref(r: RuleRef): string {
  return `${r.policy} ${r.direction} rule ${r.rule}`;
}

function direction(name: string, who: string, d: DirectionDecision): string[] {
  const head = `  ${name} of ${who}: `;
  if (!d.applies) return [`${head}not a policy subject: allowed`];
  if (d.isolatedBy.length === 0) return [`${head}not isolated (no policy selects it): allowed`];
  const lines = [
    `${head}${d.allowed ? "allowed" : "DENIED"}`,
    `    isolated by ${d.isolatedBy.join(", ")}`,
  ];
  if (d.allowedBy.length > 0) lines.push(`    allowed by ${d.allowedBy.map(ref).join(", ")}`);
  else lines.push("    no rule of these policies allows it");
  return lines;
}

function entries(name: string, d: SimDirection): string {
  if (!d.applies) return `    ${name}: not judged`;
  if (!d.isolated) return `    ${name}: not isolated`;
  if (d.matched.length === 0) return `    ${name}: isolated, no rule entry matches: drop`;
  const k = d.matched.map((m) => {
    const key = m.key;
    const l4 = key.proto === 0
      ? "any"
      : key.port === 0
      ? `proto ${key.proto}`
      : `${key.proto}/${key.port}`;
    return `subject ${key.subject} peer ${key.peer} ${l4} (/${key.prefixlen})`;
  });
  return `    ${name}: matched ${k.join("; ")}`;
}

export function renderExplanation(e: Explanation): string {
  const f = e.flow;
  const lines = [
    `${f.from} -> ${f.to} ${f.port}/${f.protocol.toLowerCase()}: ${
      e.allowed ? "ALLOWED" : "DENIED"
    }${
      e.allowed === e.decision.allowed
        ? ""
        : ` by the maps (the policies ${e.decision.allowed ? "allow" : "deny"} it)`
    }`,
    ...direction("egress", f.from, e.decision.egress),
    ...direction("ingress", f.to, e.decision.ingress),
  ];
  if (e.datapath === null) {
    lines.push("  datapath: not simulated (an end without an address)");
  } else {
    const v = e.datapath;
    lines.push(`  datapath (${v.hook} hook): ${v.allowed ? "pass" : "drop"}`);
    lines.push(entries("egress", v.egress), entries("ingress", v.ingress));
    if (v.allowed !== e.decision.allowed && e.notEnforced.length === 0) {
      lines.push("  WARNING: the map entries disagree with the policies (a reconcile pending?)");
    }
  }
  for (const w of e.notEnforced) lines.push(`  NOT ENFORCED as written: ${notEnforcedLine(w)}`);
  return lines.join("\n") + "\n";
}
