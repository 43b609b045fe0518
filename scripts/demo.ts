// The main-job demo: the original project's scenario, end to end on the real kernel.
//
// The built plugin is installed the way a node has it (a CNI bin dir and a conflist in a conf
// dir) and run exactly as a runtime runs it: env vars plus the plugin's config from the
// conflist, with "name" and "cniVersion" injected as libcni does (and the cached ADD result as
// prevResult for CHECK and DEL). Two pod netns, frontend and backend, then:
//   1. default deny: frontend cannot ping backend;
//   2. the operator registers identities 1001 / 1002 with `ebpfcni endpoint add`;
//   3. `ebpfcni policy allow --src 1001 --dst 1002 --symmetric`: ping works;
//   4. `ebpfcni policy deny --src 1002 --dst 1001`: ping fails (no conntrack: replies drop);
//   5. unregister, DEL both pods, remove the netns, bridge and pins: nothing is left behind.
// Then two nodes on this machine (README "Two nodes on one machine"): node namespaces on an
// underlay, each with deploy/'s conflist ("subnet": "usePodCidr") and its own agent
// (`--routing vxlan`, masquerade on) under nsenter; pods on both; a NetworkPolicy across the
// nodes allowing client -> web and denying other -> web; web sees client's own address, a
// "world" namespace sees the node's (masquerade). All of it removed at the end.
//
// Everything it creates has a random, demo-private name (pin dir, bridge, netns, state and
// lease dirs under a temp dir), so it never touches a real installation, and is removed on
// every exit path, SIGINT/SIGTERM/SIGHUP included. Exit status: 0 when every check passed,
// 1 when one failed, 128+signal when interrupted.
//
// Run by scripts/demo.sh (`deno task demo`, which bootstraps and builds first) and by
// test/demo_test.ts. Options: --binary PATH (default $EBPFCNI_BINARY, else dist/ebpfcni),
// --subnet A.B.C.0/24 (default 10.13.0.0/24 as in the original, or a free 10.13.x.0/24).
// Needs root, bpffs on /sys/fs/bpf, ip, tc, bpftool, ping, nsenter and timeout.
import { fileURLToPath } from "node:url";
import { STAT_NAMES } from "../src/spec/bpf_layout.ts";
import { errorMessage } from "../src/spec/text.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
const NETWORK = "ebpfcni-demo";
const CNI_VERSION = "1.1.0";
const IFNAME = "eth0";
const FRONTEND_ID = 1001;
const BACKEND_ID = 1002;

// ---- options ------------------------------------------------------------------------------

interface Options {
  binary: string;
  subnet?: string;
}

function usage(): never {
  console.error("usage: demo.ts [--binary PATH] [--subnet A.B.C.0/24]");
  Deno.exit(2);
}

function parseOptions(args: string[]): Options {
  const opts: Options = { binary: Deno.env.get("EBPFCNI_BINARY") ?? `${ROOT}/dist/ebpfcni` };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const v = args[i + 1];
    if (a === "--binary" && v !== undefined) opts.binary = v;
    else if (a === "--subnet" && v !== undefined && /^\d+\.\d+\.\d+\.0\/24$/.test(v)) {
      opts.subnet = v;
    } else usage();
    i++;
  }
  return opts;
}

// ---- output -------------------------------------------------------------------------------

let passed = 0;
const failures: string[] = [];

function say(line = ""): void {
  console.log(line);
}

function indent(text: string, prefix = "      "): void {
  const body = text.replace(/^\n+/, "").trimEnd();
  if (body !== "") { for (const line of body.split("\n")) say(line === "" ? "" : prefix + line); }
}

function check(ok: boolean, what: string, detail = ""): boolean {
  if (ok) passed++;
  else failures.push(what);
  say(`  ${ok ? "PASS" : "FAIL"}  ${what}${!ok && detail ? ` (${detail})` : ""}`);
  return ok;
}

function step(n: number, title: string, does: string, expects: string): void {
  say();
  say(`== Step ${n}/5: ${title} ==`);
  say(`  does:   ${does}`);
  say(`  expect: ${expects}`);
}

function section(title: string): void {
  say();
  say(`== ${title} ==`);
}

// ---- processes ----------------------------------------------------------------------------

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Set once a signal arrives: no new process starts except for cleanup. */
let aborting = false;
const running = new Set<Deno.ChildProcess>();

class Aborted extends Error {}

