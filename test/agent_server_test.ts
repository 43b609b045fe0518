// The agent's socket server and its clients, without an agent: streams (`monitor`) opened as
// the server closes, streams that fail, and answer lines that arrive in pieces.
import assert from "node:assert/strict";
import { AgentServer, StreamReply } from "../src/agent/server.ts";
import { requestLines } from "../src/net/unix_rpc.ts";

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const MONITOR = { op: "monitor", verdict: "drop", eventsMapId: 1 };

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ebpfcni-server-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("AgentServer.close(): a stream opened while it closes is ended at once, so close() returns", async () => {
  await withDir(async (dir) => {
    let entered = () => {};
    const handling = new Promise<void>((r) => (entered = r));
    let release = () => {};
    const gate = new Promise<void>((r) => (release = r));
    let opened = () => {};
    const open = new Promise<boolean>((r) => (opened = () => r(true)));
    let abortedAtOpen: boolean | undefined;
    const server = await AgentServer.listen(`${dir}/s.sock`, async () => {
      entered();
      await gate;
      return new StreamReply(async function* (signal) {
        abortedAtOpen = signal.aborted;
        opened();
        yield { monitor: {} };
        while (!signal.aborted) await new Promise((r) => setTimeout(r, 20));
      });
    }, quiet);
    const stream = await requestLines(`${dir}/s.sock`, MONITOR);
    try {
      await handling; // the request is read, its stream not yet open
      const closing = server.close();
      release();
      await open;
      // Without the fix the stream would run until the client hangs up: hang up to end it.
      const was = abortedAtOpen;
      stream.close();
      await closing;
      assert.equal(was, true, "the stream opened after close() was not ended");
    } finally {
      stream.close();
      await server.close();
    }
  });
});

Deno.test("AgentServer: a stream that fails sends its error as the last line", async () => {
  await withDir(async (dir) => {
    const server = await AgentServer.listen(`${dir}/s.sock`, () =>
      Promise.resolve(
        new StreamReply(async function* () {
          yield { monitor: {} };
          yield { n: 1 };
          throw new Error("reading the events ring buffer failed: EBADF");
        }),
      ), quiet);
    const stream = await requestLines(`${dir}/s.sock`, MONITOR);
    try {
      const lines: unknown[] = [];
      for await (const v of stream.lines) lines.push(v);
      assert.deepEqual(lines, [
        { monitor: {} },
        { n: 1 },
        { error: "reading the events ring buffer failed: EBADF" },
      ]);
    } finally {
      stream.close();
      await server.close();
    }
  });
});

Deno.test("requestLines(): answer lines split across reads come whole and in order", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/raw.sock`;
    const listener = Deno.listen({ transport: "unix", path });
    const serving = (async () => {
      const conn = await listener.accept();
      const buf = new Uint8Array(4096);
      await conn.read(buf); // the request
      const enc = new TextEncoder();
      for (const piece of ['{"a":', '1}\n{"b"', ':"é', '"}\n{"c":3}\n']) {
        await conn.write(enc.encode(piece));
        await new Promise((r) => setTimeout(r, 20));
      }
      // "é" cut between its two bytes.
      const e = enc.encode('{"d":"é"}\n');
      await conn.write(e.subarray(0, 7));
      await new Promise((r) => setTimeout(r, 20));
      await conn.write(e.subarray(7));
      conn.close();
    })();
    const stream = await requestLines(path, MONITOR);
    try {
      const lines: unknown[] = [];
      for await (const v of stream.lines) lines.push(v);
      assert.deepEqual(lines, [{ a: 1 }, { b: "é" }, { c: 3 }, { d: "é" }]);
    } finally {
      stream.close();
      await serving;
      listener.close();
    }
  });
});

Deno.test("AgentServer: a client that hangs up ends its stream (the stream's signal aborts)", async () => {
  await withDir(async (dir) => {
    let ended = () => {};
    const end = new Promise<void>((r) => (ended = r));
    const server = await AgentServer.listen(`${dir}/s.sock`, () =>
      Promise.resolve(
        new StreamReply(async function* (signal) {
          try {
            yield { monitor: {} };
            while (!signal.aborted) await new Promise((r) => setTimeout(r, 10));
          } finally {
            ended();
          }
        }),
      ), quiet);
    try {
      const stream = await requestLines(`${dir}/s.sock`, MONITOR);
      const it = stream.lines[Symbol.asyncIterator]();
      assert.deepEqual((await it.next()).value, { monitor: {} });
      stream.close();
      await end; // the generator ran to its finally: it was told the client left
    } finally {
      await server.close();
    }
  });
});
