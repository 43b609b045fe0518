// The upstream NetworkPolicy cases (src/netpol/testdata) run on real traffic against any
// cluster of pods: one node's (test/agent_matrix_test.ts) or several nodes'
// (test/cluster_matrix_test.ts). Each case's objects go to the agents' manifests; after every
// agent has applied them, every cell of the case's expected matrix is probed through the pod
// IPs and through the Service IPs. SCTP probes are left out: this kernel has no SCTP.
import assert from "node:assert/strict";
import type { Pod } from "./_pods.ts";
import { type Probe, probeUntil } from "./_traffic.ts";
import type { AgentStatusJson } from "./_agent.ts";
import { baseCluster, casePods } from "../src/netpol/testdata/upstream_cases.ts";
import { expectedMatrix } from "../src/netpol/testdata/reachability.ts";
import type { CaseEnv, UpstreamCase } from "../src/netpol/testdata/format.ts";

/** What a case needs of a cluster: its objects, its agents and its pods. */
export interface MatrixTarget {
  apply(obj: unknown): void;
  delete(ref: { kind: string; namespace?: string; name: string }): void;
  clear(kind: string): void;
  /** Every agent's status once it has applied what was written. */
  synced(): Promise<AgentStatusJson[]>;
  pods: Map<string, Pod>;
  env: CaseEnv;
  vip(pod: string): string;
}

/** Back to the base cluster: no policies, every namespace and pod as created. */
export function reset(c: MatrixTarget): void {
  c.clear("NetworkPolicy");
  for (const o of baseCluster(c.env)) c.apply(o);
}

/** Applies every step of `uc` and probes its matrix; the cells that differ, and the probes
 * left out. */
export async function runCase(
  c: MatrixTarget,
  uc: UpstreamCase,
  sport?: (from: string, to: string, via: string, proto: string, port: number) => number,
): Promise<{ wrong: string[]; skipped: string[] }> {
  reset(c);
  const wrong: string[] = [];
  const skipped: string[] = [];
  for (const [i, step] of uc.steps.entries()) {
    for (const ref of step.delete) c.delete(ref);
    for (const obj of step.apply) c.apply(obj);
    for (const st of await c.synced()) {
      assert.deepEqual(st.problems.filter((p) => !p.includes("also in")), [], "source problems");
    }
    for (const probe of step.probes) {
      if (probe.protocol === "SCTP") {
        skipped.push(`step ${i + 1}: SCTP/${probe.port} (no SCTP in this kernel)`);
        continue;
      }
      const proto = probe.protocol === "TCP" ? "tcp" : "udp";
      const want = expectedMatrix(casePods(), probe.expect);
      const cells: { cell: string; via: string; want: boolean }[] = [];
      const probes: Probe[] = [];
      for (const [cell, expected] of want) {
        const [from = "", to = ""] = cell.split("->");
        if (from === to) continue;
        for (const via of ["pod", "service"] as const) {
          const dst = via === "pod" ? c.pods.get(to)!.ip : c.vip(to);
          probes.push({
            from: c.pods.get(from)!.netns,
            to: dst,
            port: probe.port,
            proto,
            ...(sport ? { sport: sport(from, to, via, proto, probe.port) } : {}),
          });
          cells.push({ cell, via, want: expected });
        }
      }
      const got = probeUntil(probes, cells.map((x) => x.want));
      got.forEach((g, k) => {
        const x = cells[k]!;
        if (g !== x.want) {
          wrong.push(
            `step ${i + 1} (${step.description}) ${probe.protocol}/${probe.port} via ${x.via} ` +
              `${x.cell}: want ${x.want ? "allowed" : "denied"}, got ${g ? "allowed" : "denied"}`,
          );
        }
      });
    }
  }
  return { wrong, skipped };
}