async function run(
  cmd: string,
  args: string[],
  opts: { env?: Record<string, string>; stdin?: string; cleanup?: boolean } = {},
): Promise<Ran> {
  if (aborting && !opts.cleanup) throw new Aborted("interrupted");
  const child = new Deno.Command(cmd, {
    args,
    ...(opts.env ? { env: opts.env, clearEnv: true } : {}),
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  running.add(child);
  try {
    if (opts.stdin !== undefined) {
      const w = child.stdin.getWriter();
      await w.write(new TextEncoder().encode(opts.stdin));
      await w.close();
    }
    const out = await child.output();
    // Interrupted meanwhile: the signal handler cleans up; the scenario goes no further.
    if (aborting && !opts.cleanup) throw new Aborted("interrupted");
    return {
      code: out.code,
      stdout: new TextDecoder().decode(out.stdout),
      stderr: new TextDecoder().decode(out.stderr),
    };
  } finally {
    running.delete(child);
  }
}

async function ok(cmd: string, args: string[]): Promise<Ran> {
  const r = await run(cmd, args);
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} failed (exit ${r.code}): ${r.stderr.trim()}`);
  }
  return r;
}

const PATH_ENV = Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin";

// ---- what the demo creates ----------------------------------------------------------------

const suffix = Array.from(crypto.getRandomValues(new Uint8Array(4)), (b) => (b % 36).toString(36))
  .join("");

interface Pod {
  role: "frontend" | "backend";
  netns: string;
  containerId: string;
  ip: string;
  hostVeth: string;
  /** The ADD result, cached as a runtime caches it for CHECK and DEL. */
  result?: Record<string, unknown>;
  added: boolean;
  deleted: boolean;
  netnsCreated: boolean;
}

function newPod(role: Pod["role"]): Pod {
  return {
    role,
    netns: `${role}-${suffix}`,
    containerId: `demo-${role}-${suffix}`,
    ip: "",
    hostVeth: "",
    added: false,
    deleted: false,
    netnsCreated: false,
  };
}

const pods = { frontend: newPod("frontend"), backend: newPod("backend") };
const bridge = `ebdemo${suffix}`;
const pinDir = `/sys/fs/bpf/ebpfcni-demo-${suffix}`;
let tmp = "";
const paths = () => ({
  bin: `${tmp}/bin`,
  plugin: `${tmp}/bin/ebpfcni`,
  netd: `${tmp}/net.d`,
  conflist: `${tmp}/net.d/10-ebpfcni.conflist`,
  state: `${tmp}/state`,
  leases: `${tmp}/ipam`,
});

// ---- small helpers ------------------------------------------------------------------------

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

async function linkExists(name: string, netns?: string): Promise<boolean> {
  const r = await run("ip", [...(netns ? ["-n", netns] : []), "link", "show", "dev", name], {
    cleanup: true,
  });
  return r.code === 0;
}

function ipToU32(ip: string): number {
  return ip.split(".").reduce((acc, o) => acc * 256 + Number(o), 0);
}

function u32ToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

/** The first /24 in 10.13.x.0/24 (10.13.0.0/24 first) that no route on the host overlaps. */
async function pickSubnet(): Promise<string> {
  const routes = JSON.parse((await ok("ip", ["-j", "-4", "route", "show", "table", "all"])).stdout)
    .map((r: { dst: string }) => r.dst)
    .filter((d: string) => d !== "default" && /^\d/.test(d))
    .map((d: string) => {
      const [a = "", l = "32"] = d.split("/");
      return { net: ipToU32(a), len: Number(l) };
    });
  const overlaps = (base: number) =>
    routes.some(({ net, len }: { net: number; len: number }) => {
      const len2 = Math.min(len, 24);
      const mask = len2 === 0 ? 0 : (0xffffffff << (32 - len2)) >>> 0;
      return ((net & mask) >>> 0) === ((base & mask) >>> 0);
    });
  const thirds = [
    0,
    ...Array.from({ length: 254 }, (_, i) => i + 1).sort(() => Math.random() - 0.5),
  ];
  for (const x of thirds) {
    const base = ipToU32(`10.13.${x}.0`);
    if (!overlaps(base)) return `10.13.${x}.0/24`;
  }
  throw new Error("no free /24 in 10.13.0.0/16 (use --subnet)");
}

// ---- maps, observed with bpftool ----------------------------------------------------------

function bytes(hex: string[]): number[] {
  return hex.map((h) => parseInt(h, 16));
}

function le(b: number[], at = 0, n = 4): number {
  let v = 0;
  for (let i = n - 1; i >= 0; i--) v = v * 256 + (b[at + i] ?? 0);
  return v;
}

async function dump(
  map: string,
  dir = pinDir,
): Promise<{ key: string[]; value?: string[]; values?: { value: string[] }[] }[]> {
  const r = await run("bpftool", ["-j", "map", "dump", "pinned", `${dir}/${map}`], {
    cleanup: true,
  });
  if (r.code !== 0) return [];
  return JSON.parse(r.stdout);
}

/** endpoint_map as IP -> identity. */
async function endpoints(): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const e of await dump("endpoint_map")) {
    out.set(u32ToIp(le(bytes(e.key))), le(bytes(e.value ?? [])));
  }
  return out;
}

/** policy_map as "src->dst" -> action. */
async function policies(): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const e of await dump("policy_map")) {
    const k = bytes(e.key);
    out.set(`${le(k, 0)}->${le(k, 4)}`, le(bytes(e.value ?? []), 0, 1));
  }
  return out;
}

/** stats_map summed over CPUs, by counter name. */
async function counters(dir = pinDir): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const e of await dump("stats_map", dir)) {
    const name = STAT_NAMES[le(bytes(e.key))] ?? `stat${le(bytes(e.key))}`;
    out[name] = (e.values ?? []).reduce((s, v) => s + le(bytes(v.value), 0, 8), 0);
  }
  return out;
}

function describeMap(m: Map<string, number>): string {
  return m.size === 0 ? "(empty)" : [...m].map(([k, v]) => `${k}=${v}`).join(", ");
}

// ---- the plugin, run as a runtime runs it -------------------------------------------------

interface CniReply extends Ran {
  json?: Record<string, unknown>;
}

/** Finds `type` in CNI_PATH as libcni's FindInPath does. */
function findPlugin(type: string, cniPath: string): string {
  for (const dir of cniPath.split(":")) {
    if (dir !== "" && exists(`${dir}/${type}`)) return `${dir}/${type}`;
  }
  throw new Error(`plugin "${type}" not found in CNI_PATH ${cniPath}`);
}

async function cni(
  command: "ADD" | "CHECK" | "DEL",
  pod: Pod,
  opts: { cleanup?: boolean; quiet?: boolean } = {},
): Promise<CniReply> {
  const p = paths();
  // As libcni: read the conflist, take the plugin's entry, inject name and cniVersion, and
  // for CHECK and DEL add the cached ADD result as prevResult.
  const list = JSON.parse(await Deno.readTextFile(p.conflist));
  const plugin = list.plugins[0] as Record<string, unknown>;
  const conf: Record<string, unknown> = {
    ...plugin,
    name: list.name,
    cniVersion: list.cniVersion,
  };
  if (command !== "ADD" && pod.result) conf.prevResult = pod.result;
  const env = {
    CNI_COMMAND: command,
    CNI_CONTAINERID: pod.containerId,
    CNI_NETNS: `/var/run/netns/${pod.netns}`,
    CNI_IFNAME: IFNAME,
    CNI_PATH: p.bin,
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=${pod.role}`,
    PATH: PATH_ENV,
  };
  const exe = findPlugin(String(plugin.type), env.CNI_PATH);
  if (!opts.quiet) {
    say(
      `  $ CNI_COMMAND=${command} CNI_CONTAINERID=${env.CNI_CONTAINERID} CNI_NETNS=${env.CNI_NETNS} \\`,
    );
    say(`      CNI_IFNAME=${IFNAME} CNI_ARGS='${env.CNI_ARGS}' \\`);
    say(`      CNI_PATH=${env.CNI_PATH} ${exe} \\`);
    say(`      < {config of "${list.name}"${conf.prevResult ? " + prevResult" : ""}}`);
  }
  const r: CniReply = await run(exe, [], {
    env,
    stdin: JSON.stringify(conf),
    ...(opts.cleanup ? { cleanup: true } : {}),
  });
  try {
    r.json = JSON.parse(r.stdout);
  } catch { /* DEL prints nothing */ }
  if (r.code !== 0 && !opts.quiet) {
    indent(`exit ${r.code}: ${r.stdout.trim()} ${r.stderr.trim()}`);
  }
  return r;
}

// ---- the operator CLI ---------------------------------------------------------------------

/**
 * Runs `ebpfcni <args>` as the operator would (the installed binary, EBPFCNI_PIN_DIR set to
 * the demo's pins) and shows its output; true when it exits 0.
 */
async function ebpfcni(...args: string[]): Promise<boolean> {
  say(`  $ ebpfcni ${args.join(" ")}`);
  const r = await run(paths().plugin, args, { env: { PATH: PATH_ENV, EBPFCNI_PIN_DIR: pinDir } });
  indent(r.stdout);
  indent(r.stderr);
  if (r.code !== 0) say(`      (exit ${r.code})`);
  return r.code === 0;
}

