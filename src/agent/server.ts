// The agent's unix socket (spec/agent.ts has the protocol): only root can connect (0600, in a
// directory the agent creates 0700 when it is missing). One request per connection; a request
// that does not parse, is too long or too slow is answered with an error and changes nothing.
import { MAX_REQUEST_BYTES, parseRequest, RequestError } from "../spec/agent.ts";
import type { AgentRequest } from "../spec/agent.ts";
import { quote } from "../spec/text.ts";
import { writeAll } from "../net/unix_rpc.ts";
import type { AgentLog } from "./log.ts";

/** A request must arrive within this time of connecting. */
const READ_TIMEOUT_MS = 5_000;

export type Handler = (req: AgentRequest) => Promise<unknown>;

/** A reply of many lines (`ebpfcni monitor`): each value `open` yields, until it ends, the
 * client hangs up or the server closes (then `signal` aborts). */
export class StreamReply {
  constructor(readonly open: (signal: AbortSignal) => AsyncIterable<unknown>) {}
}

export class SocketError extends Error {
  override name = "SocketError";
}

/** Removes a socket file no agent listens on; refuses one that answers, or a path that is not
 * a socket. */
async function clearStale(path: string): Promise<void> {
  let st: Deno.FileInfo;
  try {
    st = Deno.lstatSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return;
    throw err;
  }
  if (!st.isSocket) throw new SocketError(`${quote(path)} exists and is not a socket`);
  try {
    const c = await Deno.connect({ transport: "unix", path });
    c.close();
    throw new SocketError(`another agent is listening on ${quote(path)}`);
  } catch (err) {
    if (err instanceof SocketError) throw err;
    Deno.removeSync(path); // nobody listens: left over from an agent that died
  }
}

async function readLine(conn: Deno.UnixConn): Promise<string | undefined> {
  const buf = new Uint8Array(4096);
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) break;
    const chunk = buf.slice(0, n);
    chunks.push(chunk);
    total += n;
    if (chunk.includes(10)) break;
    if (total > MAX_REQUEST_BYTES) {
      throw new RequestError(`request longer than ${MAX_REQUEST_BYTES} bytes`);
    }
  }
  if (total === 0) return undefined;
  const all = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) (all.set(c, at), at += c.length);
  const text = new TextDecoder().decode(all);
  const nl = text.indexOf("\n");
  if (nl < 0) throw new RequestError("the request did not end with a newline");
  if (nl > MAX_REQUEST_BYTES) {
    throw new RequestError(`request longer than ${MAX_REQUEST_BYTES} bytes`);
  }
  return text.slice(0, nl);
}

export class AgentServer {
  readonly #listener: Deno.Listener<Deno.UnixConn, Deno.UnixAddr>;
  readonly #inflight = new Set<Promise<void>>();
  readonly #serving: Promise<void>;
  readonly #streams = new Set<AbortController>();
  #closed = false;

  private constructor(
    readonly path: string,
    listener: Deno.Listener<Deno.UnixConn, Deno.UnixAddr>,
    readonly handler: Handler,
    readonly log: AgentLog,
  ) {
    this.#listener = listener;
    this.#serving = this.#serve();
  }

  static async listen(path: string, handler: Handler, log: AgentLog): Promise<AgentServer> {
    const dir = path.slice(0, path.lastIndexOf("/")) || "/";
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    await clearStale(path);
    const listener = Deno.listen({ transport: "unix", path });
    Deno.chmodSync(path, 0o600);
    return new AgentServer(path, listener, handler, log);
  }

  async #serve(): Promise<void> {
    for (;;) {
      let conn: Deno.UnixConn;
      try {
        conn = await this.#listener.accept();
      } catch {
        return; // closed
      }
      const p = this.#handle(conn).finally(() => this.#inflight.delete(p));
      this.#inflight.add(p);
    }
  }

  async #handle(conn: Deno.UnixConn): Promise<void> {
    const timer = setTimeout(() => {
      try {
        conn.close();
      } catch {
        // answered meanwhile
      }
    }, READ_TIMEOUT_MS);
    let reply: unknown;
    try {
      const line = await readLine(conn);
      if (line === undefined) {
        // Connected and closed without a word (a liveness probe): nothing to answer.
        clearTimeout(timer);
        conn.close();
        return;
      }
      clearTimeout(timer);
      const req = parseRequest(line);
      reply = await this.handler(req);
      if (reply instanceof StreamReply) return await this.#stream(conn, reply);
    } catch (err) {
      clearTimeout(timer);
      const message = err instanceof RequestError
        ? `bad request: ${err.message}`
        : (err as Error).message ?? String(err);
      if (err instanceof RequestError) this.log.warn("refused a request", { error: message });
      reply = { error: message };
    }
    try {
      await writeAll(conn, new TextEncoder().encode(JSON.stringify(reply) + "\n"));
    } catch {
      // the client went away (timed out)
    }
    try {
      conn.close();
    } catch {
      // closed by the timer
    }
  }

  async #stream(conn: Deno.UnixConn, reply: StreamReply): Promise<void> {
    const ac = new AbortController();
    this.#streams.add(ac);
    // A request read just before close() opens its stream after close() aborted the others.
    if (this.#closed) ac.abort();
    // Closing unblocks a write to a client that stopped reading.
    ac.signal.addEventListener("abort", () => {
      try {
        conn.close();
      } catch {
        // closed already
      }
    });
    // The client sends nothing after its request: its end of file is its hanging up.
    conn.read(new Uint8Array(1)).then(() => ac.abort(), () => ac.abort());
    const encoder = new TextEncoder();
    let writing = false;
    try {
      for await (const v of reply.open(ac.signal)) {
        writing = true;
        await writeAll(conn, encoder.encode(JSON.stringify(v) + "\n"));
        writing = false;
      }
    } catch (err) {
      // A write that failed: the client went away. Else the stream itself failed: say why.
      if (!writing && !ac.signal.aborted) {
        const message = (err as Error).message ?? String(err);
        this.log.error("a stream failed", { error: message });
        await writeAll(conn, encoder.encode(JSON.stringify({ error: message }) + "\n"))
          .catch(() => {});
      }
    } finally {
      ac.abort();
      this.#streams.delete(ac);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listener.close();
    for (const s of this.#streams) s.abort();
    await this.#serving;
    await Promise.allSettled([...this.#inflight]);
    try {
      Deno.removeSync(this.path);
    } catch {
      // already gone
    }
  }
}
