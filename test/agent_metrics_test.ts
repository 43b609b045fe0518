// The agent's /metrics, /healthz and /readyz as an operator meets them: a real Prometheus
// server scrapes the agent while pods talk and a policy changes, and its query API shows the
// datapath's drops rising by the packets the policy dropped, the enforcement delay, the CNI
// calls; promtool accepts the exposition; no label carries a pod, address or policy name; the
// probes follow the source as it syncs, is lost and comes back.
import assert from "node:assert/strict";
import { withNetwork } from "./_cni.ts";
import { probeAll, probeUntil, startServers } from "./_traffic.ts";
import { addK8sPod, startAgent, withK8sSetup } from "./_agent.ts";
import { Prometheus, promtoolCheck } from "./_prometheus.ts";
import { FakeApiServer } from "./_fake_apiserver.ts";
import { namespaceObject, networkPolicy } from "../src/netpol/testdata/_objects.ts";
import { openPinnedMaps } from "../src/datapath/loader.ts";
import { CidrMap, IpcacheMap, RuleMap, VethMap } from "../src/datapath/maps.ts";
import { CIDR_MAP, IPCACHE_MAP, RULE_MAP, VETH_MAP } from "../src/spec/bpf_layout.ts";

const UDP_PORT = 5353;
/** Datagrams sent to the isolated pod. */
const SENT = 25;
/** Every label name the agent uses (le: histogram buckets). */
const LABEL_NAMES = new Set([
  "verdict",
  "reason",
  "map",
  "source",
  "resource",
  "kind",
  "command",
  "code",
  "op",
  "result",
  "le",
]);

async function get(url: string): Promise<{ status: number; text: string }> {
  const r = await fetch(url);
  return { status: r.status, text: await r.text() };
}