/** Runs an ebpfcni command and checks it exits 0. */
async function cli(...args: string[]): Promise<boolean> {
  return check(await ebpfcni(...args), `ebpfcni ${args.join(" ")} exits 0`);
}

// ---- observations -------------------------------------------------------------------------

interface PingOutcome {
  code: number;
  summary: string;
  delta: Record<string, number>;
}

async function ping(from: Pod, to: Pod): Promise<PingOutcome> {
  const before = await counters();
  say(
    `  $ ip netns exec ${from.netns} ping -c 2 -i 0.2 -W 1 ${to.ip}   # ${from.role} -> ${to.role}`,
  );
  const r = await run("ip", [
    "netns",
    "exec",
    from.netns,
    "ping",
    "-c",
    "2",
    "-i",
    "0.2",
    "-W",
    "1",
    to.ip,
  ]);
  const after = await counters();
  const summary =
    (r.stdout + r.stderr).split("\n").find((l) => /packets transmitted|connect:/.test(l)) ??
      `exit ${r.code}`;
  const delta: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) {
    if (v !== (before[k] ?? 0)) delta[k] = v - (before[k] ?? 0);
  }
  indent(summary.trim());
  indent(
    `datapath verdicts: ${
      Object.entries(delta).map(([k, v]) => `${k} +${v}`).join(", ") || "none"
    }`,
  );
  return { code: r.code, summary, delta };
}

async function expectReach(from: Pod, to: Pod): Promise<void> {
  const o = await ping(from, to);
  check(o.code === 0, `${from.role} can ping ${to.role} (${to.ip})`, o.summary.trim());
  check((o.delta.allow ?? 0) > 0, "the classifier allowed the traffic (allow counter rose)");
}

async function expectBlocked(from: Pod, to: Pod): Promise<void> {
  const o = await ping(from, to);
  check(o.code === 1, `${from.role} cannot ping ${to.role} (${to.ip}): no reply`, o.summary.trim());
  check(
    (o.delta.drop_policy ?? 0) > 0,
    "the classifier dropped it by policy (drop_policy counter rose)",
  );
}

async function expectEndpoints(want: Record<string, number>, what: string): Promise<void> {
  const got = await endpoints();
  const same = got.size === Object.keys(want).length &&
    Object.entries(want).every(([ip, id]) => got.get(ip) === id);
  check(
    same,
    `${what}: endpoint_map is ${describeMap(got)}`,
    `expected ${describeMap(new Map(Object.entries(want)))}`,
  );
}

async function expectPolicies(want: string[], what: string): Promise<void> {
  const got = await policies();
  const same = got.size === want.length && want.every((k) => got.get(k) === 1);
  check(
    same,
    `${what}: policy_map is ${describeMap(got)}`,
    `expected ${want.map((k) => `${k}=1`).join(", ") || "(empty)"}`,
  );
}

function leaseFiles(): string[] {
  try {
    return [...Deno.readDirSync(`${paths().leases}/${NETWORK}`)]
      .map((e) => e.name)
      .filter((n) => /^\d+\.\d+\.\d+\.\d+$/.test(n));
  } catch {
    return [];
  }
}

function stateFiles(): string[] {
  try {
    return [...Deno.readDirSync(`${paths().state}/${NETWORK}`)].map((e) => e.name);
  } catch {
    return [];
  }
}

// ---- the scenario -------------------------------------------------------------------------

async function preflight(): Promise<boolean> {
  section("Preflight");
  const mounts = await Deno.readTextFile("/proc/mounts");
  const isRoot = Deno.uid() === 0;
  const bpffs = mounts.split("\n").some((l) => /^\S+ \/sys\/fs\/bpf bpf /.test(l));
  const tools: string[] = [];
  for (const t of ["ip", "tc", "bpftool", "ping"]) {
    const r = await run("sh", ["-c", `command -v ${t}`]);
    if (r.code !== 0) tools.push(t);
  }
  const bin = exists(options.binary);
  check(isRoot, "running as root", "the demo creates netns, links and pins");
  check(bpffs, "bpffs is mounted on /sys/fs/bpf", "run: bash scripts/bootstrap.sh");
  check(
    tools.length === 0,
    "ip, tc, bpftool and ping are installed",
    `missing: ${tools.join(", ")}; run bash scripts/bootstrap.sh`,
  );
  check(bin, `plugin binary ${options.binary} exists`, "run: bash scripts/build.sh");
  return isRoot && bpffs && tools.length === 0 && bin;
}

async function install(subnet: string): Promise<void> {
  section("Setup: install the plugin as on a node, create two pods");
  const p = paths();
  await Deno.mkdir(p.bin, { recursive: true });
  await Deno.mkdir(p.netd, { recursive: true });
  await Deno.copyFile(options.binary, p.plugin);
  await Deno.chmod(p.plugin, 0o755);
  say(`  $ cp ${options.binary} ${p.plugin}`);
  const conflist = {
    cniVersion: CNI_VERSION,
    name: NETWORK,
    plugins: [{
      type: "ebpfcni",
      bridge,
      pinDir,
      stateDir: p.state,
      ipam: { type: "host-local", subnet, routes: [{ dst: "0.0.0.0/0" }], dataDir: p.leases },
    }],
  };
  await Deno.writeTextFile(p.conflist, JSON.stringify(conflist, null, 2) + "\n");
  say(`  wrote ${p.conflist}:`);
  indent(JSON.stringify(conflist, null, 2), "      | ");

  const version = await run(p.plugin, [], {
    env: { CNI_COMMAND: "VERSION", CNI_PATH: p.bin, PATH: PATH_ENV },
    stdin: "{}",
  });
  let supported: string[] = [];
  try {
    supported = JSON.parse(version.stdout).supportedVersions ?? [];
  } catch { /* checked below */ }
  check(
    version.code === 0 && supported.includes(CNI_VERSION),
    `plugin answers VERSION and supports ${CNI_VERSION}`,
    version.stdout.trim(),
  );

  for (const pod of [pods.frontend, pods.backend]) {
    await ok("ip", ["netns", "add", pod.netns]);
    pod.netnsCreated = true;
    say(`  $ ip netns add ${pod.netns}   # the ${pod.role} pod's sandbox`);
  }
  for (const pod of [pods.frontend, pods.backend]) {
    say(
      `  -- ADD ${pod.role} (no EBPFCNI_IDENTITY in CNI_ARGS: the plugin registers the pod under the reserved identity 1)`,
    );
    pod.added = true; // from here on cleanup runs DEL, even if ADD is interrupted half-way
    const r = await cni("ADD", pod);
    const ips = (r.json?.ips ?? []) as { address?: string }[];
    const ifaces = (r.json?.interfaces ?? []) as { name?: string; sandbox?: string }[];
    pod.ip = (ips[0]?.address ?? "").split("/")[0] ?? "";
    pod.hostVeth = ifaces.find((i) => i.sandbox === undefined && i.name !== bridge)?.name ?? "";
    if (r.code === 0 && r.json) pod.result = r.json;
    if (
      !check(
        r.code === 0 && pod.ip !== "" && pod.hostVeth !== "",
        `ADD ${pod.role}: ${pod.ip || "?"} on ${IFNAME}, host veth ${pod.hostVeth || "?"}`,
        `exit ${r.code}`,
      )
    ) {
      throw new Error(`ADD ${pod.role} failed`);
    }
    const addr = await run("ip", ["-n", pod.netns, "-4", "-br", "addr", "show", "dev", IFNAME]);
    check(
      addr.code === 0 && addr.stdout.includes(`${pod.ip}/`),
      `${pod.netns} has ${IFNAME} with ${pod.ip}`,
      addr.stdout.trim() || addr.stderr.trim(),
    );
    const ports = await run("ip", ["-br", "link", "show", "master", bridge]);
    check(ports.stdout.includes(pod.hostVeth), `${pod.hostVeth} is a port of bridge ${bridge}`);
    const tc = await run("tc", ["filter", "show", "dev", pod.hostVeth, "ingress"]);
    check(
      /process_tc/.test(tc.stdout) && /direct-action/.test(tc.stdout),
      `classifier process_tc is on ${pod.hostVeth} tc ingress (direct-action)`,
      tc.stdout.trim(),
    );
    const chk = await cni("CHECK", pod);
    check(chk.code === 0, `CHECK ${pod.role} (with the cached ADD result as prevResult) succeeds`);
  }
}

