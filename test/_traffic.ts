// Real traffic between the network namespaces a test made: echo servers inside them, and
// probes from them, many at once.
//
// Servers: one child process (this file, run with `serve`) enters each namespace on its main
// thread, opens its TCP listeners and UDP sockets there (a socket stays in the namespace it
// was created in), and serves them all: TCP connections are accepted and closed (or, on the
// `tcpEcho` ports, kept open and echoed), UDP datagrams echoed back.
//
// Probes: from the test process, each socket is created inside its namespace (setns on the
// main thread, then back), connected without blocking, and all are polled together until a
// deadline, so a matrix of denied probes costs one timeout, not one each.
import { fileURLToPath } from "node:url";

export type Proto = "tcp" | "udp";

export interface ServerSpec {
  /** Path of the network namespace, e.g. /var/run/netns/x. */
  netns: string;
  tcp: number[];
  udp: number[];
  /** TCP ports whose connections stay open and echo what they receive. */
  tcpEcho?: number[];
  /** TCP ports that answer each connection with the address it came from, then close. */
  tcpPeer?: number[];
}

export interface Servers {
  stop(): Promise<void>;
}

const SELF = fileURLToPath(import.meta.url);

/** Starts echo servers in every namespace; resolves once all listen. */
export async function startServers(specs: ServerSpec[]): Promise<Servers> {
  const arg = JSON.stringify(specs);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--no-lock",
      "--no-config",
      "--unstable-net",
      "--allow-all",
      SELF,
      "serve",
      arg,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  const dec = new TextDecoder();
  let text = "";
  while (!text.includes("ready\n")) {
    const { value, done } = await reader.read();
    if (done) {
      await child.status;
      throw new Error(`traffic servers exited before listening: ${text}`);
    }
    text += dec.decode(value);
  }
  reader.releaseLock();
  return {
    async stop() {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
      await child.stdout.cancel().catch(() => {});
      await child.status;
    },
  };
}

// ---- libc, for namespaces and non-blocking sockets ----

const libc = Deno.dlopen(
  "libc.so.6",
  {
    setns: { parameters: ["i32", "i32"], result: "i32" },
    open: { parameters: ["buffer", "i32"], result: "i32" },
    close: { parameters: ["i32"], result: "i32" },
    socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
    connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
    bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
    send: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
    recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
    poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
    getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
    setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
    __errno_location: { parameters: [], result: "pointer" },
  } as const,
);
const S = libc.symbols;
const CLONE_NEWNET = 0x40000000;
const AF_INET = 2;
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_ERROR = 4;
const SO_REUSEADDR = 2;
const SO_LINGER = 13;
const POLLIN = 1;
const POLLOUT = 4;
const POLLERR = 8;
const POLLHUP = 16;
const EINPROGRESS = 115;

function errno(): number {
  const p = S.__errno_location();
  return p ? new Deno.UnsafePointerView(p).getInt32() : 0;
}

function cstr(s: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(`${s}\0`);
}

/** Runs `fn` with this thread in the namespace at `path`. */
function inNetns<T>(path: string, fn: () => T): T {
  const home = S.open(cstr("/proc/thread-self/ns/net"), 0);
  const ns = S.open(cstr(path), 0);
  if (home < 0 || ns < 0) throw new Error(`cannot open netns ${path}: errno ${errno()}`);
  try {
    if (S.setns(ns, CLONE_NEWNET) < 0) throw new Error(`setns ${path}: errno ${errno()}`);
    try {
      return fn();
    } finally {
      if (S.setns(home, CLONE_NEWNET) < 0) {
        console.error("cannot return to the home network namespace");
        Deno.exit(70);
      }
    }
  } finally {
    S.close(ns);
    S.close(home);
  }
}

function sockaddr(ip: string, port: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  v.setUint16(0, AF_INET, true);
  v.setUint16(2, port, false);
  ip.split(".").forEach((o, i) => b[4 + i] = Number(o));
  return b;
}

export interface Probe {
  /** Namespace path the probe starts from. */
  from: string;
  to: string;
  port: number;
  proto: Proto;
  /** The source port (default: one the kernel picks); a TCP probe from it ends with a reset,
   * so the next probe can use it again at once. */
  sport?: number;
}

