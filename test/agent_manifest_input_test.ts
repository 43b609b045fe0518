// The manifest-directory source under bad input, on a real node: FIFOs, symlinks leading out
// of the directory (to a root-only secret), files that are not manifests, oversized files and
// too many documents, ConfigMap-style `..data` symlink swaps, and the problems list (cleared
// when a file is fixed or removed, and saying how many it leaves out). Each time the agent
// stays up, answers its socket, keeps its last good state and names the file.
import assert from "node:assert/strict";
import { rand } from "./_cni.ts";
import { probeUntil, startServers } from "./_traffic.ts";
import { addK8sPod, type AgentProcess, type K8sSetup, startAgent, withK8sSetup } from "./_agent.ts";
import { networkPolicy } from "../src/netpol/testdata/_objects.ts";
import { MAX_FILE_BYTES } from "../src/agent/manifest_file.ts";
import { MAX_DOCUMENTS } from "../src/agent/manifest_parse.ts";
import { OFF_THREAD_BYTES } from "../src/agent/manifest_parser.ts";

async function withAgent(s: K8sSetup, fn: (agent: AgentProcess) => Promise<void>): Promise<void> {
  const agent = await startAgent(s.net, { manifests: s.manifests.dir });
  try {
    await agent.synced();
    await fn(agent);
  } finally {
    const st = await agent.stop();
    assert.equal(st.code, 0, `agent exit ${st.code}: ${agent.logs()}`);
  }
}

const DENY_B = networkPolicy("x", "deny-b", {
  podSelector: { matchLabels: { pod: "b" } },
  policyTypes: ["Ingress"],
});

/** mkfifo(1): Deno has no call for it (tests may exec helpers). */
async function mkfifo(path: string): Promise<void> {
  const r = await new Deno.Command("mkfifo", { args: [path] }).output();
  assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
}

Deno.test("a FIFO and a symlink to a FIFO in the manifest directory are refused by name, and a deny-all written after them is enforced", async () => {
  await withK8sSetup(["a", "b"], async (s) => {
    await withAgent(s, async (agent) => {
      const a = await addK8sPod(s.net, s.config, "x", "a");
      const b = await addK8sPod(s.net, s.config, "x", "b");
      const servers = await startServers([{ netns: b.netns, tcp: [80], udp: [] }]);
      try {
        const probe = [{ from: a.netns, to: b.ip, port: 80, proto: "tcp" as const }];
        assert.deepEqual(probeUntil(probe, [true]), [true]);
        const dir = s.manifests.dir;
        await mkfifo(`${dir}/fifo.yaml`);
        await mkfifo(`${dir}/.hidden-fifo`);
        Deno.symlinkSync(`${dir}/.hidden-fifo`, `${dir}/link.yaml`);
        // Let the watcher's scan meet them before the policy arrives.
        await new Promise((r) => setTimeout(r, 300));
        s.manifests.apply(DENY_B);
        const st = await agent.synced(10);
        assert.equal(st.policies, 1, "the deny-all written after the FIFOs is in the model");
        assert.equal(st.appliedGeneration, st.generation);
        const problems = st.problems.join("\n");
        assert.match(problems, new RegExp(`${dir}/fifo\\.yaml: not a regular file \\(a FIFO\\)`));
        assert.match(problems, new RegExp(`${dir}/link\\.yaml: not a regular file \\(a FIFO\\)`));
        assert.deepEqual(probeUntil(probe, [false]), [false]);
        // Gone: their problems with them, and the socket still answers at once.
        Deno.removeSync(`${dir}/link.yaml`);
        Deno.removeSync(`${dir}/fifo.yaml`);
        assert.deepEqual((await agent.synced(10)).problems, []);
      } finally {
        await servers.stop();
      }
    });
  });
});