async function scenario(): Promise<void> {
  const fe = pods.frontend;
  const be = pods.backend;

  step(
    1,
    "default deny",
    `frontend (${fe.ip}) pings backend (${be.ip}); both are registered under the reserved identity 1 and policy_map is empty`,
    "no reply: the classifier on the host veth drops what no policy allows",
  );
  await expectEndpoints({ [fe.ip]: 1, [be.ip]: 1 }, "ADD registered both pods under identity 1");
  await expectPolicies([], "no policy yet");
  await expectBlocked(fe, be);

  step(
    2,
    "register identities",
    `the operator registers frontend as ${FRONTEND_ID} and backend as ${BACKEND_ID}, as with endpointctl in the original`,
    `endpoint_map maps ${fe.ip} -> ${FRONTEND_ID} and ${be.ip} -> ${BACKEND_ID}; still no reply (no policy for ${FRONTEND_ID}/${BACKEND_ID})`,
  );
  await cli("endpoint", "add", "--ip", fe.ip, "--identity", String(FRONTEND_ID));
  await cli("endpoint", "add", "--ip", be.ip, "--identity", String(BACKEND_ID));
  await cli("endpoint", "list");
  await expectEndpoints({ [fe.ip]: FRONTEND_ID, [be.ip]: BACKEND_ID }, "identities registered");
  await expectBlocked(fe, be);

  step(
    3,
    "allow both directions",
    `ebpfcni policy allow --src ${FRONTEND_ID} --dst ${BACKEND_ID} --symmetric (no conntrack: the reply needs its own rule)`,
    "frontend can ping backend, and backend can ping frontend",
  );
  await cli(
    "policy",
    "allow",
    "--src",
    String(FRONTEND_ID),
    "--dst",
    String(BACKEND_ID),
    "--symmetric",
  );
  await expectPolicies(
    [`${FRONTEND_ID}->${BACKEND_ID}`, `${BACKEND_ID}->${FRONTEND_ID}`],
    "both directions allowed",
  );
  await expectReach(fe, be);
  await expectReach(be, fe);

  step(
    4,
    "deny the reply direction",
    `ebpfcni policy deny --src ${BACKEND_ID} --dst ${FRONTEND_ID} (deletes that allow entry)`,
    `frontend's ping fails again: its requests pass, backend's replies (${BACKEND_ID} -> ${FRONTEND_ID}) are dropped`,
  );
  await cli("policy", "deny", "--src", String(BACKEND_ID), "--dst", String(FRONTEND_ID));
  await expectPolicies([`${FRONTEND_ID}->${BACKEND_ID}`], "only frontend -> backend allowed");
  await expectBlocked(fe, be);
  // For information (pins, fill levels, counters, attached links): status scans every link
  // on the host, so it is not one of the scenario's checks.
  if (!(await ebpfcni("status"))) say("      NOTE: ebpfcni status failed (not a demo check)");

  step(
    5,
    "tear down",
    "the operator unregisters what it registered (endpoint del, policy deny), the runtime DELs both pods and removes their netns, then the demo removes its bridge and pins",
    "no veths, no leases, no state records, no endpoint or policy entries; the bridge and pins are gone",
  );
  say(
    "  note:   DEL removes a pod's endpoint entry while it still has the identity ADD gave it" +
      " (1); the operator re-registered these in step 2, so the operator removes them, as" +
      " with endpointctl del in the original",
  );
  for (const pod of [fe, be]) {
    await cli("endpoint", "del", "--ip", pod.ip);
  }
  await cli("policy", "deny", "--src", String(FRONTEND_ID), "--dst", String(BACKEND_ID));
  for (const pod of [fe, be]) {
    const r = await cni("DEL", pod);
    check(r.code === 0, `DEL ${pod.role} succeeds`);
    if (r.code === 0) pod.deleted = true;
    check(!(await linkExists(pod.hostVeth)), `host veth ${pod.hostVeth} is gone`);
    check(!(await linkExists(IFNAME, pod.netns)), `${pod.netns} has no ${IFNAME} any more`);
  }
  const ports = await run("ip", ["-br", "link", "show", "master", bridge]);
  check(ports.stdout.trim() === "", `bridge ${bridge} has no ports left`, ports.stdout.trim());
  const leases = leaseFiles();
  check(leases.length === 0, `no leases left in ${paths().leases}/${NETWORK}`, leases.join(", "));
  const states = stateFiles();
  check(
    states.length === 0,
    `no attachment state left in ${paths().state}/${NETWORK}`,
    states.join(", "),
  );
  await expectEndpoints({}, "no endpoint entries");
  await expectPolicies([], "no policy entries");
  for (const pod of [fe, be]) {
    await run("ip", ["netns", "del", pod.netns]);
    say(`  $ ip netns del ${pod.netns}`);
    pod.netnsCreated = false;
  }
  say(`  $ ip link del ${bridge}; rm -r ${pinDir}`);
  await run("ip", ["link", "del", bridge]);
  await Deno.remove(pinDir, { recursive: true }).catch(() => {});
  check(!(await linkExists(bridge)), `bridge ${bridge} is gone`);
  check(!exists(pinDir), `pin dir ${pinDir} is gone`);
}