interface Pending {
  fd: number;
  proto: Proto;
  done?: boolean;
}

/** Probes all at once: true where a TCP connection was accepted or a UDP datagram echoed
 * back within `timeoutMs`. */
export function probeAll(probes: readonly Probe[], timeoutMs = 1000): boolean[] {
  const pend: Pending[] = probes.map((p) =>
    inNetns(p.from, () => {
      const type = (p.proto === "tcp" ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC;
      const fd = S.socket(AF_INET, type, 0);
      if (fd < 0) throw new Error(`socket: errno ${errno()}`);
      if (p.sport !== undefined) {
        // A fixed port is for probing the same 5-tuple again: closing with a reset (linger
        // 0) leaves no TIME_WAIT holding the port.
        S.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, new Uint8Array(new Int32Array([1]).buffer), 4);
        if (p.proto === "tcp") {
          S.setsockopt(fd, SOL_SOCKET, SO_LINGER, new Uint8Array(new Int32Array([1, 0]).buffer), 8);
        }
        if (S.bind(fd, sockaddr("0.0.0.0", p.sport), 16) < 0) {
          S.close(fd);
          throw new Error(`bind to port ${p.sport}: errno ${errno()}`);
        }
      }
      const rc = S.connect(fd, sockaddr(p.to, p.port), 16);
      if (rc < 0 && errno() !== EINPROGRESS) return { fd, proto: p.proto, done: true };
      if (p.proto === "udp") S.send(fd, cstr("ping"), 4n, 0);
      return { fd, proto: p.proto };
    })
  );
  const result = probes.map(() => false);
  const deadline = performance.now() + timeoutMs;
  const buf = new Uint8Array(64);
  try {
    for (;;) {
      const open = pend.map((p, i) => ({ p, i })).filter(({ p }) => !p.done);
      const left = Math.ceil(deadline - performance.now());
      if (open.length === 0 || left <= 0) break;
      const fds = new Uint8Array(open.length * 8); // struct pollfd { int fd; short events, revents; }
      const v = new DataView(fds.buffer);
      open.forEach(({ p }, k) => {
        v.setInt32(k * 8, p.fd, true);
        v.setInt16(k * 8 + 4, p.proto === "tcp" ? POLLOUT : POLLIN, true);
      });
      if (S.poll(fds, BigInt(open.length), Math.min(left, 100)) < 0) continue;
      open.forEach(({ p, i }, k) => {
        const rev = v.getInt16(k * 8 + 6, true);
        if (rev === 0) return;
        if (p.proto === "tcp") {
          const err = new Int32Array(1);
          const len = new Uint32Array([4]);
          S.getsockopt(
            p.fd,
            SOL_SOCKET,
            SO_ERROR,
            new Uint8Array(err.buffer),
            new Uint8Array(len.buffer),
          );
          result[i] = (rev & POLLOUT) !== 0 && err[0] === 0;
          p.done = true;
        } else if (rev & POLLIN) {
          result[i] = Number(S.recv(p.fd, buf, BigInt(buf.length), 0)) > 0;
          p.done = true;
        } else if (rev & (POLLERR | POLLHUP)) {
          p.done = true; // ICMP port unreachable and the like
        }
      });
    }
  } finally {
    for (const p of pend) S.close(p.fd);
  }
  return result;
}

/** Probes until the result matches `want` for every probe or `tries` rounds are spent (the
 * first packets of a new path can be lost to ARP); returns the last result. */
export function probeUntil(
  probes: readonly Probe[],
  want: readonly boolean[],
  tries = 3,
): boolean[] {
  const got = probeAll(probes);
  for (let t = 1; t < tries && got.some((g, i) => g !== want[i]); t++) {
    const redo = probes.map((_, i) => i).filter((i) => got[i] !== want[i]);
    const again = probeAll(redo.map((i) => probes[i]!));
    redo.forEach((i, k) => got[i] = again[k]!);
  }
  return got;
}

/** A TCP connection kept open to a `tcpEcho` port. */
export interface LiveConnection {
  /** Sends a byte and waits for its echo: false when none came within `timeoutMs`. */
  roundTrip(timeoutMs?: number): boolean;
  close(): void;
}

