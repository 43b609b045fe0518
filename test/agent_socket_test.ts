// The agent's socket under clients that misbehave or should not be there: a request that never
// finishes arriving delays no other client and is cut off, connections beyond the bound are
// refused with a clear error (250 idle ones are held), and a peer that is neither root nor of
// the configured group is refused by its credentials (SO_PEERCRED) even when the socket file's
// mode would let it connect.
import assert from "node:assert/strict";
import { sh } from "./_cni.ts";
import { type K8sSetup, startAgent, withK8sSetup } from "./_agent.ts";
import { MAX_CONNECTIONS } from "../src/agent/server.ts";

const withSetup = (fn: (s: K8sSetup) => Promise<void>) => withK8sSetup(["a"], fn);

/** Everything the agent sends on `conn` until it closes it (or one line). */
async function readReply(conn: Deno.UnixConn): Promise<string> {
  let out = "";
  const buf = new Uint8Array(4096);
  try {
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      out += new TextDecoder().decode(buf.subarray(0, n));
      if (out.includes("\n")) break;
    }
  } catch {
    // reset: no answer
  }
  return out;
}

function closeAll(conns: Deno.UnixConn[]): void {
  for (const c of conns) {
    try {
      c.close();
    } catch {
      // closed by the agent
    }
  }
}

Deno.test("a client that sends half a request and stalls delays no other client's call, and is cut off", async () => {
  await withSetup(async (s) => {
    const agent = await startAgent(s.net, { manifests: s.manifests.dir });
    const stalled = await Deno.connect({ transport: "unix", path: agent.socket });
    try {
      await agent.synced();
      await stalled.write(new TextEncoder().encode('{"op":"sta'));
      const cut = readReply(stalled);
      const st = await agent.status();
      assert.equal(st.synced, true);
      // Cut off at the agent's read deadline, without an answer it could act on.
      assert.equal(await cut, "");
    } finally {
      closeAll([stalled]);
      await agent.stop();
    }
  });
});

Deno.test("the agent holds 250 idle connections and refuses connections beyond its bound with a clear error, and serves again once they are gone", async () => {
  await withSetup(async (s) => {
    const agent = await startAgent(s.net, { manifests: s.manifests.dir });
    const conns: Deno.UnixConn[] = [];
    try {
      await agent.synced();
      const open = async (n: number) => {
        for (let i = 0; i < n; i++) {
          conns.push(await Deno.connect({ transport: "unix", path: agent.socket }));
        }
      };
      await open(250);
      assert.equal((await agent.status()).synced, true, "served beside 250 idle connections");
      // Idle connections are cut off at the read deadline: open well past the bound at once.
      let refused: string[] = [];
      for (let round = 0; round < 3 && refused.length === 0; round++) {
        await open(MAX_CONNECTIONS + 200 - conns.length);
        const replies = await Promise.all(conns.map(readReply));
        refused = replies.filter((r) => r !== "");
        closeAll(conns.splice(0));
      }
      assert.ok(refused.length > 0, "no connection was refused");
      for (const r of refused) {
        assert.deepEqual(JSON.parse(r), {
          error: `too many connections (${MAX_CONNECTIONS} open): try again`,
        });
      }
      assert.equal((await agent.status()).synced, true);
      assert.match(agent.logs(), /refused a connection: too many open/);
    } finally {
      closeAll(conns);
      await agent.stop();
    }
  });
});

/** Asks for the status as another user (python, so the client needs nothing of ours): the
 * answer, or the error connecting. */
async function statusAs(socket: string, ids: string[]): Promise<string> {
  const client = `
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("connect: " + e.strerror)
    sys.exit(0)
s.sendall(b'{"op":"status"}\\n')
out = b""
while not out.endswith(b"\\n"):
    b = s.recv(65536)
    if not b:
        break
    out += b
print(out.decode().strip())
`;
  const r = await sh("setpriv", [...ids, "/usr/bin/python3", "-c", client, socket], {
    check: true,
  });
  return r.stdout.trim();
}

Deno.test("a peer that is not root is refused by its credentials even through a socket anyone may open; --socket-group lets that group's members in", async () => {
  await withSetup(async (s) => {
    Deno.chmodSync(s.net.dir, 0o711);
    const nobody = ["--reuid=65534", "--regid=65534", "--clear-groups"];
    const gid = 40000 + Math.floor(Math.random() * 20000);
    // A socket whose mode an operator loosened.
    const loose = `${s.net.dir}/loose/agent.sock`;
    let agent = await startAgent(s.net, { manifests: s.manifests.dir }, { socket: loose });
    try {
      await agent.synced();
      Deno.chmodSync(`${s.net.dir}/loose`, 0o711);
      Deno.chmodSync(loose, 0o666);
      const reply = JSON.parse(await statusAs(loose, nobody));
      assert.deepEqual(reply, { error: "permission denied: uid 65534 is not root" });
      assert.match(
        agent.logs(),
        /refused a connection: not root nor of the socket's group.*"uid":65534/,
      );
      assert.equal((await agent.status()).synced, true, "root is served");
    } finally {
      await agent.stop();
    }
    const grouped = `${s.net.dir}/grouped/agent.sock`;
    agent = await startAgent(s.net, { manifests: s.manifests.dir }, {
      socket: grouped,
      extra: ["--socket-group", String(gid)],
    });
    try {
      await agent.synced();
      const st = Deno.statSync(grouped);
      assert.equal(st.mode! & 0o777, 0o660);
      assert.equal(st.gid, gid);
      assert.equal(Deno.statSync(`${s.net.dir}/grouped`).gid, gid);
      for (const member of [`--regid=${gid}`, `--groups=${gid}`]) {
        const ids = ["--reuid=65534", member === `--regid=${gid}` ? member : "--regid=65534"];
        if (member.startsWith("--groups")) ids.push(member);
        else ids.push("--clear-groups");
        const reply = JSON.parse(await statusAs(grouped, ids));
        assert.equal(reply.status?.synced, true, `${member}: ${JSON.stringify(reply)}`);
      }
      // Not of the group: the file's mode already keeps it out.
      assert.equal(await statusAs(grouped, nobody), "connect: Permission denied");
    } finally {
      await agent.stop();
    }
  });
});