// ---- two nodes ----------------------------------------------------------------------------
//
// A small cluster on this machine, as README's "Two nodes on one machine" runs it: an underlay
// (a namespace with a bridge), two node namespaces on it, each with the conflist of deploy/
// (kubernetes mode, "subnet": "usePodCidr") pointed at its own pin, state and lease dirs, and
// its own agent (`ebpfcni agent run --routing vxlan`, masquerade on) run under
// `nsenter --net=/var/run/netns/NODE`; one manifest directory stands for the API server (Node,
// Namespace, Pod and NetworkPolicy objects); a "world" namespace on the underlay that is no
// node. The plugin runs under nsenter in its node too, as the node's runtime runs it.

const UNDERLAY_NET = "172.31.250";
const WORLD_IP = `${UNDERLAY_NET}.3`;
const ECHO_PORT = 7000;

interface DemoNode {
  name: string;
  netns: string;
  address: string;
  podCidr: string;
  pinDir: string;
  agent?: Deno.ChildProcess | undefined;
  agentLog: string;
  created: boolean;
}

interface NodePod {
  name: "client" | "other" | "web";
  app: string;
  node: DemoNode;
  netns: string;
  containerId: string;
  ip: string;
  result?: Record<string, unknown>;
  added: boolean;
  deleted: boolean;
  created: boolean;
}

const demoNodes: DemoNode[] = ["a", "b"].map((x, i) => ({
  name: `node-${x}`,
  netns: `ebnode${x}-${suffix}`,
  address: `${UNDERLAY_NET}.${i + 1}`,
  podCidr: `10.244.${i + 1}.0/24`,
  pinDir: `/sys/fs/bpf/ebpfcni-demo-${suffix}-${x}`,
  agentLog: "",
  created: false,
}));
const [nodeA, nodeB] = demoNodes as [DemoNode, DemoNode];
const underlay = { netns: `ebunder-${suffix}`, created: false };
const world = { netns: `ebworld-${suffix}`, created: false };
const nodePods: NodePod[] = ([["client", nodeA], ["other", nodeA], ["web", nodeB]] as const).map((
  [name, node],
) => ({
  name,
  app: name,
  node,
  netns: `eb${name}-${suffix}`,
  containerId: `demo-${name}-${suffix}`,
  ip: "",
  added: false,
  deleted: false,
  created: false,
}));
const [client, other, web] = nodePods as [NodePod, NodePod, NodePod];
const echoServers = new Set<Deno.ChildProcess>();

const nodePaths = (n: DemoNode) => ({
  dir: `${tmp}/${n.name}`,
  conflist: `${tmp}/${n.name}/net.d/10-ebpfcni.conflist`,
  state: `${tmp}/${n.name}/state`,
  leases: `${tmp}/${n.name}/ipam`,
  socket: `${tmp}/${n.name}/agent.sock`,
});
const clusterDir = () => `${tmp}/cluster`;

function twoNodeStep(n: number, title: string, does: string, expects: string): void {
  say();
  say(`== Two nodes ${n}/4: ${title} ==`);
  say(`  does:   ${does}`);
  say(`  expect: ${expects}`);
}

/** Runs `cmd` in node (or pod) namespace `netns`, as `nsenter --net=` (not `ip netns exec`,
 * which remounts /sys and hides /sys/fs/bpf). */
function nsenter(netns: string, cmd: string, args: string[]): [string, string[]] {
  return ["nsenter", [`--net=/var/run/netns/${netns}`, cmd, ...args]];
}

function writeObject(obj: { kind: string; metadata: { name: string; namespace?: string } }): void {
  const m = obj.metadata;
  const path = `${clusterDir()}/${obj.kind}.${m.namespace ?? "_"}.${m.name}.json`;
  // Through a dot-file and a rename, as kubectl or an editor leaves whole files.
  Deno.writeTextFileSync(`${clusterDir()}/.tmp`, JSON.stringify(obj, null, 1));
  Deno.renameSync(`${clusterDir()}/.tmp`, path);
}

function podManifest(p: NodePod): { kind: string; metadata: { name: string; namespace: string } } {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: p.name, namespace: "demo", labels: { app: p.app } },
    spec: { nodeName: p.node.name, containers: [{ name: "c", image: "demo" }] },
    status: p.ip === ""
      ? { phase: "Pending" }
      : { phase: "Running", podIP: p.ip, podIPs: [{ ip: p.ip }] },
  } as { kind: string; metadata: { name: string; namespace: string } };
}

async function agentStatus(n: DemoNode, ...args: string[]): Promise<Ran> {
  return await run(paths().plugin, ["agent", "status", "--socket", nodePaths(n).socket, ...args], {
    env: { PATH: PATH_ENV },
  });
}