/** Waits for `events` on `fd` until `timeoutMs`; the returned events, 0 on timeout. */
function waitFor(fd: number, events: number, timeoutMs: number): number {
  const deadline = performance.now() + timeoutMs;
  const pfd = new Uint8Array(8);
  const v = new DataView(pfd.buffer);
  for (;;) {
    const left = Math.ceil(deadline - performance.now());
    if (left <= 0) return 0;
    v.setInt32(0, fd, true);
    v.setInt16(4, events, true);
    v.setInt16(6, 0, true);
    if (S.poll(pfd, 1n, left) > 0) return v.getInt16(6, true);
  }
}

/** Opens a TCP connection from the namespace at `from` (from `sport`, if given) and waits
 * until it is established; throws if it is not within `timeoutMs`. */
export function openConnection(
  from: string,
  to: string,
  port: number,
  opts: { sport?: number; timeoutMs?: number } = {},
): LiveConnection {
  const fd = connectedFd(from, to, port, opts);
  const buf = new Uint8Array(64);
  return {
    roundTrip(timeoutMs = 1000) {
      if (Number(S.send(fd, cstr("x"), 1n, 0)) !== 1) return false;
      if (!(waitFor(fd, POLLIN, timeoutMs) & POLLIN)) return false;
      return Number(S.recv(fd, buf, BigInt(buf.length), 0)) > 0;
    },
    close: () => void S.close(fd),
  };
}

/** A connected TCP socket from the namespace at `from`; throws if none within `timeoutMs`. */
function connectedFd(
  from: string,
  to: string,
  port: number,
  opts: { sport?: number; timeoutMs?: number },
): number {
  const fd = inNetns(from, () => {
    const fd = S.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw new Error(`socket: errno ${errno()}`);
    if (opts.sport !== undefined && S.bind(fd, sockaddr("0.0.0.0", opts.sport), 16) < 0) {
      S.close(fd);
      throw new Error(`bind to port ${opts.sport}: errno ${errno()}`);
    }
    if (S.connect(fd, sockaddr(to, port), 16) < 0 && errno() !== EINPROGRESS) {
      S.close(fd);
      throw new Error(`connect to ${to}:${port}: errno ${errno()}`);
    }
    return fd;
  });
  const rev = waitFor(fd, POLLOUT, opts.timeoutMs ?? 3000);
  const err = new Int32Array(1);
  const len = new Uint32Array([4]);
  S.getsockopt(fd, SOL_SOCKET, SO_ERROR, new Uint8Array(err.buffer), new Uint8Array(len.buffer));
  if (!(rev & POLLOUT) || err[0] !== 0) {
    S.close(fd);
    throw new Error(`no connection to ${to}:${port} (events ${rev}, error ${err[0]})`);
  }
  return fd;
}

/** Connects from `from` to a `tcpPeer` port: the source address the server saw, or
 * undefined when no connection was made or nothing came back within `timeoutMs`. */
export function askPeer(
  from: string,
  to: string,
  port: number,
  timeoutMs = 2000,
): string | undefined {
  let fd: number;
  try {
    fd = connectedFd(from, to, port, { timeoutMs });
  } catch {
    return undefined;
  }
  try {
    if (!(waitFor(fd, POLLIN, timeoutMs) & POLLIN)) return undefined;
    const buf = new Uint8Array(64);
    const n = Number(S.recv(fd, buf, BigInt(buf.length), 0));
    return n > 0 ? new TextDecoder().decode(buf.subarray(0, n)).trim() : undefined;
  } finally {
    S.close(fd);
  }
}