Deno.test("a symlink to a root-only file outside the manifest directory is not followed, and no file's content reaches the log or the status", async () => {
  await withK8sSetup(["a"], async (s) => {
    const marker = `SECRET${rand(12)}`;
    const secret = `${s.net.dir}/token`;
    Deno.writeTextFileSync(secret, `${marker}-token-value\n`, { mode: 0o600 });
    await withAgent(s, async (agent) => {
      const dir = s.manifests.dir;
      Deno.symlinkSync(secret, `${dir}/token.yaml`);
      // Files in the directory that are not manifests, or not valid, with the marker in them:
      // a bare scalar, a key, YAML and JSON syntax errors on the marker's line, an undefined
      // alias named after it, and an unknown tag (a warning of the YAML parser, naming it).
      s.manifests.writeRaw("scalar.yaml", `${marker}\n`);
      s.manifests.writeRaw(
        "key.yml",
        `-----BEGIN OPENSSH PRIVATE KEY-----\n${marker}abc\n-----END OPENSSH PRIVATE KEY-----\n`,
      );
      s.manifests.writeRaw("indent.yaml", `kind: Pod\n  ${marker}: [x\n`);
      s.manifests.writeRaw("tag.yaml", `kind: !${marker} Pod\n`);
      s.manifests.writeRaw("alias.yaml", `kind: *${marker}\n`);
      s.manifests.writeRaw("bad.json", `{"kind": ${marker}}`);
      s.manifests.writeRaw("list.json", `["${marker}"]`);
      const st = await agent.synced(10);
      const problems = st.problems.join("\n");
      assert.match(
        problems,
        new RegExp(`${dir}/token\\.yaml: a symbolic link to "${secret}", outside the directory`),
      );
      for (const f of ["scalar.yaml", "key.yml", "indent.yaml", "alias.yaml"]) {
        assert.match(problems, new RegExp(`${dir}/${f.replace(".", "\\.")}: not`), f);
      }
      assert.match(problems, /indent\.yaml: not valid YAML: .* at line \d+, column \d+/);
      assert.match(problems, /scalar\.yaml: not a Kubernetes object: the document is a string/);
      assert.match(problems, /bad\.json: not valid JSON/);
      assert.match(problems, /list\.json: not a Kubernetes object: the document is a sequence/);
      const status = await agent.status();
      assert.ok(!JSON.stringify(status).includes(marker), JSON.stringify(status.problems));
      assert.ok(!agent.logs().includes(marker), agent.logs());
    });
  });
});

Deno.test("ConfigMap-style files (symlinks through a ..data symlink swapped atomically) are followed and each swap is applied", async () => {
  await withK8sSetup(["a", "b"], async (s) => {
    const dir = s.manifests.dir;
    const version = (tag: string, policies: Record<string, unknown>[]) => {
      Deno.mkdirSync(`${dir}/..${tag}`);
      Deno.writeTextFileSync(
        `${dir}/..${tag}/policies.yaml`,
        policies.map((p) => JSON.stringify(p)).join("\n---\n") + "\n",
      );
      // As the kubelet swaps it: a new symlink renamed over ..data.
      Deno.symlinkSync(`..${tag}`, `${dir}/..data_tmp`);
      Deno.renameSync(`${dir}/..data_tmp`, `${dir}/..data`);
    };
    version("v1", [networkPolicy("x", "other", {
      podSelector: { matchLabels: { pod: "nobody" } },
      policyTypes: ["Ingress"],
    })]);
    Deno.symlinkSync("..data/policies.yaml", `${dir}/policies.yaml`);
    await withAgent(s, async (agent) => {
      const a = await addK8sPod(s.net, s.config, "x", "a");
      const b = await addK8sPod(s.net, s.config, "x", "b");
      const servers = await startServers([{ netns: b.netns, tcp: [80], udp: [] }]);
      try {
        const probe = [{ from: a.netns, to: b.ip, port: 80, proto: "tcp" as const }];
        let st = await agent.synced(10);
        assert.equal(st.policies, 1);
        assert.deepEqual(st.problems, []);
        assert.deepEqual(probeUntil(probe, [true]), [true]);
        version("v2", [DENY_B]);
        st = await agent.synced(10);
        assert.equal(st.policies, 1);
        assert.deepEqual(st.problems, []);
        assert.deepEqual(probeUntil(probe, [false]), [false]);
      } finally {
        await servers.stop();
      }
    });
  });
});

