// One JSON request, one JSON line back, over a unix socket (the policy agent's protocol,
// spec/agent_wire.ts). Failures are typed by what went wrong, so each caller words them its way.

/** unreachable: nobody listens; unsent: the request did not go out whole (the peer cannot
 * have acted on it); timeout, failed: sent, and no complete answer came back. */
export type RpcFailure = "unreachable" | "unsent" | "timeout" | "failed";

export class RpcError extends Error {
  override name = "RpcError";
  constructor(readonly kind: RpcFailure, message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** Connects to `path`; an RpcError "unreachable" when nobody listens. */
async function connect(path: string): Promise<Deno.UnixConn> {
  try {
    return await Deno.connect({ transport: "unix", path });
  } catch (err) {
    throw new RpcError("unreachable", String(err), { cause: err });
  }
}

export async function requestLine(
  path: string,
  req: unknown,
  timeoutMs: number,
): Promise<unknown> {
  const conn = await connect(path);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      conn.close();
    } catch {
      // closed meanwhile
    }
  }, timeoutMs);
  try {
    try {
      await writeAll(conn, new TextEncoder().encode(JSON.stringify(req) + "\n"));
    } catch (err) {
      throw new RpcError(timedOut ? "timeout" : "unsent", String(err), { cause: err });
    }
    const decoder = new TextDecoder();
    let text = "";
    const buf = new Uint8Array(16384);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += decoder.decode(buf.subarray(0, n), { stream: true });
      if (text.includes("\n")) break;
    }
    if (!text.includes("\n")) {
      throw new RpcError(timedOut ? "timeout" : "failed", "no complete answer");
    }
    return JSON.parse(text.slice(0, text.indexOf("\n")));
  } catch (err) {
    if (err instanceof RpcError) throw err;
    if (timedOut) throw new RpcError("timeout", "no answer in time", { cause: err });
    throw new RpcError("failed", String(err), { cause: err });
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // closed by the timer
    }
  }
}

/** Writes all of `bytes` (a socket write may take only part of them). */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

/** A request answered by lines until either side hangs up (the agent's `monitor`). */
export interface LineStream {
  /** Each answer line, parsed; ends when the peer closes or `close()` is called. */
  lines: AsyncIterable<unknown>;
  close(): void;
}

/** Sends `req` and reads its answer lines as they come. Throws an RpcError "unreachable"
 * when nobody listens, "unsent" when the request did not go out whole. */
export async function requestLines(path: string, req: unknown): Promise<LineStream> {
  const conn = await connect(path);
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    try {
      conn.close();
    } catch {
      // closed by the peer's error
    }
  };
  try {
    await writeAll(conn, new TextEncoder().encode(JSON.stringify(req) + "\n"));
  } catch (err) {
    close();
    throw new RpcError("unsent", String(err), { cause: err });
  }
  async function* lines(): AsyncGenerator<unknown> {
    const decoder = new TextDecoder();
    const buf = new Uint8Array(65536);
    let text = "";
    try {
      while (!closed) {
        let n: number | null;
        try {
          n = await conn.read(buf);
        } catch (err) {
          if (closed) return; // closed by close(): the caller is done
          throw new RpcError("failed", String(err), { cause: err });
        }
        if (n === null) return;
        text += decoder.decode(buf.subarray(0, n), { stream: true });
        for (let nl = text.indexOf("\n"); nl >= 0; nl = text.indexOf("\n")) {
          const line = text.slice(0, nl);
          text = text.slice(nl + 1);
          let value: unknown;
          try {
            value = JSON.parse(line);
          } catch {
            throw new RpcError("failed", `not a JSON line: ${line.slice(0, 80)}`);
          }
          yield value;
        }
      }
    } finally {
      close();
    }
  }
  return { lines: lines(), close };
}
