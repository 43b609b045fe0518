import assert from "node:assert/strict";
import { AgentMetrics, type MetricSources } from "./metrics.ts";
import { STAT_NAMES } from "../spec/bpf_layout.ts";

function sources(over: Partial<MetricSources> = {}): MetricSources {
  return {
    source: "manifests",
    stats: () => ({ drop_ingress: 7n, allow_ct: 3n, events_lost: 2n }),
    maps: () => [{ map: "rule_map", entries: 32768, capacity: 131072 }],
    model: () => ({
      synced: true,
      pods: 4,
      namespaces: 2,
      policies: 1,
      attachments: 3,
      identities: { pod: 2, cidr: 1 },
    }),
    process: () => ({ cpuSeconds: 1.5, residentBytes: 1e6, heapBytes: 5e5, startTimeSeconds: 9 }),
    ...over,
  };
}

function sample(text: string, series: string): string | undefined {
  return text.split("\n").find((l) => l.startsWith(`${series} `))?.slice(series.length + 1);
}

Deno.test("every stats_map counter but events_lost is a verdict and reason; drops repeat by reason", () => {
  const m = new AgentMetrics(sources());
  const t = m.render();
  assert.equal(
    sample(t, 'ebpfcni_datapath_packets_total{verdict="drop",reason="ingress"}'),
    "7",
  );
  assert.equal(
    sample(t, 'ebpfcni_datapath_packets_total{verdict="allow",reason="ct"}'),
    "3",
  );
  assert.equal(sample(t, 'ebpfcni_datapath_drops_total{reason="ingress"}'), "7");
  assert.equal(sample(t, "ebpfcni_datapath_events_lost_total"), "2");
  assert.equal(sample(t, 'ebpfcni_map_fill_ratio{map="rule_map"}'), "0.25");
  const packets = t.split("\n").filter((l) => l.startsWith("ebpfcni_datapath_packets_total{"));
  assert.equal(packets.length, STAT_NAMES.length - 1);
});

Deno.test("a reconcile counts written and removed apart, refusals by map, and the delay by source", () => {
  const m = new AgentMetrics(sources());
  m.reconciled({
    ms: 4,
    writes: 10,
    removed: 3,
    failed: ["rule_map: No space left", "weird"],
    retry: false,
    enforcedAfterMs: undefined,
  });
  m.reconciled({ ms: 2, writes: 2, removed: 0, failed: [], retry: true, enforcedAfterMs: 250 });
  const t = m.render();
  assert.equal(sample(t, "ebpfcni_map_entries_written_total"), "9");
  assert.equal(sample(t, "ebpfcni_map_entries_removed_total"), "3");
  assert.equal(sample(t, 'ebpfcni_map_writes_refused_total{map="rule_map"}'), "1");
  assert.equal(sample(t, 'ebpfcni_map_writes_refused_total{map="other"}'), "1");
  assert.equal(sample(t, "ebpfcni_reconcile_retries_total"), "1");
  assert.equal(sample(t, "ebpfcni_reconcile_runs_total"), "2");
  assert.equal(
    sample(t, 'ebpfcni_policy_enforce_delay_seconds_bucket{source="manifests",le="0.25"}'),
    "1",
  );
  assert.equal(
    sample(t, 'ebpfcni_policy_enforce_delay_seconds_bucket{source="manifests",le="0.1"}'),
    "0",
  );
});

Deno.test("the source's health and its second lists and watches are counted; first ones are not", () => {
  const m = new AgentMetrics(sources());
  assert.equal(sample(m.render(), "ebpfcni_source_up"), "0");
  m.sourceHealth(true);
  m.sourceRequest("pods", "list", false);
  m.sourceRequest("pods", "watch", false);
  m.sourceRequest("pods", "watch", true);
  m.sourceHealth(false);
  const t = m.render();
  assert.equal(sample(t, "ebpfcni_source_up"), "0");
  assert.equal(sample(t, "ebpfcni_source_errors_total"), "1");
  assert.equal(sample(t, 'ebpfcni_source_watch_restarts_total{resource="pods"}'), "1");
  assert.equal(sample(t, 'ebpfcni_source_relists_total{resource="pods"}'), undefined);
  assert.equal(sample(t, "ebpfcni_source_synced"), "1");
  assert.equal(sample(t, 'ebpfcni_objects{kind="attachment"}'), "3");
  assert.equal(sample(t, 'ebpfcni_identities{kind="cidr"}'), "1");
});
