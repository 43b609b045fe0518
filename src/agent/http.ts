// The agent's HTTP listener (`--metrics-address`): `/metrics` (Prometheus text exposition),
// `/healthz` (the process answers: liveness) and `/readyz` (ready to enforce: readiness).
// GET and HEAD only; anything else is 404 or 405. It reads state, never changes it.
import { EXPOSITION_CONTENT_TYPE } from "./prom.ts";
import { formatListenAddress, type ListenAddress } from "./http_address.ts";
import type { AgentLog } from "../log.ts";

/** Why the agent is not ready, or undefined when it is. */
export type Readiness = () => string | undefined;

export interface HttpHandlers {
  metrics(): string;
  ready: Readiness;
}

const TEXT = "text/plain; charset=utf-8";

export function route(h: HttpHandlers, method: string, path: string): Response {
  if (method !== "GET" && method !== "HEAD") {
    return new Response("method not allowed\n", {
      status: 405,
      headers: { allow: "GET, HEAD", "content-type": TEXT },
    });
  }
  switch (path) {
    case "/metrics":
      return new Response(h.metrics(), { headers: { "content-type": EXPOSITION_CONTENT_TYPE } });
    case "/healthz":
      return new Response("ok\n", { headers: { "content-type": TEXT } });
    case "/readyz": {
      const why = h.ready();
      return why === undefined
        ? new Response("ok\n", { headers: { "content-type": TEXT } })
        : new Response(`not ready: ${why}\n`, { status: 503, headers: { "content-type": TEXT } });
    }
    default:
      return new Response("not found: /metrics, /healthz, /readyz\n", {
        status: 404,
        headers: { "content-type": TEXT },
      });
  }
}

export class HttpServer {
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  /** The address it listens on (the port chosen when 0 was asked). */
  readonly address: string;

  private constructor(server: Deno.HttpServer<Deno.NetAddr>) {
    this.#server = server;
    this.address = formatListenAddress(server.addr);
  }

  /** Listens (throws when the address is taken or not this host's). */
  static listen(at: ListenAddress, h: HttpHandlers, log: AgentLog): HttpServer {
    const server = Deno.serve({
      hostname: at.hostname,
      port: at.port,
      onListen: () => {},
      onError: (err) => {
        log.error("HTTP request failed", { error: String(err) });
        return new Response("internal error\n", { status: 500 });
      },
    }, (req) => route(h, req.method, new URL(req.url).pathname));
    return new HttpServer(server);
  }

  async close(): Promise<void> {
    await this.#server.shutdown();
  }
}
