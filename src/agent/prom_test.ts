import assert from "node:assert/strict";
import { formatValue, MetricError, Registry } from "./prom.ts";

function throwsMetric(fn: () => unknown, text = ""): void {
  assert.throws(fn, (e: unknown) => e instanceof MetricError && e.message.includes(text));
}

Deno.test("render() writes HELP, TYPE and one line per series, labels sorted by value", () => {
  const r = new Registry();
  const c = r.counter({ name: "x_packets_total", help: "Packets.", labels: ["reason"] });
  c.inc({ reason: "policy" }, 3);
  c.inc({ reason: "ct" });
  r.gauge({ name: "x_up", help: "Up." }).set({}, 1);
  assert.deepEqual(
    r.render(),
    "# HELP x_packets_total Packets.\n# TYPE x_packets_total counter\n" +
      'x_packets_total{reason="ct"} 1\nx_packets_total{reason="policy"} 3\n' +
      "# HELP x_up Up.\n# TYPE x_up gauge\nx_up 1\n",
  );
});

Deno.test("a histogram's buckets are cumulative, with +Inf, _sum and _count", () => {
  const r = new Registry();
  const h = r.histogram({ name: "x_seconds", help: "T.", labels: ["source"], buckets: [0.1, 1] });
  h.observe({ source: "api" }, 0.05);
  h.observe({ source: "api" }, 0.5);
  h.observe({ source: "api" }, 3);
  assert.deepEqual(
    r.render().split("\n").filter((l) => !l.startsWith("#")),
    [
      'x_seconds_bucket{source="api",le="0.1"} 1',
      'x_seconds_bucket{source="api",le="1"} 2',
      'x_seconds_bucket{source="api",le="+Inf"} 3',
      'x_seconds_sum{source="api"} 3.55',
      'x_seconds_count{source="api"} 3',
      "",
    ],
  );
});

Deno.test("label values and help text are escaped", () => {
  const r = new Registry();
  r.gauge({ name: "x", help: 'a\\b\nc "d"', labels: ["l"] }).set({ l: 'q"\\\n' }, 1);
  assert.deepEqual(
    r.render(),
    '# HELP x a\\\\b\\nc "d"\n# TYPE x gauge\nx{l="q\\"\\\\\\n"} 1\n',
  );
});

Deno.test("special values are written as the format spells them", () => {
  assert.deepEqual([NaN, Infinity, -Infinity, 0.5, 12].map(formatValue), [
    "NaN",
    "+Inf",
    "-Inf",
    "0.5",
    "12",
  ]);
});

Deno.test("label sets past maxSeries fold into one series labelled other", () => {
  const r = new Registry();
  const c = r.counter({ name: "x_total", help: "X.", labels: ["a"], maxSeries: 2 });
  for (let i = 0; i < 10; i++) c.inc({ a: `v${i}` });
  assert.deepEqual(c.size, 3);
  assert.deepEqual(c.get({ a: "other" }), 8);
});

Deno.test("wrong labels, bad names, a counter without _total or going down are refused", () => {
  const r = new Registry();
  const c = r.counter({ name: "x_total", help: "X.", labels: ["a"] });
  throwsMetric(() => c.inc({ b: "1" }), "takes labels [a], not [b]");
  throwsMetric(() => c.inc({}));
  throwsMetric(() => c.inc({ a: "1" }, -1), "cannot go down");
  throwsMetric(() => r.counter({ name: "x", help: "" }), "must end in _total");
  throwsMetric(() => r.gauge({ name: "1x", help: "" }), "Invalid metric name");
  throwsMetric(() => r.gauge({ name: "y", help: "", labels: ["le"] }));
  throwsMetric(() => r.counter({ name: "x_total", help: "" }), "registered twice");
  throwsMetric(() => r.histogram({ name: "h", help: "", buckets: [1, 1] }), "increasing");
});

Deno.test("collectors run before each render; one that throws is reported, the rest render", () => {
  const r = new Registry();
  const g = r.gauge({ name: "x", help: "X." });
  let n = 0;
  r.collect(() => g.set({}, ++n));
  r.collect(() => {
    throw new Error("boom");
  });
  const errors: unknown[] = [];
  r.render((e) => errors.push(e));
  assert.deepEqual(r.render((e) => errors.push(e)).endsWith("x 2\n"), true);
  assert.deepEqual(errors.length, 2);
});
