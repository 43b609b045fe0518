// The main-job demo (scripts/demo.sh -> scripts/demo.ts) run as a subprocess, as `deno task
// demo` runs it but without bootstrap and build (EBPFCNI_DEMO_NO_BUILD=1: the tests use the
// dist/ebpfcni already built, like every other test). Checks the exit status, the step and
// result lines, and that nothing the demo created is left: netns, veths, bridge, pins, temp
// dir, and the two-node part's node, pod, world and underlay namespaces and pin dirs; also when
// the demo is interrupted with SIGINT half-way.
// Needs root, bpffs on /sys/fs/bpf, ip, tc, bpftool, ping and `bash scripts/build.sh`.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
const BINARY = Deno.env.get("EBPFCNI_BINARY") ?? `${ROOT}/dist/ebpfcni`;

function demoCommand(): Deno.Command {
  try {
    Deno.statSync(BINARY);
  } catch {
    throw new Error(`${BINARY} is missing: run "bash scripts/build.sh" first`);
  }
  return new Deno.Command("bash", {
    args: ["scripts/demo.sh", "--binary", BINARY],
    cwd: ROOT,
    env: { EBPFCNI_DEMO_NO_BUILD: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

/** What the demo says it created (its header lines and ADD checks). */
interface Created {
  workDir: string;
  pinDir: string;
  bridge: string;
  netns: string[];
  veths: string[];
  /** The two-node part's pin dirs. */
  pinDirs: string[];
}

function created(out: string): Created {
  const one = (re: RegExp): string => {
    const m = re.exec(out);
    assert.ok(m?.[1], `no match for ${re} in the demo output:\n${out}`);
    return m[1];
  };
  const ns = /netns: +(\S+) \(frontend\), (\S+) \(backend\)/.exec(out);
  assert.ok(ns?.[1] && ns[2], "demo output names no netns");
  const nodes = /two nodes: +(\S+) \(node-a\), (\S+) \(node-b\) on underlay (\S+), world (\S+)/
    .exec(out);
  assert.ok(nodes, "demo output names no two-node namespaces");
  const nodePods = [...one(/two-node pods: +(.*)/).matchAll(/(\S+) \(\w+\)/g)].map((m) => m[1]!);
  assert.equal(nodePods.length, 3, "three two-node pods");
  return {
    workDir: one(/work dir: +(\S+)/),
    pinDir: one(/pin dir: +(\S+)/),
    bridge: one(/bridge: +(\S+)/),
    netns: [ns[1], ns[2], ...nodes.slice(1, 5).map((n) => n!), ...nodePods],
    veths: [...out.matchAll(/host veth (veth[0-9a-f]+)/g)].map((m) => m[1] ?? ""),
    pinDirs: one(/two-node pin dirs: +(.*)/).split(", "),
  };
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

async function linkExists(name: string): Promise<boolean> {
  const r = await new Deno.Command("ip", {
    args: ["link", "show", "dev", name],
    stdout: "null",
    stderr: "null",
  })
    .output();
  return r.code === 0;
}

async function assertNothingLeft(c: Created): Promise<void> {
  assert.ok(c.pinDir.startsWith("/sys/fs/bpf/ebpfcni-demo-"), `demo-private pin dir: ${c.pinDir}`);
  assert.ok(!exists(c.workDir), `work dir ${c.workDir} left behind`);
  assert.ok(!exists(c.pinDir), `pin dir ${c.pinDir} left behind`);
  assert.ok(!(await linkExists(c.bridge)), `bridge ${c.bridge} left behind`);
  for (const n of c.netns) assert.ok(!exists(`/var/run/netns/${n}`), `netns ${n} left behind`);
  for (const v of c.veths) assert.ok(!(await linkExists(v)), `veth ${v} left behind`);
  assert.equal(c.pinDirs.length, 2);
  for (const p of c.pinDirs) {
    assert.ok(p.startsWith("/sys/fs/bpf/ebpfcni-demo-"), `demo-private pin dir: ${p}`);
    assert.ok(!exists(p), `pin dir ${p} left behind`);
  }
}

Deno.test("demo: walks the original scenario, then two nodes (routing, policy across nodes, masquerade), every check passes, nothing is left", async () => {
  const out = await demoCommand().output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `demo failed (exit ${out.code}):\n${stdout}\n${stderr}`);

  for (
    const line of [
      "== Step 1/5: default deny ==",
      "== Step 2/5: register identities ==",
      "== Step 3/5: allow both directions ==",
      "== Step 4/5: deny the reply direction ==",
      "== Step 5/5: tear down ==",
    ]
  ) assert.ok(stdout.includes(line), `missing "${line}"`);
  // Each step's expectation, in order.
  const expected = [
    /PASS {2}ADD frontend: (\d+\.){3}\d+ on eth0, host veth veth/,
    /PASS {2}ADD backend: /,
    /Step 1\/5[\s\S]*?PASS {2}frontend cannot ping backend/,
    /\$ ebpfcni endpoint add --ip \S+ --identity 1001\n[\s\S]*?PASS {2}ebpfcni endpoint add --ip \S+ --identity 1001 exits 0/,
    /PASS {2}ebpfcni endpoint add --ip \S+ --identity 1002 exits 0/,
    /PASS {2}identities registered: endpoint_map is .*=100[12], .*=100[12]/,
    /PASS {2}ebpfcni policy allow --src 1001 --dst 1002 --symmetric exits 0/,
    /PASS {2}frontend can ping backend/,
    /PASS {2}backend can ping frontend/,
    /PASS {2}ebpfcni policy deny --src 1002 --dst 1001 exits 0/,
    /PASS {2}frontend cannot ping backend/,
    /PASS {2}DEL frontend succeeds/,
    /PASS {2}DEL backend succeeds/,
    /PASS {2}no leases left/,
    /PASS {2}no endpoint entries: endpoint_map is \(empty\)/,
    // Two nodes: routing, pods from each node's pod CIDR, policy across nodes, masquerade.
    /PASS {2}node-a's agent serves and has synced/,
    /PASS {2}node-b's agent serves and has synced/,
    /== Two nodes 1\/4: routing between the nodes ==/,
    /node-b +10\.244\.2\.0\/24 +172\.31\.250\.2 +routed via vxlan to 172\.31\.250\.2/,
    /PASS {2}node-a routes the other node's pod CIDR/,
    /PASS {2}node-b routes the other node's pod CIDR/,
    /== Two nodes 2\/4: pods on both nodes \(usePodCidr\) ==/,
    /PASS {2}ADD client on node-a: 10\.244\.1\.\d+, in 10\.244\.1\.0\/24/,
    /PASS {2}ADD other on node-a: 10\.244\.1\.\d+, in 10\.244\.1\.0\/24/,
    /PASS {2}ADD web on node-b: 10\.244\.2\.\d+, in 10\.244\.2\.0\/24/,
    /PASS {2}client's eth0 has MTU 1450/,
    /== Two nodes 3\/4: NetworkPolicy across nodes ==/,
    /PASS {2}client can ping web across nodes/,
    /PASS {2}other cannot ping web across nodes: no reply/,
    /PASS {2}node-b's classifier dropped it/,
    /PASS {2}web sees client's own address (10\.244\.1\.\d+) \(pod to pod is not masqueraded\)/,
    /== Two nodes 4\/4: masquerade to the world ==/,
    /PASS {2}the world sees node-a's address 172\.31\.250\.1, not 10\.244\.1\.\d+/,
    /PASS {2}nothing left behind/,
    /RESULT: PASS \(\d+ checks\)/,
  ];
  let at = 0;
  for (const re of expected) {
    const m = re.exec(stdout.slice(at));
    assert.ok(m, `expected ${re} after offset ${at} of the demo output:\n${stdout}`);
    at += m.index + m[0].length;
  }
  assert.doesNotMatch(stdout, /^ {2}FAIL /m);
  await assertNothingLeft(created(stdout));
});

/** Interrupts the demo with SIGINT once its output holds `when`; its output and exit code. */
async function interrupted(when: string): Promise<{ stdout: string; code: number }> {
  const child = demoCommand().spawn();
  const stderrText = new Response(child.stderr).text();
  let stdout = "";
  const decoder = new TextDecoder();
  const reader = child.stdout.getReader();
  let sent = false;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    stdout += decoder.decode(value, { stream: true });
    if (!sent && stdout.includes(when)) {
      child.kill("SIGINT");
      sent = true;
    }
  }
  const status = await child.status;
  const stderr = await stderrText;
  assert.ok(sent, `the demo never printed "${when}":\n${stdout}\n${stderr}`);
  assert.equal(status.code, 130, `exit ${status.code}:\n${stdout}\n${stderr}`);
  assert.match(stdout, /Interrupted by SIGINT: stopping and cleaning up/);
  assert.match(stdout, /PASS {2}nothing left behind/);
  assert.match(stdout, /RESULT: INTERRUPTED/);
  return { stdout, code: status.code };
}

Deno.test("demo: SIGINT half-way cleans up and exits 130", async () => {
  // After both ADDs and the first CLI command: pods, veths, pins and leases all exist.
  const { stdout } = await interrupted("$ ebpfcni endpoint add");
  assert.doesNotMatch(stdout, /== Step 3\/5/);
  await assertNothingLeft(created(stdout));
});

Deno.test("demo: SIGINT in the two-node part stops the agents and removes both nodes", async () => {
  // Both agents running, routes and vxlan devices programmed, three pods attached.
  const { stdout } = await interrupted("PASS  ADD web on node-b");
  assert.doesNotMatch(stdout, /== Two nodes 3\/4/);
  assert.match(stdout, /removed: .*agent of node-a, agent of node-b/);
  await assertNothingLeft(created(stdout));
});

Deno.test("demo.sh: bootstraps, builds, then runs scripts/demo.ts", async () => {
  const syntax = await new Deno.Command("bash", { args: ["-n", `${ROOT}/scripts/demo.sh`] })
    .output();
  assert.equal(syntax.code, 0, new TextDecoder().decode(syntax.stderr));
  const text = Deno.readTextFileSync(`${ROOT}/scripts/demo.sh`);
  assert.match(text, /bash scripts\/bootstrap\.sh/);
  assert.match(text, /bash scripts\/build\.sh/);
  assert.match(text, /exec .* run --allow-all[\s\S]*scripts\/demo\.ts "\$@"/);
  const tasks = JSON.parse(Deno.readTextFileSync(`${ROOT}/deno.json`)).tasks;
  assert.equal(tasks.demo, "bash scripts/demo.sh");
});
