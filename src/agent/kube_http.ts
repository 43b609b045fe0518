// HTTP to the API server for the agent's Kubernetes source, on Deno's own fetch with a
// Deno.createHttpClient per request. @kubernetes/client-node still provides the credentials
// (KubeConfig.applyToHTTPSOptions: CA, client certificate and key read afresh, the token or
// exec/OIDC plugins), but not its transport: its undici fetch, under Deno's node:tls, never
// notices a watch connection dropped by the server once an event has arrived (the stream
// neither ends nor errors: found with the fake API server, where Deno's fetch reports "error
// reading a body from connection" at once), so a crashed API server would go unnoticed until
// an inactivity timeout.
import type { KubeConfig } from "@kubernetes/client-node";

/** An HTTP answer other than 200, with the API server's Status message. ListWatch reads
 * `statusCode` (410 means: relist). */
export class KubeHttpError extends Error {
  override name = "KubeHttpError";
  constructor(readonly statusCode: number, message: string) {
    super(message);
  }
}

interface TlsAndAuth {
  ca?: unknown;
  cert?: unknown;
  key?: unknown;
  auth?: unknown;
  headers?: Record<string, unknown>;
  rejectUnauthorized?: boolean;
  servername?: string;
}

function pemOf(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  return typeof v === "string" ? v : new TextDecoder().decode(v as Uint8Array);
}

/** A client and headers for one request, from the kubeconfig's current state. The caller
 * closes the client. */
async function connect(kc: KubeConfig): Promise<{ client: Deno.HttpClient; headers: Headers }> {
  const opts: TlsAndAuth = {};
  await kc.applyToHTTPSOptions(opts as Parameters<KubeConfig["applyToHTTPSOptions"]>[0]);
  const ca = pemOf(opts.ca);
  const cert = pemOf(opts.cert);
  const key = pemOf(opts.key);
  const client = Deno.createHttpClient({
    ...(ca === undefined ? {} : { caCerts: [ca] }),
    ...(cert === undefined || key === undefined ? {} : { cert, key }),
  });
  const headers = new Headers({ Accept: "application/json", "User-Agent": "ebpfcni-agent" });
  for (const [k, v] of Object.entries(opts.headers ?? {})) headers.set(k, String(v));
  if (typeof opts.auth === "string" && !headers.has("Authorization")) {
    headers.set("Authorization", `Basic ${btoa(opts.auth)}`);
  }
  return { client, headers };
}

function server(kc: KubeConfig): string {
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new Error("The kubeconfig has no current cluster");
  return cluster.server;
}

async function httpError(res: Response, what: string): Promise<KubeHttpError> {
  let message = res.statusText;
  const body = await res.text().catch(() => "");
  try {
    const s = JSON.parse(body) as { message?: unknown };
    if (typeof s.message === "string" && s.message !== "") message = s.message;
  } catch {
    if (body.trim() !== "") message = body.trim().slice(0, 200);
  }
  return new KubeHttpError(
    res.status,
    `${what}: HTTP ${res.status}${message ? `: ${message}` : ""}`,
  );
}

/** GETs `path` and parses the JSON answer. */
export async function getJson(kc: KubeConfig, path: string, signal: AbortSignal): Promise<unknown> {
  const { client, headers } = await connect(kc);
  try {
    const res = await fetch(`${server(kc)}${path}`, { client, headers, signal });
    if (res.status !== 200) throw await httpError(res, `GET ${path}`);
    const text = await res.text();
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new Error(`GET ${path}: the answer is not JSON`, { cause: err });
    }
  } finally {
    client.close();
  }
}

export interface WatchStreamOptions {
  /** The watch's path and query. */
  path: string;
  signal: AbortSignal;
  /** Abort when nothing (no event, no bookmark) arrived for this long. */
  idleMs: number;
  /** Each event, parsed. */
  onEvent(event: { type?: unknown; object?: unknown }): void;
  /** A line that is not JSON (skipped). */
  onJunk(line: string): void;
  /** The server accepted the watch (200). */
  onOpen?(): void;
}

/** Runs one watch request: resolves when the server ends the stream, rejects on errors, on
 * abort, and with a TimeoutError DOMException when it stayed silent for idleMs (what
 * ListWatch takes for "re-watch at once"). */
export async function streamWatch(kc: KubeConfig, opts: WatchStreamOptions): Promise<void> {
  const abort = new AbortController();
  const forward = () => abort.abort(opts.signal.reason);
  if (opts.signal.aborted) forward();
  opts.signal.addEventListener("abort", forward);
  let idle = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      idle = true;
      abort.abort();
    }, opts.idleMs);
  };
  let client: Deno.HttpClient | undefined;
  try {
    const c = await connect(kc);
    client = c.client;
    arm();
    const res = await fetch(`${server(kc)}${opts.path}`, {
      client,
      headers: c.headers,
      signal: abort.signal,
    });
    if (res.status !== 200) throw await httpError(res, "watch");
    opts.onOpen?.();
    if (res.body === null) return;
    arm();
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      arm();
      buf += value;
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line === "") continue;
        let event: unknown;
        try {
          event = JSON.parse(line);
        } catch {
          opts.onJunk(line);
          continue;
        }
        if (typeof event === "object" && event !== null) opts.onEvent(event);
      }
    }
  } catch (err) {
    if (idle) {
      throw new DOMException(`watch: nothing received for ${opts.idleMs} ms`, "TimeoutError");
    }
    throw err;
  } finally {
    clearTimeout(timer);
    opts.signal.removeEventListener("abort", forward);
    client?.close();
  }
}