/** Label name/value pairs of an exposition's samples. */
function labelPairs(exposition: string): [string, string][] {
  const out: [string, string][] = [];
  for (const line of exposition.split("\n")) {
    if (line.startsWith("#") || line === "") continue;
    const m = line.match(/^[a-zA-Z_:][a-zA-Z0-9_:]*(?:\{(.*)\})? \S+$/);
    assert.ok(m, `not a sample line: ${line}`);
    for (const pair of (m[1] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      out.push([pair[1]!, pair[2]!]);
    }
  }
  return out;
}

Deno.test("Prometheus scraping the agent sees drops by reason rise by the packets a new policy dropped, its enforcement delay and the CNI calls, with bounded labels", async () => {
  await withK8sSetup(["a", "b"], async (s) => {
    const agent = await startAgent(s.net, { manifests: s.manifests.dir });
    try {
      await agent.synced();
      const address = (await agent.status()).metricsAddress;
      assert.ok(typeof address === "string", "agent status shows the metrics address");
      const a = await addK8sPod(s.net, s.config, "x", "a");
      const b = await addK8sPod(s.net, s.config, "x", "b");
      const servers = await startServers([{ netns: b.netns, tcp: [], udp: [UDP_PORT] }]);
      await using prom = await Prometheus.start([address]);
      try {
        const toB = { from: a.netns, to: b.ip, port: UDP_PORT, proto: "udp" as const };
        assert.deepEqual(probeUntil([toB], [true]), [true], "a reaches b before the policy");
        s.manifests.apply(networkPolicy("x", "deny-to-b", {
          podSelector: { matchLabels: { pod: "b" } },
          policyTypes: ["Ingress"],
        }));
        await agent.synced();
        assert.deepEqual(probeUntil([toB], [false]), [false], "the policy isolates b");
        const drops = 'ebpfcni_datapath_drops_total{job="ebpfcni",reason="ingress"}';
        await prom.scrapedAfter(drops, Date.now() / 1000);
        const before = await prom.value(drops);
        assert.ok(before !== undefined && before >= 1, `drops before: ${before}`);
        const got = probeAll(Array.from({ length: SENT }, () => toB), 300);
        assert.deepEqual(got, got.map(() => false));
        await prom.scrapedAfter(drops, Date.now() / 1000);
        assert.equal(await prom.value(drops), before + SENT, "drops rose by the datagrams sent");
        assert.equal(
          await prom.value(
            'ebpfcni_datapath_packets_total{verdict="drop",reason="ingress"}',
          ),
          before + SENT,
        );

        const st = await agent.status();
        const v = (q: string) => prom.value(q);
        assert.equal(await v('up{job="ebpfcni"}'), 1);
        assert.equal(await v("ebpfcni_source_synced"), 1);
        assert.equal(await v("ebpfcni_source_up"), 1);
        assert.equal(await v('ebpfcni_objects{kind="networkpolicy"}'), 1);
        assert.equal(await v('ebpfcni_objects{kind="attachment"}'), 2);
        // What the kernel's maps hold now (nothing changes them meanwhile).
        const inMaps = (() => {
          using dp = openPinnedMaps(s.net.pinDir)!;
          return {
            ipcache: new IpcacheMap(dp.fd(IPCACHE_MAP)).list().length,
            rules: new RuleMap(dp.fd(RULE_MAP)).list().length,
            veths: new VethMap(dp.fd(VETH_MAP)).list().length,
          };
        })();
        assert.equal(await v('ebpfcni_map_entries{map="ipcache_map"}'), inMaps.ipcache);
        assert.equal(
          await v('ebpfcni_map_fill_ratio{map="rule_map"}'),
          inMaps.rules / RULE_MAP.maxEntries,
        );
        assert.equal(await v('ebpfcni_map_entries{map="veth_map"}'), inMaps.veths);
        assert.ok(inMaps.veths >= 2 && inMaps.ipcache >= 2, JSON.stringify(inMaps));
        const delays = await v('ebpfcni_policy_enforce_delay_seconds_count{source="manifests"}');
        assert.ok(delays !== undefined && delays >= 1, `enforcement delays observed: ${delays}`);
        assert.ok((await v("ebpfcni_reconcile_runs_total"))! >= 2);
        assert.ok((await v("ebpfcni_map_entries_written_total"))! >= st.entries.ipcache);
        const handled = st.cni?.handled.ADD ?? 0;
        assert.equal(
          (await v('sum(ebpfcni_cni_calls_total{command="ADD",code="0"})')) ?? 0,
          handled,
        );
        assert.equal(
          (await v('sum(ebpfcni_cni_call_duration_seconds_count{command="ADD"})')) ?? 0,
          handled,
        );
        assert.ok((await v('ebpfcni_agent_requests_total{op="add",result="ok"}'))! >= 2);
        assert.ok((await v("process_resident_memory_bytes"))! > 0);
        assert.ok((await v("process_open_fds"))! > 0);

        const exposition = (await get(`http://${address}/metrics`)).text;
        const check = await promtoolCheck(exposition);
        assert.ok(check.ok && check.out.trim() === "", `promtool check metrics: ${check.out}`);
        const names = new Set(["x", "a", "b", "deny-to-b", a.ip, b.ip, a.id, b.id]);
        for (const [name, value] of labelPairs(exposition)) {
          assert.ok(LABEL_NAMES.has(name), `unexpected label ${name}="${value}"`);
          assert.ok(!names.has(value), `a label names an object: ${name}="${value}"`);
          assert.doesNotMatch(value, /^\d+\.\d+\.\d+\.\d+$/, `an address label: ${name}`);
        }
        assert.deepEqual(await prom.query('{job="ebpfcni",pod!=""}'), []);
      } finally {
        await servers.stop();
      }
    } finally {
      const st = await agent.stop();
      assert.equal(st.code, 0, agent.logs());
    }
  });
});

async function readyz(address: string): Promise<{ status: number; text: string }> {
  return await get(`http://${address}/readyz`);
}

/** Polls /readyz until it answers `status`; its last answer. */
async function readyzBecomes(address: string, status: number, tries = 600) {
  let r = await readyz(address);
  for (let i = 0; i < tries && r.status !== status; i++) {
    await new Promise((res) => setTimeout(res, 50));
    r = await readyz(address);
  }
  return r;
}

Deno.test("/readyz answers 503 until the source syncs, while the API server is gone, and 200 once it is back; /healthz stays 200", async () => {
  await withNetwork(async (net) => {
    await using fake = await FakeApiServer.start();
    fake.put(namespaceObject("x"));
    const kubeconfig = fake.writeKubeconfig({ auth: "token" });
    await fake.stop();
    const agent = await startAgent(net, { kubeconfig });
    try {
      const address = (await agent.status()).metricsAddress!;
      const notSynced = await readyz(address);
      assert.equal(notSynced.status, 503);
      assert.match(notSynced.text, /the source has not synced yet/);
      assert.equal((await get(`http://${address}/healthz`)).status, 200);

      await fake.restart();
      const up = await readyzBecomes(address, 200);
      assert.equal(up.status, 200, up.text);
      await fake.stop();
      const lost = await readyzBecomes(address, 503);
      assert.equal(lost.status, 503);
      assert.match(lost.text, /the source is unreachable/);
      assert.equal((await get(`http://${address}/healthz`)).status, 200);
      const metrics = (await get(`http://${address}/metrics`)).text;
      assert.match(metrics, /^ebpfcni_source_up 0$/m);
      assert.match(metrics, /^ebpfcni_source_errors_total [1-9]/m);

      await fake.restart();
      const back = await readyzBecomes(address, 200);
      assert.equal(back.status, 200, back.text);
      const after = (await get(`http://${address}/metrics`)).text;
      assert.match(after, /^ebpfcni_source_up 1$/m);
      assert.match(after, /^ebpfcni_source_relists_total\{resource="pods"\} [1-9]/m);
      assert.match(after, /^ebpfcni_source_watch_restarts_total\{resource="pods"\} [1-9]/m);
      assert.equal((await get(`http://${address}/nope`)).status, 404);
      const post = await fetch(`http://${address}/metrics`, { method: "POST" });
      await post.body?.cancel();
      assert.equal(post.status, 405);
    } finally {
      const st = await agent.stop();
      assert.equal(st.code, 0, agent.logs());
    }
  });
});

Deno.test("an empty --metrics-address serves nothing; a taken one stops the agent with the address named", async () => {
  await withNetwork(async (net) => {
    const dir = Deno.makeTempDirSync({ prefix: "ebpfcni-test-" });
    try {
      const off = await startAgent(net, { manifests: dir }, { extra: ["--metrics-address", ""] });
      try {
        assert.equal((await off.status()).metricsAddress, null);
      } finally {
        assert.equal((await off.stop()).code, 0);
      }
      const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      try {
        const at = `127.0.0.1:${(taken.addr as Deno.NetAddr).port}`;
        await assert.rejects(
          startAgent(net, { manifests: dir }, { extra: ["--metrics-address", at] }),
          (err: Error) => err.message.includes(`Cannot serve metrics on "${at}"`),
        );
      } finally {
        taken.close();
      }
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  });
});

/** One sample of an exposition, by its series text (`name{labels}`). */
function sampleOf(exposition: string, series: string): number | undefined {
  const line = exposition.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

Deno.test("writes a full map refuses are counted by map, their retries too, and the delay runs until the change is in", async () => {
  await withK8sSetup(["a"], async (s) => {
    const first = await startAgent(s.net, { manifests: s.manifests.dir });
    await first.synced();
    assert.equal((await first.stop()).code, 0, first.logs());
    // While no agent runs, cidr_map filled with prefixes no policy names: the restarted agent's
    // first reconcile writes the new policy's CIDR before it removes them (make before break),
    // and the map refuses it; the next reconcile (a resync) retries it.
    {
      using dp = openPinnedMaps(s.net.pinDir)!;
      const cidrs = new CidrMap(dp.fd(CIDR_MAP));
      for (let i = 0;; i++) {
        try {
          cidrs.set({ addr: (10 << 24) | (i << 8), prefix: 24 }, 0x01000000 + i);
        } catch {
          break;
        }
      }
    }
    s.manifests.apply(networkPolicy("x", "to-doc-net", {
      podSelector: { matchLabels: { pod: "a" } },
      policyTypes: ["Egress"],
      egress: [{ to: [{ ipBlock: { cidr: "192.0.2.0/24" } }] }],
    }));
    const agent = await startAgent(s.net, { manifests: s.manifests.dir }, {
      extra: ["--resync", "1"],
    });
    try {
      const address = (await agent.status()).metricsAddress!;
      let text = "";
      for (let i = 0; i < 400; i++) {
        const st = await agent.status();
        text = (await get(`http://${address}/metrics`)).text;
        if (st.entries.cidrs === 1 && st.lastReconcile?.failed === 0) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const st = await agent.status();
      assert.equal(st.entries.cidrs, 1, JSON.stringify(st));
      assert.ok(
        (sampleOf(text, 'ebpfcni_map_writes_refused_total{map="cidr_map"}') ?? 0) >= 1,
        text,
      );
      assert.ok((sampleOf(text, "ebpfcni_reconcile_retries_total") ?? 0) >= 1, text);
      assert.equal(sampleOf(text, 'ebpfcni_map_entries{map="cidr_map"}'), 1);
      // The source's changes waited for the retry, a resync (1 s) later: the delay says so.
      const sum = sampleOf(text, 'ebpfcni_policy_enforce_delay_seconds_sum{source="manifests"}');
      assert.ok(sum !== undefined && sum >= 0.5, `delay sum ${sum}: ${text}`);
    } finally {
      const st = await agent.stop();
      assert.equal(st.code, 0, agent.logs());
    }
  });
});