async function buildCluster(): Promise<void> {
  section("Two nodes: set up (underlay, two node namespaces, a world, the cluster's objects)");
  const ip = async (...args: string[]) => {
    say(`  $ ip ${args.join(" ")}`);
    await ok("ip", args);
  };
  await ok("ip", ["netns", "add", underlay.netns]);
  underlay.created = true;
  await ip("-n", underlay.netns, "link", "add", "ul0", "type", "bridge");
  await ok("ip", ["-n", underlay.netns, "link", "set", "ul0", "up"]);
  const hosts = [
    ...demoNodes.map((n) => [n.netns, n.address] as const),
    [
      world.netns,
      WORLD_IP,
    ] as const,
  ];
  for (const [i, [netns, address]] of hosts.entries()) {
    await ok("ip", ["netns", "add", netns]);
    const node = demoNodes.find((n) => n.netns === netns);
    if (node) node.created = true;
    else world.created = true;
    say(`  $ ip netns add ${netns}   # ${node ? node.name : "the world outside the cluster"}`);
    await ip(
      "-n",
      underlay.netns,
      "link",
      "add",
      `u${i}`,
      "type",
      "veth",
      "peer",
      "name",
      "eth0",
      "netns",
      netns,
    );
    await ok("ip", ["-n", underlay.netns, "link", "set", `u${i}`, "master", "ul0", "up"]);
    await ip("-n", netns, "addr", "add", `${address}/24`, "dev", "eth0");
    await ok("ip", ["-n", netns, "link", "set", "eth0", "up"]);
    await ok("ip", ["-n", netns, "link", "set", "lo", "up"]);
  }
  say(`  (the world has no route to the pod CIDRs: what reaches it must carry a node's address)`);

  // The cluster: what kube-controller-manager and kubelet put in the API server.
  await Deno.mkdir(clusterDir(), { recursive: true });
  for (const n of demoNodes) {
    writeObject({
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: n.name },
      spec: { podCIDR: n.podCidr, podCIDRs: [n.podCidr] },
      status: { addresses: [{ type: "InternalIP", address: n.address }] },
    } as { kind: string; metadata: { name: string } });
  }
  writeObject({
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name: "demo" },
  } as { kind: string; metadata: { name: string } });
  for (const p of nodePods) writeObject(podManifest(p));
  const policy = {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: "web-from-client", namespace: "demo" },
    spec: {
      podSelector: { matchLabels: { app: "web" } },
      policyTypes: ["Ingress"],
      ingress: [{ from: [{ podSelector: { matchLabels: { app: "client" } } }] }],
    },
  };
  writeObject(policy);
  say(
    `  wrote ${clusterDir()} (stands for the API server): Nodes ${nodeA.name} (${nodeA.podCidr}, ${nodeA.address}) and ${nodeB.name} (${nodeB.podCidr}, ${nodeB.address}), Namespace demo, Pods client and other on ${nodeA.name}, web on ${nodeB.name}, and:`,
  );
  indent(JSON.stringify(policy.spec), "      | NetworkPolicy demo/web-from-client: ");

  // Each node: deploy/'s conflist with this node's own directories, and its agent.
  const deployed = JSON.parse(await Deno.readTextFile(`${ROOT}/deploy/10-ebpfcni.conflist`));
  for (const n of demoNodes) {
    const p = nodePaths(n);
    await Deno.mkdir(`${p.dir}/net.d`, { recursive: true });
    const plugin = deployed.plugins[0];
    const conflist = {
      ...deployed,
      plugins: [{
        ...plugin,
        pinDir: n.pinDir,
        stateDir: p.state,
        agentSocket: p.socket,
        ipam: { ...plugin.ipam, dataDir: p.leases },
      }],
    };
    await Deno.writeTextFile(p.conflist, JSON.stringify(conflist, null, 2) + "\n");
    say(
      `  ${n.name}: ${p.conflist} is deploy/10-ebpfcni.conflist with this node's pinDir, stateDir, agentSocket and dataDir ("subnet": "${
        conflist.plugins[0].ipam.subnet
      }")`,
    );
    const args = [
      "agent",
      "run",
      "--manifests",
      clusterDir(),
      "--node",
      n.name,
      "--pin-dir",
      n.pinDir,
      "--state-dir",
      p.state,
      "--socket",
      p.socket,
      "--routing",
      "vxlan",
      "--metrics-address",
      "",
      "--log-level",
      "info",
    ];
    say(
      `  $ nsenter --net=/var/run/netns/${n.netns} ebpfcni ${
        args.map((a) => a === "" ? "''" : a).join(" ")
      } &`,
    );
    if (aborting) throw new Aborted("interrupted");
    const [cmd, cmdArgs] = nsenter(n.netns, paths().plugin, args);
    const child = new Deno.Command(cmd, {
      args: cmdArgs,
      env: { PATH: PATH_ENV },
      clearEnv: true,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    n.agent = child;
    (async () => {
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
        n.agentLog += chunk;
      }
    })();
  }
  for (const n of demoNodes) {
    let synced: Ran = { code: -1, stdout: "", stderr: "" };
    for (let i = 0; i < 100 && !exists(nodePaths(n).socket); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    synced = await agentStatus(n, "--wait-synced", "15");
    check(
      synced.code === 0,
      `${n.name}'s agent serves and has synced`,
      synced.stderr.trim() + n.agentLog.slice(-800),
    );
  }
}

async function cniOnNode(
  command: "ADD" | "DEL",
  pod: NodePod,
  opts: { cleanup?: boolean; quiet?: boolean } = {},
): Promise<CniReply> {
  const p = nodePaths(pod.node);
  const list = JSON.parse(await Deno.readTextFile(p.conflist));
  const conf: Record<string, unknown> = {
    ...list.plugins[0],
    name: list.name,
    cniVersion: list.cniVersion,
  };
  if (command !== "ADD" && pod.result) conf.prevResult = pod.result;
  const env = {
    CNI_COMMAND: command,
    CNI_CONTAINERID: pod.containerId,
    CNI_NETNS: `/var/run/netns/${pod.netns}`,
    CNI_IFNAME: IFNAME,
    CNI_PATH: paths().bin,
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=${pod.name}`,
    PATH: PATH_ENV,
  };
  if (!opts.quiet) {
    say(
      `  $ nsenter --net=/var/run/netns/${pod.node.netns} env CNI_COMMAND=${command} CNI_NETNS=${env.CNI_NETNS} CNI_ARGS='${env.CNI_ARGS}' ... ebpfcni < ${p.conflist}`,
    );
  }
  const [cmd, args] = nsenter(pod.node.netns, paths().plugin, []);
  const r: CniReply = await run(cmd, args, {
    env,
    stdin: JSON.stringify(conf),
    ...(opts.cleanup ? { cleanup: true } : {}),
  });
  try {
    r.json = JSON.parse(r.stdout);
  } catch { /* DEL prints nothing */ }
  if (r.code !== 0 && !opts.quiet) indent(`exit ${r.code}: ${r.stdout.trim()} ${r.stderr.trim()}`);
  return r;
}

async function nodePing(
  from: NodePod,
  to: string,
  what: string,
): Promise<{ ok: boolean; drops: number }> {
  const before = await counters(nodeB.pinDir);
  say(`  $ nsenter --net=/var/run/netns/${from.netns} ping -c 2 -i 0.2 -W 1 ${to}   # ${what}`);
  const r = await run(...nsenter(from.netns, "ping", ["-c", "2", "-i", "0.2", "-W", "1", to]));
  const after = await counters(nodeB.pinDir);
  const summary = (r.stdout + r.stderr).split("\n").find((l) => /packets transmitted/.test(l));
  indent((summary ?? `exit ${r.code}`).trim());
  const drops = Object.entries(after)
    .filter(([k]) => k.startsWith("drop"))
    .reduce((s, [k, v]) => s + v - (before[k] ?? 0), 0);
  return { ok: r.code === 0, drops };
}

/** A TCP server in `netns` that answers one connection with the address it came from. */
async function echoPeer(netns: string): Promise<Deno.ChildProcess> {
  const code = `const l = Deno.listen({ port: ${ECHO_PORT} }); console.log("listening");` +
    ` const c = await l.accept(); await c.write(new TextEncoder().encode(` +
    `(c.remoteAddr as Deno.NetAddr).hostname + "\\n")); c.close(); l.close();`;
  const [cmd, args] = nsenter(netns, Deno.execPath(), ["eval", "--ext=ts", code]);
  const child = new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "null" })
    .spawn();
  echoServers.add(child);
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const first = await reader.read();
  reader.releaseLock();
  if (!String(first.value ?? "").includes("listening")) {
    throw new Error(`the echo server in ${netns} did not start`);
  }
  return child;
}

