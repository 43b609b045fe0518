// Shared helpers for the real-kernel datapath tests: random names, pin directories, network
// namespaces and veth pairs made with `ip`, observation through `ip`/`tc`/`bpftool`, and
// Ethernet frame builders.
//
// Run as a script it sends raw frames on an interface of the calling network namespace
// (the tests run it under `ip netns exec`): `_kernel.ts send <ifname> <hex frame>...`.

/** Random hex, for names that parallel and repeated runs never share. */
export function randomHex(bytes = 4): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => {
    return b.toString(16).padStart(2, "0");
  }).join("");
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

const decoder = new TextDecoder();

/** Runs a command to completion; never throws for a non-zero exit. */
export async function tryRun(
  cmd: string,
  args: string[],
  env?: Record<string, string>,
): Promise<RunResult> {
  const out = await new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    ...(env ? { env } : {}),
  }).output();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/** Runs a command and returns its stdout; throws with its stderr when it fails. */
export async function run(cmd: string, args: string[]): Promise<string> {
  const r = await tryRun(cmd, args);
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} exited ${r.code}: ${r.stderr.trim()}`);
  }
  return r.stdout;
}

/** Runs a command that prints JSON (bpftool -j, ip -j, tc -j) and parses it. */
export async function runJson<T = unknown>(cmd: string, args: string[]): Promise<T> {
  return JSON.parse(await run(cmd, args)) as T;
}

export function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/** Gives `fn` a fresh, not yet created pin directory on bpffs and removes it afterwards. */
export async function withPinDir<T>(fn: (pinDir: string) => T | Promise<T>): Promise<T> {
  const pinDir = `/sys/fs/bpf/ebpfcni-test-${randomHex()}`;
  try {
    return await fn(pinDir);
  } finally {
    if (exists(pinDir)) Deno.removeSync(pinDir, { recursive: true });
  }
}

export async function netnsExists(name: string): Promise<boolean> {
  const out = await run("ip", ["netns", "list"]);
  return out.split("\n").some((line) => line.split(" ")[0] === name);
}

export async function linkExists(name: string, netns?: string): Promise<boolean> {
  const args = netns ? ["-n", netns, "link", "show", "dev", name] : ["link", "show", "dev", name];
  return (await tryRun("ip", args)).code === 0;
}

/** A veth pair: `host` in the calling (root) namespace, `peer` in the throwaway `netns`. */
export interface Veth {
  netns: string;
  host: string;
  peer: string;
}

/** Creates a network namespace and a veth pair into it, both up, and removes them (and
 * checks they are gone) after `fn`. */
export async function withVeth<T>(fn: (veth: Veth) => T | Promise<T>): Promise<T> {
  const id = randomHex();
  const veth: Veth = { netns: `ebpfcni-test-${id}`, host: `ebt${id}h`, peer: `ebt${id}p` };
  let failure: unknown;
  try {
    await run("ip", ["netns", "add", veth.netns]);
    await run("ip", [
      "link",
      "add",
      veth.host,
      "type",
      "veth",
      "peer",
      "name",
      veth.peer,
      "netns",
      veth.netns,
    ]);
    // Keep IPv6 autoconfiguration quiet on both ends so only the frames a test sends reach
    // the program (the stats counters are per program, not per test). A kernel without
    // IPv6 has nothing to quiet, so a failure here is fine.
    await tryRun("sysctl", ["-qw", `net.ipv6.conf.${veth.host}.disable_ipv6=1`]);
    await tryRun("ip", [
      "netns",
      "exec",
      veth.netns,
      "sysctl",
      "-qw",
      `net.ipv6.conf.${veth.peer}.disable_ipv6=1`,
    ]);
    await run("ip", ["link", "set", veth.host, "up"]);
    await run("ip", ["-n", veth.netns, "link", "set", veth.peer, "up"]);
    return await fn(veth);
  } catch (err) {
    failure = err;
    throw err;
  } finally {
    await tryRun("ip", ["link", "del", veth.host]);
    await tryRun("ip", ["netns", "del", veth.netns]);
    const leftovers = [];
    if (await linkExists(veth.host)) leftovers.push(`link ${veth.host}`);
    if (await netnsExists(veth.netns)) leftovers.push(`netns ${veth.netns}`);
    // Report leftovers unless the test already failed for another reason.
    if (leftovers.length && failure === undefined) {
      // deno-lint-ignore no-unsafe-finally
      throw new Error(`left behind: ${leftovers.join(", ")}`);
    }
  }
}

/** Sends raw Ethernet frames out of `ifname` in `netns` (through an AF_PACKET socket in a
 * child process, since this process stays in the root namespace). */
export async function sendFrames(
  netns: string,
  ifname: string,
  frames: Uint8Array[],
): Promise<void> {
  const hex = frames.map((f) => Array.from(f, (b) => b.toString(16).padStart(2, "0")).join(""));
  await run("ip", [
    "netns",
    "exec",
    netns,
    Deno.execPath(),
    "run",
    "--quiet",
    "--no-lock",
    "--no-config",
    "--allow-ffi",
    new URL(import.meta.url).pathname,
    "send",
    ifname,
    ...hex,
  ]);
}

// ---- frames ----

export const ETH_P_IP = 0x0800;
export const ETH_P_ARP = 0x0806;
const SRC_MAC = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
const DST_MAC = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];

/** Dotted IPv4 to the host-order u32 the maps use. */
export function ip4(dotted: string): number {
  const parts = dotted.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !(p >= 0 && p <= 255))) {
    throw new Error(`bad IPv4 address ${dotted}`);
  }
  return parts.reduce((acc, p) => acc * 256 + p, 0);
}

/** An Ethernet header with `ethertype`, followed by `payloadLength` zero bytes. */
export function ethFrame(ethertype: number, payloadLength: number): Uint8Array<ArrayBuffer> {
  const f = new Uint8Array(14 + payloadLength);
  f.set(DST_MAC, 0);
  f.set(SRC_MAC, 6);
  new DataView(f.buffer).setUint16(12, ethertype);
  return f;
}

/** An Ethernet + IPv4 + UDP frame from `src` to `dst` (host-order u32), with a valid IP
 * header checksum. */
export function ipv4Frame(src: number, dst: number): Uint8Array<ArrayBuffer> {
  const payload = 8 + 4; // udp header + 4 bytes
  const f = ethFrame(ETH_P_IP, 20 + payload);
  const v = new DataView(f.buffer);
  const ip = 14;
  v.setUint8(ip, 0x45); // version 4, IHL 5
  v.setUint16(ip + 2, 20 + payload); // total length
  v.setUint8(ip + 8, 64); // ttl
  v.setUint8(ip + 9, 17); // UDP
  v.setUint32(ip + 12, src);
  v.setUint32(ip + 16, dst);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += v.getUint16(ip + i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  v.setUint16(ip + 10, ~sum & 0xffff);
  v.setUint16(ip + 20, 40000); // udp source port
  v.setUint16(ip + 22, 9); // udp destination port (discard)
  v.setUint16(ip + 24, payload);
  return f;
}

/** A broadcast ARP request (who-has `target` tell `sender`). */
export function arpFrame(sender: number, target: number): Uint8Array<ArrayBuffer> {
  const f = ethFrame(ETH_P_ARP, 28);
  f.fill(0xff, 0, 6);
  const v = new DataView(f.buffer);
  v.setUint16(14, 1); // hardware type Ethernet
  v.setUint16(16, ETH_P_IP);
  v.setUint8(18, 6);
  v.setUint8(19, 4);
  v.setUint16(20, 1); // request
  f.set(SRC_MAC, 22);
  v.setUint32(28, sender);
  v.setUint32(38, target);
  return f;
}

// ---- frame sender (runs inside the namespace) ----

function sendMain(ifname: string, hexFrames: string[]): void {
  const libc = Deno.dlopen(
    "libc.so.6",
    {
      socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
      sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
      close: { parameters: ["i32"], result: "i32" },
      if_nametoindex: { parameters: ["buffer"], result: "u32" },
      __errno_location: { parameters: [], result: "pointer" },
    } as const,
  );
  const errno = () => {
    const p = libc.symbols.__errno_location();
    return p ? new Deno.UnsafePointerView(p).getInt32() : 0;
  };
  const AF_PACKET = 17;
  const SOCK_RAW = 3;
  const ifindex = libc.symbols.if_nametoindex(new TextEncoder().encode(`${ifname}\0`));
  if (!ifindex) throw new Error(`no interface ${ifname}`);
  // Protocol 0: the socket only sends, it receives nothing.
  const fd = libc.symbols.socket(AF_PACKET, SOCK_RAW, 0);
  if (fd < 0) throw new Error(`socket(AF_PACKET): errno ${errno()}`);
  try {
    const addr = new Uint8Array(20); // struct sockaddr_ll
    const v = new DataView(addr.buffer);
    v.setUint16(0, AF_PACKET, true);
    v.setInt32(4, ifindex, true);
    v.setUint8(11, 6);
    for (const hex of hexFrames) {
      const frame = Uint8Array.from(hex.match(/../g) ?? [], (b) => parseInt(b, 16));
      addr.set(frame.subarray(0, 6), 12); // sll_addr: destination MAC
      const n = Number(libc.symbols.sendto(fd, frame, BigInt(frame.length), 0, addr, 20));
      if (n !== frame.length) throw new Error(`sendto ${ifname}: ${n}, errno ${errno()}`);
    }
  } finally {
    libc.symbols.close(fd);
    libc.close();
  }
}

if (import.meta.main) {
  const [cmd, ifname, ...frames] = Deno.args;
  if (cmd !== "send" || !ifname) {
    console.error("usage: _kernel.ts send <ifname> <hex frame>...");
    Deno.exit(2);
  }
  sendMain(ifname, frames);
}
