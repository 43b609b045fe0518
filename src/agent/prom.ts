// Metric families and their Prometheus text exposition (format 0.0.4): counters, gauges and
// histograms with declared label names, rendered with `# HELP` / `# TYPE` lines. A family
// holds at most `maxSeries` label sets: further ones are folded into one series whose every
// label is "other", so a bug feeding it unbounded values cannot grow the scrape without end.
// Pure: values read at scrape time are set by collectors the registry runs before rendering.

export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export type Labels = Readonly<Record<string, string>>;
type Type = "counter" | "gauge" | "histogram";

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const RESERVED_LABELS = new Set(["le", "quantile"]);
const DEFAULT_MAX_SERIES = 200;
export const OVERFLOW_VALUE = "other";

export class MetricError extends Error {
  override name = "MetricError";
}

/** A sample value as the format writes it (Go's ParseFloat reads every one of these). */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function labelText(names: readonly string[], values: readonly string[], extra = ""): string {
  const parts = names.map((n, i) => `${n}="${escapeLabel(values[i]!)}"`);
  if (extra !== "") parts.push(extra);
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

interface FamilyOptions {
  name: string;
  help: string;
  labels?: readonly string[];
  maxSeries?: number;
}

abstract class Family<S> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  readonly maxSeries: number;
  abstract readonly type: Type;
  /** Series by their label values joined with NUL (a value can hold anything else). */
  protected readonly series = new Map<string, { values: string[]; state: S }>();

  constructor(o: FamilyOptions) {
    if (!NAME_RE.test(o.name)) {
      throw new MetricError(`Invalid metric name ${JSON.stringify(o.name)}`);
    }
    for (const l of o.labels ?? []) {
      if (!LABEL_RE.test(l) || l.startsWith("__") || RESERVED_LABELS.has(l)) {
        throw new MetricError(`Invalid label name ${JSON.stringify(l)} of ${o.name}`);
      }
    }
    this.name = o.name;
    this.help = o.help;
    this.labelNames = o.labels ?? [];
    this.maxSeries = o.maxSeries ?? DEFAULT_MAX_SERIES;
  }

  protected abstract fresh(): S;

  /** The series of `labels` (created on first use; folded into "other" past maxSeries). */
  protected at(labels: Labels = {}): S {
    const given = Object.keys(labels);
    if (
      given.length !== this.labelNames.length || given.some((k) => !this.labelNames.includes(k))
    ) {
      throw new MetricError(
        `${this.name} takes labels [${this.labelNames.join(", ")}], not [${given.join(", ")}]`,
      );
    }
    let values = this.labelNames.map((n) => labels[n]!);
    let key = values.join("\0");
    let s = this.series.get(key);
    if (s !== undefined) return s.state;
    if (this.series.size >= this.maxSeries) {
      values = this.labelNames.map(() => OVERFLOW_VALUE);
      key = values.join("\0");
      s = this.series.get(key);
      if (s !== undefined) return s.state;
    }
    s = { values, state: this.fresh() };
    this.series.set(key, s);
    return s.state;
  }

  /** Forgets every series (a gauge family refilled by a collector on each scrape). */
  clear(): void {
    this.series.clear();
  }

  get size(): number {
    return this.series.size;
  }

  render(): string {
    const head = `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} ${this.type}\n`;
    const rows: string[] = [];
    const sorted = [...this.series.values()].sort((a, b) =>
      a.values.join("\0") < b.values.join("\0") ? -1 : 1
    );
    for (const s of sorted) rows.push(...this.lines(s.values, s.state));
    return head + rows.map((r) => r + "\n").join("");
  }

  protected abstract lines(values: string[], state: S): string[];
}

export class Counter extends Family<{ v: number }> {
  readonly type = "counter";
  constructor(o: FamilyOptions) {
    super(o);
    if (!o.name.endsWith("_total")) {
      throw new MetricError(`Counter ${JSON.stringify(o.name)} must end in _total`);
    }
  }
  protected fresh() {
    return { v: 0 };
  }
  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) throw new MetricError(`${this.name} cannot go down (by ${by})`);
    this.at(labels).v += by;
  }
  /** For a count kept elsewhere and read at scrape time (the kernel's counters). */
  set(labels: Labels, v: number): void {
    this.at(labels).v = v;
  }
  get(labels: Labels = {}): number {
    return this.at(labels).v;
  }
  protected lines(values: string[], s: { v: number }): string[] {
    return [`${this.name}${labelText(this.labelNames, values)} ${formatValue(s.v)}`];
  }
}

export class Gauge extends Family<{ v: number }> {
  readonly type = "gauge";
  protected fresh() {
    return { v: 0 };
  }
  set(labels: Labels, v: number): void {
    this.at(labels).v = v;
  }
  get(labels: Labels = {}): number {
    return this.at(labels).v;
  }
  protected lines(values: string[], s: { v: number }): string[] {
    return [`${this.name}${labelText(this.labelNames, values)} ${formatValue(s.v)}`];
  }
}

interface HistogramState {
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram extends Family<HistogramState> {
  readonly type = "histogram";
  readonly buckets: readonly number[];
  constructor(o: FamilyOptions & { buckets: readonly number[] }) {
    super(o);
    const b = o.buckets;
    if (b.length === 0 || b.some((x, i) => !Number.isFinite(x) || (i > 0 && x <= b[i - 1]!))) {
      throw new MetricError(`${o.name}: buckets must be finite and increasing`);
    }
    this.buckets = b;
  }
  protected fresh(): HistogramState {
    return { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
  }
  observe(labels: Labels, v: number): void {
    const s = this.at(labels);
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]!) s.counts[i]!++;
    s.sum += v;
    s.count++;
  }
  count(labels: Labels = {}): number {
    return this.at(labels).count;
  }
  protected lines(values: string[], s: HistogramState): string[] {
    const out = this.buckets.map((le, i) =>
      `${this.name}_bucket${labelText(this.labelNames, values, `le="${formatValue(le)}"`)} ${
        s.counts[i]
      }`
    );
    out.push(`${this.name}_bucket${labelText(this.labelNames, values, 'le="+Inf"')} ${s.count}`);
    out.push(`${this.name}_sum${labelText(this.labelNames, values)} ${formatValue(s.sum)}`);
    out.push(`${this.name}_count${labelText(this.labelNames, values)} ${s.count}`);
    return out;
  }
}

type AnyFamily = Counter | Gauge | Histogram;

export class Registry {
  readonly #families = new Map<string, AnyFamily>();
  readonly #collectors: (() => void)[] = [];

  #add<F extends AnyFamily>(f: F): F {
    if (this.#families.has(f.name)) throw new MetricError(`Metric ${f.name} registered twice`);
    this.#families.set(f.name, f);
    return f;
  }

  counter(o: FamilyOptions): Counter {
    return this.#add(new Counter(o));
  }
  gauge(o: FamilyOptions): Gauge {
    return this.#add(new Gauge(o));
  }
  histogram(o: FamilyOptions & { buckets: readonly number[] }): Histogram {
    return this.#add(new Histogram(o));
  }

  /** Runs before each render, to set what is read at scrape time. */
  collect(fn: () => void): void {
    this.#collectors.push(fn);
  }

  /** The exposition, families in registration order. A collector that throws is reported in
   * `errors` and its families keep their last values. */
  render(errors: (err: unknown) => void = () => {}): string {
    for (const c of this.#collectors) {
      try {
        c();
      } catch (err) {
        errors(err);
      }
    }
    return [...this.#families.values()].map((f) => f.render()).join("");
  }
}
