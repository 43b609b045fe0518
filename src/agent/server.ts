// The agent's unix socket (spec/agent_wire.ts has the protocol): only root can connect (0600, in a
// directory the agent creates 0700 when it is missing), or with `group` members of that group
// too (0660, directory 0710). The peer's credentials (SO_PEERCRED) are checked as well, so a
// socket file whose mode was loosened still serves nobody else. One request per connection,
// each connection on its own (a slow one delays no other); a request must arrive whole within
// READ_TIMEOUT_MS; at most MAX_CONNECTIONS are open at once, the ones beyond are refused at
// once. A request that does not parse, is too long or too slow is answered with an error and
// changes nothing. The connection stays open while the request runs: its closing tells the
// handler that the caller is gone (a plugin process the runtime killed).
import { MAX_REQUEST_BYTES, parseRequest, RequestError } from "../spec/agent_wire.ts";
import type { AgentRequest } from "../spec/agent_wire.ts";
import { errorMessage, quote } from "../spec/text.ts";
import { writeAll } from "../net/unix_rpc.ts";
import { groupsOf, type PeerCred, PeerFinder } from "../net/unix_peer.ts";
import type { AgentLog } from "../log.ts";

/** A request must arrive within this time of connecting. */
const READ_TIMEOUT_MS = 5_000;
/** Connections open at once (each is an fd and a pending read); more are refused. */
export const MAX_CONNECTIONS = 512;

export interface Caller {
  peer: PeerCred;
  /** Aborted when the caller closes its end before the answer. */
  signal: AbortSignal;
}

export type Handler = (req: AgentRequest, caller: Caller) => Promise<unknown>;

export interface ServeOptions {
  /** A group whose members may use the socket besides root. */
  group?: number;
}

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
  readonly #peers: PeerFinder;
  #closed = false;

  private constructor(
    readonly path: string,
    listener: Deno.Listener<Deno.UnixConn, Deno.UnixAddr>,
    readonly handler: Handler,
    readonly log: AgentLog,
    readonly group: number | undefined,
  ) {
    this.#listener = listener;
    this.#peers = new PeerFinder(path);
    this.#serving = this.#serve();
  }

  static async listen(
    path: string,
    handler: Handler,
    log: AgentLog,
    opts: ServeOptions = {},
  ): Promise<AgentServer> {
    const dir = path.slice(0, path.lastIndexOf("/")) || "/";
    let made = false;
    try {
      Deno.statSync(dir);
    } catch {
      made = true;
    }
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (made && opts.group !== undefined) {
      // Members of the group may reach the socket, and only that.
      Deno.chownSync(dir, null, opts.group);
      Deno.chmodSync(dir, 0o710);
    }
    await clearStale(path);
    const listener = Deno.listen({ transport: "unix", path });
    Deno.chmodSync(path, 0o600);
    if (opts.group !== undefined) {
      Deno.chownSync(path, null, opts.group);
      Deno.chmodSync(path, 0o660);
    }
    return new AgentServer(path, listener, handler, log, opts.group);
  }

  async #serve(): Promise<void> {
    for (;;) {
      let conn: Deno.UnixConn;
      try {
        conn = await this.#listener.accept();
      } catch (err) {
        if (this.#closed) return;
        // Out of fds, say: the socket must outlive it, or the node's ADDs fail from then on.
        this.log.error("cannot accept a connection", { error: String(err) });
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      // At once, before the next accept: the one connection not matched yet is this one.
      const peer = this.#peers.accepted();
      const refusal = this.#refusal(peer);
      const p = (refusal === undefined ? this.#handle(conn, peer!) : this.#refuse(conn, refusal))
        .finally(() => this.#inflight.delete(p));
      this.#inflight.add(p);
    }
  }

  /** Why a connection is not served, or undefined. */
  #refusal(peer: PeerCred | undefined): string | undefined {
    if (this.#inflight.size >= MAX_CONNECTIONS) {
      this.log.warn("refused a connection: too many open", { limit: MAX_CONNECTIONS });
      return `too many connections (${MAX_CONNECTIONS} open): try again`;
    }
    if (peer === undefined) {
      this.log.warn("refused a connection: cannot tell who connected");
      return "permission denied: cannot tell who connected";
    }
    if (peer.uid === 0) return undefined;
    if (this.group !== undefined && groupsOf(peer.pid, peer.gid).has(this.group)) {
      return undefined;
    }
    this.log.warn("refused a connection: not root nor of the socket's group", {
      uid: peer.uid,
      gid: peer.gid,
      pid: peer.pid,
      ...(this.group === undefined ? {} : { group: this.group }),
    });
    return `permission denied: uid ${peer.uid} is not root${
      this.group === undefined ? "" : ` nor of group ${this.group}`
    }`;
  }

  async #refuse(conn: Deno.UnixConn, why: string): Promise<void> {
    const timer = setTimeout(() => close(conn), READ_TIMEOUT_MS);
    try {
      await writeAll(conn, new TextEncoder().encode(JSON.stringify({ error: why }) + "\n"));
    } catch {
      // gone already
    } finally {
      clearTimeout(timer);
      close(conn);
    }
  }

  async #handle(conn: Deno.UnixConn, peer: PeerCred): Promise<void> {
    const timer = setTimeout(() => {
      try {
        conn.close();
      } catch {
        // answered meanwhile
      }
    }, READ_TIMEOUT_MS);
    let reply: unknown;
    const done = new AbortController();
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
      const gone = watchClose(conn, done.signal);
      reply = await this.handler(req, { peer, signal: gone });
      if (reply instanceof StreamReply) return await this.#stream(conn, reply, gone);
    } catch (err) {
      clearTimeout(timer);
      const message = err instanceof RequestError
        ? `bad request: ${err.message}`
        : errorMessage(err);
      if (err instanceof RequestError) this.log.warn("refused a request", { error: message });
      reply = { error: message };
    }
    done.abort();
    try {
      await writeAll(conn, new TextEncoder().encode(JSON.stringify(reply) + "\n"));
    } catch {
      // the client went away (timed out)
    }
    close(conn);
  }

  async #stream(conn: Deno.UnixConn, reply: StreamReply, gone: AbortSignal): Promise<void> {
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
    if (gone.aborted) ac.abort();
    else gone.addEventListener("abort", () => ac.abort(), { once: true });
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
        const message = errorMessage(err);
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

function close(conn: Deno.UnixConn): void {
  try {
    conn.close();
  } catch {
    // closed already
  }
}

/** A signal aborted when the peer closes its end (or the connection fails) before `done`. A
 * client sends one line and then only waits: anything more it sends is ignored. */
function watchClose(conn: Deno.UnixConn, done: AbortSignal): AbortSignal {
  const gone = new AbortController();
  (async () => {
    const buf = new Uint8Array(512);
    try {
      while (await conn.read(buf) !== null && !done.aborted);
    } catch {
      // closed here (answered), or reset by the peer
    }
    if (!done.aborted) gone.abort(new Error("the caller closed the connection"));
  })();
  return gone.signal;
}