export const BULK = 4 * 1024 * 1024;
// A hang (a black-holed large segment) fails the script instead of the test hanging.
const BULK_SERVER = `setTimeout(() => Deno.exit(3), 30000);
const l = Deno.listen({ hostname: "0.0.0.0", port: 5201 });
console.log("ready");
const c = await l.accept();
const buf = new Uint8Array(65536);
let n = 0;
while (n < ${BULK}) { const r = await c.read(buf); if (r === null) break; n += r; }
const out = new Uint8Array(n).fill(7);
for (let w = 0; w < n;) w += await c.write(out.subarray(w));
c.close();
console.log(n);
Deno.exit(0);`;
const bulkClient = (to: string) =>
  `setTimeout(() => Deno.exit(3), 30000);
const c = await Deno.connect({ hostname: "${to}", port: 5201 });
const data = new Uint8Array(${BULK}).fill(9);
for (let w = 0; w < data.length;) w += await c.write(data.subarray(w));
const buf = new Uint8Array(65536);
let n = 0;
while (n < ${BULK}) { const r = await c.read(buf); if (r === null) break; n += r; }
console.log(n);
Deno.exit(0);`;

/** BULK bytes from the namespace at `from` to a server in the namespace at `serverNs`
 * (listening on `to`:5201) and BULK bytes back on one TCP connection: full-size segments
 * both ways (a segment a tunnel cannot carry stalls it, and the scripts exit 3 after 30 s).
 * The byte counts each side saw; throws if either side failed. */
export async function bulkBothWays(
  from: string,
  serverNs: string,
  to: string,
): Promise<{ there: number; back: number }> {
  const nsDeno = (ns: string, code: string) =>
    new Deno.Command("nsenter", {
      args: [`--net=${ns}`, Deno.execPath(), "eval", "--quiet", code],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  const server = nsDeno(serverNs, BULK_SERVER);
  const reader = server.stdout.getReader();
  const { value } = await reader.read(); // "ready"
  reader.releaseLock();
  const text = (b: Uint8Array | undefined) => new TextDecoder().decode(b).trim();
  if (!/ready/.test(text(value))) throw new Error(`bulk server: ${text(value)}`);
  const client = await nsDeno(from, bulkClient(to)).output();
  const served = await server.output();
  if (client.code !== 0) throw new Error(`bulk client (${client.code}): ${text(client.stderr)}`);
  if (served.code !== 0) throw new Error(`bulk server (${served.code}): ${text(served.stderr)}`);
  return {
    there: Number(text(served.stdout).split(/\s+/).pop()),
    back: Number(text(client.stdout)),
  };
}

// ---- the server process ----

async function serve(specs: ServerSpec[]): Promise<void> {
  const tasks: Promise<void>[] = [];
  for (const spec of specs) {
    inNetns(spec.netns, () => {
      for (const port of spec.tcp) {
        const l = Deno.listen({ hostname: "0.0.0.0", port, transport: "tcp" });
        tasks.push((async () => {
          for (;;) {
            try {
              (await l.accept()).close();
            } catch (err) {
              // A probe that reset its connection (a fixed source port) before the accept.
              const reset = err instanceof Deno.errors.NotConnected ||
                err instanceof Deno.errors.ConnectionReset;
              if (!reset) throw err;
            }
          }
        })());
      }
      for (const port of spec.tcpEcho ?? []) {
        const l = Deno.listen({ hostname: "0.0.0.0", port, transport: "tcp" });
        tasks.push((async () => {
          for await (const conn of l) {
            conn.readable.pipeTo(conn.writable).catch(() => {});
          }
        })());
      }
      for (const port of spec.tcpPeer ?? []) {
        const l = Deno.listen({ hostname: "0.0.0.0", port, transport: "tcp" });
        tasks.push((async () => {
          for await (const conn of l) {
            const peer = (conn.remoteAddr as Deno.NetAddr).hostname;
            conn.write(new TextEncoder().encode(`${peer}\n`)).catch(() => {}).finally(() =>
              conn.close()
            );
          }
        })());
      }
      for (const port of spec.udp) {
        const d = Deno.listenDatagram({ hostname: "0.0.0.0", port, transport: "udp" });
        tasks.push((async () => {
          for (;;) {
            const [data, addr] = await d.receive();
            await d.send(data, addr);
          }
        })());
      }
    });
  }
  Deno.stdout.writeSync(new TextEncoder().encode("ready\n"));
  await Promise.all(tasks);
}

if (import.meta.main && Deno.args[0] === "serve") {
  await serve(JSON.parse(Deno.args[1] ?? "[]"));
}