/** Stops an echo server that no connection reached (it exits by itself after one). */
async function stopEcho(server: Deno.ChildProcess): Promise<void> {
  try {
    server.kill("SIGKILL");
  } catch { /* already exited */ }
  await server.status;
  echoServers.delete(server);
}

/** Connects from pod `from` to `to`:7000; what the server saw as the source, or "". */
async function seenBy(from: NodePod, to: string): Promise<string> {
  const code = `const c = await Deno.connect({ hostname: "${to}", port: ${ECHO_PORT} });` +
    ` const b = new Uint8Array(64); const n = await c.read(b);` +
    ` console.log(new TextDecoder().decode(b.subarray(0, n ?? 0)).trim());`;
  say(
    `  $ nsenter --net=/var/run/netns/${from.netns} <connect to ${to}:${ECHO_PORT}>   # the server answers with the source address it saw`,
  );
  const r = await run(...nsenter(from.netns, "timeout", ["5", Deno.execPath(), "eval", code]));
  const seen = r.code === 0 ? r.stdout.trim() : "";
  indent(seen === "" ? `no answer (exit ${r.code})` : `the server saw ${seen}`);
  return seen;
}

async function twoNodes(): Promise<void> {
  await buildCluster();

  twoNodeStep(
    1,
    "routing between the nodes",
    "each agent reads the Node objects and programs its node: a vxlan device over the underlay, a route per remote pod CIDR",
    "agent status lists both nodes, the remote one routed; ebpfcni.vxlan with MTU 1450",
  );
  for (const n of demoNodes) {
    say(`  $ ebpfcni agent status --socket ${nodePaths(n).socket}   # ${n.name}`);
    const st = await agentStatus(n);
    const nodesPart = st.stdout.split("\n").filter((l) => /^\s*(node|routing|masquerade)/i.test(l));
    indent(nodesPart.join("\n"));
    const js = await agentStatus(n, "--json");
    let routed = false;
    try {
      const nodes = JSON.parse(js.stdout).nodes as { name: string; routing: { routed: boolean } }[];
      const remote = demoNodes.find((m) => m !== n)!;
      routed = nodes.find((m) => m.name === remote.name)?.routing.routed === true;
    } catch { /* checked below */ }
    check(routed, `${n.name} routes the other node's pod CIDR`, js.stdout.slice(0, 400));
    const route = await run("ip", ["-n", n.netns, "route", "show", "proto", "235"]);
    say(`  $ ip -n ${n.netns} route show proto 235`);
    indent(route.stdout);
  }

  twoNodeStep(
    2,
    "pods on both nodes (usePodCidr)",
    `CNI ADD of client and other on ${nodeA.name}, web on ${nodeB.name}, each by its node's plugin`,
    "each pod gets an address from its node's pod CIDR (asked of the agent) and the tunnel's MTU",
  );
  for (const pod of nodePods) {
    await ok("ip", ["netns", "add", pod.netns]);
    pod.created = true;
    pod.added = true;
    const r = await cniOnNode("ADD", pod);
    const ips = (r.json?.ips ?? []) as { address?: string }[];
    pod.ip = (ips[0]?.address ?? "").split("/")[0] ?? "";
    if (r.code === 0 && r.json) pod.result = r.json;
    const cidrBase = pod.node.podCidr.replace(/0\/24$/, "");
    if (
      !check(
        r.code === 0 && pod.ip.startsWith(cidrBase),
        `ADD ${pod.name} on ${pod.node.name}: ${pod.ip || "?"}, in ${pod.node.podCidr}`,
        `exit ${r.code}`,
      )
    ) throw new Error(`ADD ${pod.name} failed`);
    // kubelet reports the address: the other node's agent learns the pod's identity.
    writeObject(podManifest(pod));
  }
  const link = JSON.parse(
    (await run("ip", ["-n", client.netns, "-j", "link", "show", "dev", IFNAME])).stdout || "[]",
  );
  check(
    link[0]?.mtu === 1450,
    `client's ${IFNAME} has MTU ${link[0]?.mtu} (the underlay's 1500 - 50)`,
  );
  for (const n of demoNodes) {
    const s = await agentStatus(n, "--wait-synced", "15");
    check(s.code === 0, `${n.name}'s agent has applied the pods' addresses`, s.stderr.trim());
  }

  twoNodeStep(
    3,
    "NetworkPolicy across nodes",
    `demo/web-from-client isolates web (${nodeB.name}) for ingress and allows the app=client pods; client and other (${nodeA.name}) ping web`,
    "client reaches web through the tunnel, with its own address; other is dropped on web's node",
  );
  const allowed = await nodePing(client, web.ip, `client (${nodeA.name}) -> web (${nodeB.name})`);
  check(allowed.ok, `client can ping web across nodes (${client.ip} -> ${web.ip})`);
  const denied = await nodePing(other, web.ip, `other (${nodeA.name}) -> web (${nodeB.name})`);
  check(!denied.ok, `other cannot ping web across nodes: no reply`);
  check(
    denied.drops > 0,
    `${nodeB.name}'s classifier dropped it (its drop counters rose by ${denied.drops})`,
  );
  const webServer = await echoPeer(web.netns);
  const seenWeb = await seenBy(client, web.ip);
  await stopEcho(webServer);
  check(
    seenWeb === client.ip,
    `web sees client's own address ${client.ip} (pod to pod is not masqueraded)`,
    seenWeb,
  );

  twoNodeStep(
    4,
    "masquerade to the world",
    `client connects to the world (${WORLD_IP}), a namespace on the underlay that is no node`,
    `the world sees ${nodeA.name}'s address ${nodeA.address} (nftables table ip ebpfcni on ${nodeA.name})`,
  );
  const worldServer = await echoPeer(world.netns);
  const seenWorld = await seenBy(client, WORLD_IP);
  await stopEcho(worldServer);
  check(
    seenWorld === nodeA.address,
    `the world sees ${nodeA.name}'s address ${nodeA.address}, not ${client.ip}`,
    seenWorld,
  );
}

/** Two nodes torn down: DEL the pods on their nodes, stop the agents, remove the namespaces
 * (with them the bridges, the vxlan devices and the nftables tables) and the pins. */
