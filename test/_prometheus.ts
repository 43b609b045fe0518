// A real Prometheus server in tests (Debian's `prometheus`, installed by scripts/bootstrap.sh):
// started on a free loopback port with its own config and data directory, scraping the given
// targets every second; its query API; stopped and removed by dispose. And `promtool check
// metrics` on an exposition.

export interface Sample {
  metric: Record<string, string>;
  /** Evaluation time (seconds) and the value as Prometheus writes it. */
  value: [number, string];
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

export class Prometheus implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #dir: string;
  #log = "";
  readonly #pump: Promise<void>;

  private constructor(readonly url: string, child: Deno.ChildProcess, dir: string) {
    this.#child = child;
    this.#dir = dir;
    const dec = new TextDecoder();
    this.#pump = (async () => {
      for await (const c of child.stderr) this.#log += dec.decode(c);
    })();
  }

  /** Starts it scraping `targets` (HOST:PORT) as job "ebpfcni"; resolves once it is ready. */
  static async start(targets: string[]): Promise<Prometheus> {
    const dir = Deno.makeTempDirSync({ prefix: "ebpfcni-prom-" });
    Deno.writeTextFileSync(
      `${dir}/prometheus.yml`,
      [
        "global:",
        "  scrape_interval: 1s",
        "  scrape_timeout: 1s",
        "  evaluation_interval: 1s",
        "scrape_configs:",
        "  - job_name: ebpfcni",
        "    static_configs:",
        `      - targets: ${JSON.stringify(targets)}`,
        "",
      ].join("\n"),
    );
    const port = freePort();
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command("prometheus", {
        args: [
          `--config.file=${dir}/prometheus.yml`,
          `--storage.tsdb.path=${dir}/data`,
          `--web.listen-address=127.0.0.1:${port}`,
          "--log.level=warn",
        ],
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();
    } catch (err) {
      Deno.removeSync(dir, { recursive: true });
      throw new Error(
        `cannot run prometheus (scripts/bootstrap.sh installs Debian's "prometheus"): ${err}`,
      );
    }
    const p = new Prometheus(`http://127.0.0.1:${port}`, child, dir);
    for (let i = 0; i < 300; i++) {
      try {
        const r = await fetch(`${p.url}/-/ready`);
        await r.body?.cancel();
        if (r.ok) return p;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const log = p.#log;
    await p[Symbol.asyncDispose]();
    throw new Error(`prometheus did not become ready: ${log}`);
  }

  /** An instant query's samples. */
  async query(q: string): Promise<Sample[]> {
    const r = await fetch(`${this.url}/api/v1/query?query=${encodeURIComponent(q)}`);
    const body = await r.json() as {
      status: string;
      error?: string;
      data?: { resultType: string; result: Sample[] };
    };
    if (body.status !== "success" || body.data?.resultType !== "vector") {
      throw new Error(`query ${q}: ${body.error ?? JSON.stringify(body)}`);
    }
    return body.data.result;
  }

  /** The one value of `q`, or undefined when it has no sample. */
  async value(q: string): Promise<number | undefined> {
    const s = await this.query(q);
    if (s.length > 1) throw new Error(`query ${q}: ${s.length} series, wanted one`);
    return s[0] === undefined ? undefined : Number(s[0].value[1]);
  }

  /** Waits until Prometheus holds a scrape of `metric` taken after `afterSeconds` (unix). */
  async scrapedAfter(metric: string, afterSeconds: number, tries = 200): Promise<void> {
    for (let i = 0; i < tries; i++) {
      const t = await this.value(`max(timestamp(${metric}))`).catch(() => undefined);
      if (t !== undefined && t > afterSeconds) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`no scrape of ${metric} after ${afterSeconds}: ${this.#log}`);
  }

  logs(): string {
    return this.#log;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#child.kill("SIGTERM");
    } catch {
      // exited
    }
    await this.#child.status;
    await this.#pump;
    Deno.removeSync(this.#dir, { recursive: true });
  }
}

/** `promtool check metrics` on an exposition: its complaints (empty when it passes). */
export async function promtoolCheck(exposition: string): Promise<{ ok: boolean; out: string }> {
  const child = new Deno.Command("promtool", {
    args: ["check", "metrics"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(exposition));
  await w.close();
  const out = await child.output();
  const dec = new TextDecoder();
  return { ok: out.success, out: dec.decode(out.stdout) + dec.decode(out.stderr) };
}
