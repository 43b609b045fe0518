// The agent's Kubernetes source in the built launcher's bundle (dist/ebpfcni.lib, written by
// scripts/build.sh when deno compile cannot run): it loads and works under the launcher's own
// `deno run` flags (--cached-only --no-config, so nothing may need the import map or the
// network), and the CNI and CLI start-up paths load none of its npm code.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { FakeApiServer } from "./_fake_apiserver.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
const BIN = `${ROOT}/dist/ebpfcni`;
const LIB = `${ROOT}/dist/ebpfcni.lib`;
const AGENT = `${LIB}/agent/source_kube.js`;

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function launcherText(): string {
  if (!exists(BIN)) throw new Error(`${BIN} is missing: run "bash scripts/build.sh" first`);
  return Deno.readTextFileSync(BIN);
}

/** A compiled binary has no bundle directory: nothing to check then. */
const isLauncher = exists(BIN) && launcherText().startsWith("#!");

/** The files a chunk loads before it runs: itself and its static imports, transitively. */
function staticClosure(file: string): Set<string> {
  const seen = new Set<string>();
  const todo = [file];
  const importRe = /(?:^|\n)\s*(?:import|export)\s*(?:[\w*{}\s,$]*from\s*)?"(\.[^"]+)"/g;
  while (todo.length > 0) {
    const f = todo.pop() as string;
    if (seen.has(f)) continue;
    seen.add(f);
    for (const m of Deno.readTextFileSync(f).matchAll(importRe)) {
      todo.push(fileURLToPath(new URL(m[1] as string, `file://${f}`)));
    }
  }
  return seen;
}

function dynamicImports(file: string): string[] {
  return [...Deno.readTextFileSync(file).matchAll(/import\("(\.[^"]+)"\)/g)].map((m) => {
    return fileURLToPath(new URL(m[1] as string, `file://${file}`));
  });
}

Deno.test({
  name: "the bundle's CNI and CLI start-up load neither the npm client nor node:module",
  ignore: !isLauncher,
  fn() {
    const main = `${LIB}/main.js`;
    const holdsClient = (f: string) => {
      return Deno.readTextFileSync(f).includes("kubernetes-client-javascript");
    };
    // main.js picks the CNI dispatcher or the CLI (or the agent, if it imports the source
    // itself) by a dynamic import; each is loaded with its static imports.
    const modes = dynamicImports(main).filter((f) => !holdsClient(f));
    assert.ok(modes.length >= 2, `main.js has dynamic imports ${modes}`);
    for (const start of [main, ...modes]) {
      for (const f of staticClosure(start)) {
        const text = Deno.readTextFileSync(f);
        const where = `${f.slice(LIB.length + 1)} (loaded by ${start.slice(LIB.length + 1)})`;
        assert.ok(!/from\s*"node:module"/.test(text), `${where} imports node:module`);
        assert.ok(!holdsClient(f), `${where} holds the client`);
        assert.ok(!text.includes("/undici/"), `${where} holds undici`);
      }
    }
    // The agent's file holds the client and all it needs.
    assert.ok(holdsClient(AGENT));
  },
});

Deno.test({
  name: "the bundled source runs under the launcher's deno flags and syncs from the fake",
  ignore: !isLauncher,
  async fn() {
    await using fake = await FakeApiServer.start();
    fake.put({ kind: "Namespace", metadata: { name: "x" } });
    fake.put({ kind: "Pod", metadata: { name: "a", namespace: "x" } });
    fake.put({ kind: "NetworkPolicy", metadata: { name: "p", namespace: "x" }, spec: {} });
    const kubeconfig = fake.writeKubeconfig({ auth: "cert", embed: false });
    // A script that the launcher runs instead of main.js: same deno, DENO_DIR and flags.
    const script = `${fake.dir}/run_source.js`;
    Deno.writeTextFileSync(
      script,
      `import { startKubeSource } from ${JSON.stringify(`file://${AGENT}`)};
const seen = [];
let done;
const synced = new Promise((r) => (done = r));
const source = await startKubeSource({ kubeconfig: ${JSON.stringify(kubeconfig)} }, {
  upsert: (o) => seen.push(o.kind + "/" + o.metadata.name),
  remove: () => {},
  synced: () => done(),
  problem: (m) => console.error(m),
});
await synced;
await source.stop();
console.log(JSON.stringify(seen.sort()));
`,
    );
    const launcher = `${fake.dir}/launcher`;
    const text = launcherText();
    assert.ok(text.includes(`"${LIB}/main.js"`), "the launcher does not run main.js");
    Deno.writeTextFileSync(launcher, text.replaceAll(`"${LIB}/main.js"`, `"${script}"`));
    Deno.chmodSync(launcher, 0o755);
    const out = await new Deno.Command(launcher, {
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    assert.deepEqual(JSON.parse(new TextDecoder().decode(out.stdout)), [
      "Namespace/x",
      "NetworkPolicy/p",
      "Pod/a",
    ]);
  },
});
