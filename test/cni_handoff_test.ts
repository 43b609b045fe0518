// The plugin's side of a handed-over call (src/cni/handoff.ts) against a stand-in agent on a
// unix socket of the test's own: what each kind of answer, or of silence, makes of the call.
import assert from "node:assert/strict";
import { handOff, runHandoff } from "../src/cni/handoff.ts";
import { runPlugin } from "./_cni.ts";

type Answer = (line: string, conn: Deno.UnixConn) => Promise<void>;

/** A socket that reads one request line per connection and answers with `answer`. */
async function withStandIn(
  answer: Answer,
  fn: (socket: string, requests: string[]) => Promise<void>,
): Promise<void> {
  const dir = Deno.makeTempDirSync({ prefix: "ebpfcni-handoff-" });
  const socket = `${dir}/agent.sock`;
  const listener = Deno.listen({ transport: "unix", path: socket });
  const requests: string[] = [];
  const served = (async () => {
    for await (const conn of listener) {
      let text = "";
      const buf = new Uint8Array(65536);
      while (!text.includes("\n")) {
        const n = await conn.read(buf);
        if (n === null) break;
        text += new TextDecoder().decode(buf.subarray(0, n));
      }
      requests.push(text);
      await answer(text, conn).catch(() => {});
      try {
        conn.close();
      } catch {
        // closed by the answer
      }
    }
  })();
  try {
    await fn(socket, requests);
  } finally {
    listener.close();
    await served.catch(() => {});
    Deno.removeSync(dir, { recursive: true });
  }
}

const reply = (o: unknown): Answer => async (_line, conn) => {
  await conn.write(new TextEncoder().encode(JSON.stringify(o) + "\n"));
};

const CONFIG = JSON.stringify({
  cniVersion: "1.0.0",
  name: "n",
  type: "ebpfcni",
  policyMode: "kubernetes",
});
const ADD = { CNI_COMMAND: "ADD", CNI_CONTAINERID: "c1", CNI_NETNS: "/x", CNI_IFNAME: "eth0" };
const CHECK = { ...ADD, CNI_COMMAND: "CHECK" };

Deno.test("handoff: the agent's answer is the call's; its request carries env, config and build", async () => {
  await withStandIn(reply({ code: 0, stdout: '{"cniVersion":"1.0.0"}\n' }), async (s, reqs) => {
    assert.deepEqual(await handOff(s, ADD, CONFIG), {
      code: 0,
      stdout: '{"cniVersion":"1.0.0"}\n',
    });
    const req = JSON.parse(reqs[0]!);
    assert.equal(req.op, "cni");
    assert.deepEqual(req.env, ADD);
    assert.equal(req.stdin, CONFIG);
    assert.equal(typeof req.build, "string");
  });
});

Deno.test("handoff: no agent, an agent that declines, refuses or answers nonsense: run here", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const none = await handOff(`${dir}/none.sock`, ADD, CONFIG);
    assert.match(String((none as { fallback: string }).fallback), /no agent listens/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
  const cases: [unknown, RegExp][] = [
    [{ fallback: "CNI_NETNS is not visible" }, /^CNI_NETNS is not visible$/],
    // An agent older than the handoff refuses the op.
    [{ error: 'bad request: "op" must be add, del, status, sync or explain' }, /agent refused/],
    [{ identity: 5 }, /not one of a CNI call/],
  ];
  for (const [answer, want] of cases) {
    await withStandIn(reply(answer), async (s) => {
      const r = await handOff(s, ADD, CONFIG);
      assert.ok("fallback" in r, JSON.stringify(r));
      assert.match(r.fallback, want);
    });
  }
});

Deno.test("handoff: an agent that took the ADD and went silent fails it with code 11; a CHECK runs here", async () => {
  const silent: Answer = () => Promise.resolve(); // reads, closes without a word
  await withStandIn(silent, async (s) => {
    const r = await handOff(s, ADD, CONFIG);
    assert.ok("code" in r, JSON.stringify(r));
    assert.equal(r.code, 1);
    const err = JSON.parse(r.stdout);
    assert.equal(err.code, 11);
    assert.equal(err.cniVersion, "1.0.0");
    assert.match(err.msg, /took the ADD and did not answer/);
    assert.ok("fallback" in await handOff(s, CHECK, CONFIG));
  });
  const never: Answer = () => new Promise((r) => setTimeout(r, 1_000));
  await withStandIn(never, async (s) => {
    const r = await handOff(s, ADD, CONFIG, 100);
    assert.ok("code" in r && JSON.parse(r.stdout).code === 11, JSON.stringify(r));
  });
});

Deno.test("handoff: a result that cannot be written is undone in the process, not handed over", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ebpfcni-handoff-" });
  const pinDir = `/sys/fs/bpf/ebpfcni-test-${crypto.randomUUID().slice(0, 8)}`;
  try {
    const config = JSON.stringify({
      ...JSON.parse(CONFIG),
      pinDir,
      stateDir: `${dir}/state`,
      ipam: { type: "host-local", subnet: "10.254.1.0/24", dataDir: `${dir}/ipam` },
    });
    await withStandIn(reply({ code: 0, stdout: "{}\n" }), async (s, reqs) => {
      const stdin = JSON.stringify({ ...JSON.parse(config), agentSocket: s });
      const code = await runHandoff({
        env: { ...ADD, CNI_NETNS: "", CNI_PATH: "/usr/lib/cni" },
        stdin: () => new TextEncoder().encode(stdin),
        config: JSON.parse(stdin),
        stdout: () => {
          throw new Deno.errors.BrokenPipe("stdout closed");
        },
      });
      assert.equal(code, 1);
      // The ADD went to the agent; its DEL ran here, and told the agent as every DEL does.
      const ops = reqs.map((r) => JSON.parse(r)).map((r) =>
        r.op === "cni" ? r.env.CNI_COMMAND : r.op
      );
      assert.deepEqual(ops, ["ADD", "del"]);
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
    try {
      Deno.removeSync(pinDir, { recursive: true });
    } catch {
      // a DEL of nothing pins nothing
    }
  }
});

Deno.test('handoff: the binary reads policyMode as JSON, so an escaped "kubernetes" is handed over too', async () => {
  const stdout = '{"cniVersion":"1.0.0","interfaces":[]}\n';
  await withStandIn(reply({ code: 0, stdout }), async (s, reqs) => {
    // The same config as JSON, spelled so that no text search finds the word.
    const config = CONFIG.replace('"kubernetes"', '"kubern\\u0065tes"')
      .replace(/}$/, `,"agentSocket":${JSON.stringify(s)}}`);
    assert.equal(JSON.parse(config).policyMode, "kubernetes");
    const r = await runPlugin({
      command: "ADD",
      containerId: "c1",
      netns: "/x",
      ifname: "eth0",
      config,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, stdout);
    assert.deepEqual(reqs.map((q) => JSON.parse(q).env.CNI_COMMAND), ["ADD"]);
  });
});
