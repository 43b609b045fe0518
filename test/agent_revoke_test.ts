// Revocation on a real node: a live TCP connection that a policy written to the agent's
// manifest directory no longer allows ends within the reconcile that writes it (its next
// packet is judged and dropped), unless the agent runs with --keep-established.
import assert from "node:assert/strict";
import type { Pod } from "./_pods.ts";
import { cli } from "./_pods.ts";
import { type LiveConnection, openConnection, probeUntil, startServers } from "./_traffic.ts";
import { addK8sPod, startAgent, withK8sSetup } from "./_agent.ts";
import { networkPolicy, podObject } from "../src/netpol/testdata/_objects.ts";

const PORT = 8080;

/** Connects until the first packets' ARP resolution is behind (a SYN may be lost to it). */
function connect(a: Pod, b: Pod): LiveConnection {
  for (let tries = 0;; tries++) {
    try {
      return openConnection(a.netns, b.ip, PORT);
    } catch (err) {
      if (tries === 3) throw err;
    }
  }
}

async function tracked(net: Parameters<typeof cli>[0], a: Pod, b: Pod): Promise<number> {
  const rows = JSON.parse(await cli(net, "ct", "list", "--json")) as {
    src: string;
    dst: string;
    dport: number;
  }[];
  return rows.filter((r) => r.src === a.ip && r.dst === b.ip && r.dport === PORT).length;
}

for (const keep of [false, true]) {
  const title = keep
    ? "with --keep-established, a live TCP connection a new policy denies keeps flowing"
    : "a live TCP connection a new policy denies ends once agent status --wait-synced returns: its next packet is dropped";
  Deno.test(title, async () => {
    await withK8sSetup(["a", "b"], async (s) => {
      const agent = await startAgent(s.net, { manifests: s.manifests.dir }, {
        extra: keep ? ["--keep-established"] : [],
      });
      let servers: Awaited<ReturnType<typeof startServers>> | undefined;
      let conn: LiveConnection | undefined;
      try {
        await agent.synced();
        const a = await addK8sPod(s.net, s.config, "x", "a");
        const b = await addK8sPod(s.net, s.config, "x", "b");
        servers = await startServers([{ netns: b.netns, tcp: [], udp: [], tcpEcho: [PORT] }]);
        conn = connect(a, b);
        for (let i = 0; i < 3; i++) assert.ok(conn.roundTrip(), "the connection flows");
        assert.equal(await tracked(s.net, a, b), 1);
        // Every pod's ingress isolated: a -> b denied, and so is b -> a (so no packet of b's
        // can start the connection again the other way round).
        s.manifests.apply(networkPolicy("x", "deny-ingress", {
          podSelector: {},
          policyTypes: ["Ingress"],
        }));
        const st = await agent.synced();
        assert.equal(st.policies, 1);
        const probe = [{ from: a.netns, to: b.ip, port: PORT, proto: "tcp" as const }];
        assert.deepEqual(probeUntil(probe, [false]), [false], "a new connection is denied");
        const revocation = (st as { revocation?: { mode: string; ended: { denied: number } } })
          .revocation;
        if (keep) {
          for (let i = 0; i < 3; i++) {
            assert.ok(conn.roundTrip(), `the kept connection stopped flowing: ${agent.logs()}`);
          }
          assert.equal(await tracked(s.net, a, b), 1);
          assert.equal(revocation?.mode, "keep-established");
          assert.equal(revocation?.ended.denied, 0);
        } else {
          assert.equal(await tracked(s.net, a, b), 0, "the connection's entry is gone");
          assert.equal(conn.roundTrip(1500), false, "the revoked connection still flows");
          assert.equal(revocation?.mode, "revoke");
          assert.equal(revocation?.ended.denied, 1);
          assert.match(
            agent.logs(),
            new RegExp(
              `tracked connections ended.*tcp ${a.ip.replaceAll(".", "\\.")}:\\d+ -> ${
                b.ip.replaceAll(".", "\\.")
              }:${PORT} \\(denied\\)`,
            ),
          );
        }
      } finally {
        conn?.close();
        await servers?.stop();
        const st = await agent.stop();
        assert.equal(st.code, 0, `agent exit ${st.code}: ${agent.logs()}`);
      }
    });
  });
}

Deno.test("with --keep-established, a live TCP connection still ends when its client's labels change and its new identity is denied", async () => {
  await withK8sSetup(["a", "b"], async (s) => {
    // Every pod of x takes connections from pod=a only (so b cannot start one towards a's
    // port either).
    s.manifests.apply(networkPolicy("x", "from-a", {
      podSelector: {},
      ingress: [{ from: [{ podSelector: { matchLabels: { pod: "a" } } }] }],
    }));
    const agent = await startAgent(s.net, { manifests: s.manifests.dir }, {
      extra: ["--keep-established"],
    });
    let servers: Awaited<ReturnType<typeof startServers>> | undefined;
    let conn: LiveConnection | undefined;
    try {
      await agent.synced();
      const a = await addK8sPod(s.net, s.config, "x", "a");
      const b = await addK8sPod(s.net, s.config, "x", "b");
      servers = await startServers([{ netns: b.netns, tcp: [], udp: [], tcpEcho: [PORT] }]);
      await agent.synced();
      conn = connect(a, b);
      assert.ok(conn.roundTrip(), "the connection flows");
      // a's labels change: a new identity, which b does not take connections from.
      s.manifests.apply(podObject({ podIp: () => "198.18.0.10" }, "x", "a", { pod: "other" }));
      const st = await agent.synced();
      const revocation = (st as { revocation?: { ended: Record<string, number> } }).revocation;
      assert.equal(await tracked(s.net, a, b), 0, "the connection's entry is gone");
      assert.equal(conn.roundTrip(1500), false, "the connection still flows");
      assert.equal(revocation?.ended["identity-changed"], 1);
      assert.equal(revocation?.ended.denied, 0);
    } finally {
      conn?.close();
      await servers?.stop();
      const st = await agent.stop();
      assert.equal(st.code, 0, `agent exit ${st.code}: ${agent.logs()}`);
    }
  });
});