Deno.test("an oversized manifest file, or one with too many documents, is refused naming the file and the limit, and its last good version stays enforced", async () => {
  await withK8sSetup(["a", "b"], async (s) => {
    s.manifests.apply(DENY_B);
    await withAgent(s, async (agent) => {
      const a = await addK8sPod(s.net, s.config, "x", "a");
      const b = await addK8sPod(s.net, s.config, "x", "b");
      const servers = await startServers([{ netns: b.netns, tcp: [80], udp: [] }]);
      try {
        const probe = [{ from: a.netns, to: b.ip, port: 80, proto: "tcp" as const }];
        assert.deepEqual(probeUntil(probe, [false]), [false]);
        const file = `${s.manifests.dir}/NetworkPolicy.x.deny-b.json`;
        // The same policy, valid JSON, one byte over the limit.
        const text = JSON.stringify(DENY_B);
        Deno.writeTextFileSync(file, text + " ".repeat(MAX_FILE_BYTES + 1 - text.length));
        // Valid YAML of empty documents, one more than allowed.
        s.manifests.writeRaw("many.yaml", "---\n".repeat(MAX_DOCUMENTS + 1));
        const st = await agent.synced(20);
        const problems = st.problems.join("\n");
        assert.match(
          problems,
          new RegExp(
            `${file}: ${MAX_FILE_BYTES + 1} bytes, more than the limit of ${MAX_FILE_BYTES} bytes`,
          ),
        );
        assert.match(problems, new RegExp(`many\\.yaml: more than ${MAX_DOCUMENTS} documents`));
        assert.equal(st.policies, 1, "the last good version stays");
        assert.deepEqual(probeUntil(probe, [false]), [false]);
      } finally {
        await servers.stop();
      }
    });
  });
});

Deno.test("a file's problems clear when it is fixed or removed, and the status says how many problems it does not list", async () => {
  await withK8sSetup(["a"], async (s) => {
    await withAgent(s, async (agent) => {
      const dir = s.manifests.dir;
      s.manifests.writeRaw("broken.yaml", "kind: Pod\n  bad: [x\n");
      let st = await agent.synced(10);
      assert.equal(st.problems.length, 1);
      assert.match(st.problems[0]!, /broken\.yaml: not valid YAML/);
      // Fixed.
      s.manifests.writeRaw("broken.yaml", JSON.stringify(DENY_B));
      st = await agent.synced(10);
      assert.deepEqual(st.problems, []);
      assert.equal(st.policies, 1);
      // Broken again, then removed.
      s.manifests.writeRaw("broken.yaml", "kind: Pod\n  bad: [x\n");
      assert.equal((await agent.synced(10)).problems.length, 1);
      Deno.removeSync(`${dir}/broken.yaml`);
      st = await agent.synced(10);
      assert.deepEqual(st.problems, []);
      // More problems than the list shows: it says how many it leaves out.
      for (let i = 0; i < 27; i++) s.manifests.writeRaw(`bad-${i}.yaml`, `{{{${i}`);
      st = await agent.synced(10);
      assert.equal(st.problems.length, 20);
      assert.equal(st.problemsNotShown, 7);
      for (let i = 0; i < 27; i++) Deno.removeSync(`${dir}/bad-${i}.yaml`);
      st = await agent.synced(10);
      assert.deepEqual(st.problems, []);
      assert.equal(st.problemsNotShown, 0);
    });
  });
});

Deno.test("a large manifest file (parsed on a worker thread) loads whole, and its problems are reported as a small file's are", async () => {
  await withK8sSetup(["a"], async (s) => {
    await withAgent(s, async (agent) => {
      const n = 4000;
      const items = Array.from(
        { length: n },
        (_, i) =>
          `- apiVersion: v1\n  kind: Namespace\n  metadata:\n    name: big-${i}\n    labels: {team: t${
            i % 7
          }}\n`,
      ).join("");
      const text = `apiVersion: v1\nkind: List\nitems:\n${items}`;
      assert.ok(text.length > OFF_THREAD_BYTES, `${text.length} bytes`);
      s.manifests.writeRaw("big.yaml", text);
      let st = await agent.synced(30);
      assert.deepEqual(st.problems, []);
      assert.equal(st.namespaces, n + 1);
      // Broken on its last line: refused with the line, the last good version kept.
      const marker = `SECRET${rand(12)}`;
      s.manifests.writeRaw("big.yaml", `${text}  ${marker}: [\n`);
      st = await agent.synced(30);
      assert.equal(st.problems.length, 1);
      assert.match(
        st.problems[0]!,
        new RegExp(`big\\.yaml: not valid YAML: .* at line \\d+, column \\d+; its previous`),
      );
      assert.equal(st.namespaces, n + 1);
      assert.ok(!JSON.stringify(st).includes(marker));
      assert.ok(!agent.logs().includes(marker));
    });
  });
});