async function cleanupTwoNodes(removed: string[]): Promise<string[]> {
  for (const s of echoServers) {
    try {
      s.kill("SIGKILL");
    } catch { /* exited */ }
    await s.status.catch(() => {});
  }
  for (const pod of nodePods) {
    if (pod.added && !pod.deleted && tmp !== "" && exists(nodePaths(pod.node).conflist)) {
      const r = await cniOnNode("DEL", pod, { cleanup: true, quiet: true });
      removed.push(`DEL ${pod.name} (exit ${r.code})`);
      pod.deleted = r.code === 0;
    }
  }
  for (const n of demoNodes) {
    if (n.agent) {
      try {
        n.agent.kill("SIGTERM");
      } catch { /* exited */ }
      await n.agent.status;
      removed.push(`agent of ${n.name}`);
      n.agent = undefined;
    }
  }
  const all = [
    ...nodePods.map((p) => p.netns),
    ...demoNodes.map((n) => n.netns),
    world.netns,
    underlay.netns,
  ];
  for (const ns of all) {
    if (exists(`/var/run/netns/${ns}`)) {
      await run("ip", ["netns", "del", ns], { cleanup: true });
      removed.push(`netns ${ns}`);
    }
  }
  for (const n of demoNodes) {
    if (exists(n.pinDir)) {
      await Deno.remove(n.pinDir, { recursive: true }).catch(() => {});
      removed.push(`pins ${n.pinDir}`);
    }
  }
  const left: string[] = [];
  for (const ns of all) if (exists(`/var/run/netns/${ns}`)) left.push(`netns ${ns}`);
  for (const n of demoNodes) if (exists(n.pinDir)) left.push(`pins ${n.pinDir}`);
  return left;
}

// ---- cleanup ------------------------------------------------------------------------------

let cleaning: Promise<boolean> | undefined;

/** Removes whatever is left, whatever state the demo got to; true when nothing remains. */
function cleanup(): Promise<boolean> {
  cleaning ??= (async () => {
    section("Cleanup");
    const removed: string[] = [];
    for (const pod of [pods.frontend, pods.backend]) {
      if (pod.added && !pod.deleted && tmp !== "" && exists(paths().conflist)) {
        const r = await cni("DEL", pod, { cleanup: true, quiet: true });
        removed.push(`DEL ${pod.role} (exit ${r.code})`);
        pod.deleted = r.code === 0;
      }
      if (pod.hostVeth !== "" && await linkExists(pod.hostVeth)) {
        await run("ip", ["link", "del", pod.hostVeth], { cleanup: true });
        removed.push(`link ${pod.hostVeth}`);
      }
      if (pod.netnsCreated || exists(`/var/run/netns/${pod.netns}`)) {
        await run("ip", ["netns", "del", pod.netns], { cleanup: true });
        removed.push(`netns ${pod.netns}`);
      }
    }
    if (await linkExists(bridge)) {
      await run("ip", ["link", "del", bridge], { cleanup: true });
      removed.push(`bridge ${bridge}`);
    }
    const leftOfNodes = await cleanupTwoNodes(removed);
    if (exists(pinDir)) {
      await Deno.remove(pinDir, { recursive: true }).catch(() => {});
      removed.push(`pins ${pinDir}`);
    }
    if (tmp !== "" && exists(tmp)) {
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
      removed.push(`dir ${tmp}`);
    }
    if (removed.length > 0) say(`  removed: ${removed.join(", ")}`);
    const left: string[] = [...leftOfNodes];
    for (const pod of [pods.frontend, pods.backend]) {
      if (exists(`/var/run/netns/${pod.netns}`)) left.push(`netns ${pod.netns}`);
      if (pod.hostVeth !== "" && await linkExists(pod.hostVeth)) left.push(`link ${pod.hostVeth}`);
    }
    if (await linkExists(bridge)) left.push(`bridge ${bridge}`);
    if (exists(pinDir)) left.push(`pins ${pinDir}`);
    if (tmp !== "" && exists(tmp)) left.push(`dir ${tmp}`);
    return check(
      left.length === 0,
      "nothing left behind (netns, veths, bridge, pins, temp dir; the two nodes' agents, netns and pins)",
      `left: ${left.join(", ")}`,
    );
  })();
  return cleaning;
}

// ---- main ---------------------------------------------------------------------------------

const SIGNALS: Record<string, number> = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 };

function onSignal(sig: Deno.Signal): void {
  if (aborting) return;
  aborting = true;
  say();
  say(`Interrupted by ${sig}: stopping and cleaning up`);
  // Stop what the scenario is running, but never the cleanup's own commands.
  if (!cleaning) {
    for (const child of running) {
      try {
        child.kill("SIGTERM");
      } catch { /* already exited */ }
    }
  }
  // Let killed children finish (and their pipes drain) before undoing what they did.
  (async () => {
    const deadline = Date.now() + 5000;
    while (running.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await cleanup();
    say("RESULT: INTERRUPTED");
    Deno.exit(128 + (SIGNALS[sig] ?? 2));
  })();
}

const options = parseOptions(Deno.args);

async function main(): Promise<number> {
  for (const sig of Object.keys(SIGNALS) as Deno.Signal[]) {
    Deno.addSignalListener(sig, () => onSignal(sig));
  }
  say("ebpfcni demo: identity-based policy between two pods (the original project's scenario)");
  let subnet = options.subnet;
  try {
    if (!(await preflight())) return 1;
    subnet ??= await pickSubnet();
    tmp = await Deno.makeTempDir({ prefix: `ebpfcni-demo-${suffix}-` });
    say();
    say("Demo-private names (nothing of a real installation is touched):");
    say(`  work dir:   ${tmp}   (CNI bin dir, conf dir, state and lease dirs)`);
    say(
      `  pin dir:    ${pinDir}   (every ebpfcni command below runs with EBPFCNI_PIN_DIR=${pinDir})`,
    );
    say(`  bridge:     ${bridge}   subnet: ${subnet}`);
    say(`  netns:      ${pods.frontend.netns} (frontend), ${pods.backend.netns} (backend)`);
    say(
      `  two nodes:  ${nodeA.netns} (${nodeA.name}), ${nodeB.netns} (${nodeB.name}) on underlay ${underlay.netns}, world ${world.netns}`,
    );
    say(`  two-node pods: ${nodePods.map((p) => `${p.netns} (${p.name})`).join(", ")}`);
    say(`  two-node pin dirs: ${nodeA.pinDir}, ${nodeB.pinDir}`);
    await install(subnet);
    await scenario();
    await twoNodes();
  } catch (err) {
    if (err instanceof Aborted) await new Promise(() => {}); // the signal handler exits
    check(false, "the demo ran to the end", errorMessage(err));
  } finally {
    if (!aborting) await cleanup();
  }
  say();
  if (failures.length === 0) {
    say(`RESULT: PASS (${passed} checks)`);
    return 0;
  }
  say(`RESULT: FAIL (${failures.length} of ${passed + failures.length} checks failed)`);
  for (const f of failures) say(`  - ${f}`);
  return 1;
}

if (import.meta.main) {
  const code = await main();
  if (!aborting) Deno.exit(code);
}
