// The manifest source's load path at scale (issue 19, item 10): one multi-document YAML file of
// N namespaces (and, in the "pods" case, N remote pods in 100 namespaces) renamed into the
// directory of a running `ebpfcni agent run`, timed to the maps reflecting the whole file;
// meanwhile `status` requests go to its socket every 100 ms and the slowest answer is kept (the
// socket must keep answering while it loads), and the agent's peak RSS. Sizes
// above 40,000 namespaces are split over files of 40,000 (one file may hold 8 MiB).
// A linear load shows as a time ratio close to the size ratio between rows.
// Last, N namespaces as one `kind: List` document (one YAML document: parsed in one go, on the
// agent's worker thread).
// Run: deno run -A bench/manifest_scale.ts [--sizes=5000,10000,20000] [--pods=20000] [--list=N]
// [--timeout=600] [--out=FILE] (as root, after scripts/build.sh; EBPFCNI_BINARY picks another
// build). Prints a table, writes bench/results-manifest-scale.json (or --out).
import {
  BINARY,
  cleanupAll,
  fmt,
  installSignalCleanup,
  log,
  numArg,
  onCleanup,
  pinDir,
  ROOT,
  table,
  tempDir,
  textArg,
} from "./lib.ts";
import { requestLine } from "../src/net/unix_rpc.ts";

const SIZES = (textArg("sizes") ?? "5000,10000,20000").split(",").filter((x) => x !== "").map(
  Number,
);
const PODS = numArg("pods", 20000);
/** Namespaces in one `kind: List` document (one YAML document: parsed in one go). */
const LIST = numArg("list", 60000);
const TIMEOUT_S = numArg("timeout", 600);
const PER_FILE = 40_000;
const OUT = textArg("out") ?? `${ROOT}/bench/results-manifest-scale.json`;

interface Row {
  case: string;
  objects: number;
  bytes: number;
  loadMs: number | null;
  statusMaxMs: number;
  statusCount: number;
  peakRssMiB: number;
}

function namespaceDoc(i: number): string {
  return `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns-${i}\n  labels:\n    team: t${
    i % 10
  }\n`;
}

function podDoc(i: number): string {
  const ip = `10.${64 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
  return `apiVersion: v1\nkind: Pod\nmetadata:\n  name: p-${i}\n  namespace: ns-${
    i % 100
  }\n  labels:\n    app: a${
    i % 50
  }\nspec:\n  nodeName: other-node\n  containers:\n  - name: c\n    image: x\nstatus:\n  podIP: ${ip}\n  podIPs:\n  - ip: ${ip}\n`;
}

/** Writes the docs over files of at most PER_FILE documents; total bytes. A single doc
 * starting with "kind: List" is written as it is. */
function writeFiles(dir: string, docs: string[]): number {
  if (docs.length === 1) {
    Deno.writeTextFileSync(`${dir}/list.yaml`, docs[0]!);
    return docs[0]!.length;
  }
  let bytes = 0;
  for (let f = 0; f * PER_FILE < docs.length; f++) {
    const text = docs.slice(f * PER_FILE, (f + 1) * PER_FILE).join("---\n");
    Deno.writeTextFileSync(`${dir}/cluster-${String(f).padStart(3, "0")}.yaml`, text);
    bytes += text.length;
  }
  return bytes;
}

function peakRssMiB(pid: number): number {
  try {
    const s = Deno.readTextFileSync(`/proc/${pid}/status`);
    return Number(s.match(/VmHWM:\s+(\d+)/)?.[1] ?? NaN) / 1024;
  } catch {
    return NaN;
  }
}

async function runCase(name: string, docs: string[], expect: number): Promise<Row> {
  const dir = tempDir(`scale-${name}`);
  const manifests = `${dir}/manifests`;
  const staged = `${dir}/staged`;
  Deno.mkdirSync(manifests);
  Deno.mkdirSync(staged);
  const bytes = writeFiles(staged, docs);
  const pins = pinDir(`scale-${name}`);
  const socket = `${dir}/agent.sock`;
  const child = new Deno.Command(BINARY, {
    args: [
      "agent",
      "run",
      ...["--manifests", manifests, "--node", "bench-node", "--pin-dir", pins],
      ...["--state-dir", `${dir}/state`, "--socket", socket, "--log-level", "error"],
    ],
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  let exited = false;
  const status = child.status.then((s) => (exited = true, s));
  const stop = async () => {
    if (!exited) child.kill("SIGKILL");
    await status;
  };
  onCleanup(`agent ${name}`, stop);
  let loadMs: number | null = null;
  let statusMaxMs = 0;
  let statusCount = 0;
  let peak = NaN;
  try {
    // Started on an empty directory: the files arrive in a running agent (as a ConfigMap
    // update or `kubectl get -o yaml > dir/x.yaml` would), renamed in whole.
    for (let i = 0;; i++) {
      if (exited || i > 600) throw new Error(`the agent did not start: ${await status}`);
      try {
        const r = await requestLine(socket, { op: "sync" }, 10_000) as { status?: unknown };
        if (r.status !== undefined) break;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const t0 = performance.now();
    for (const f of Deno.readDirSync(staged)) {
      Deno.renameSync(`${staged}/${f.name}`, `${manifests}/${f.name}`);
    }
    while (performance.now() - t0 < TIMEOUT_S * 1000 && !exited) {
      const asked = performance.now();
      let st: Record<string, number | boolean> | undefined;
      try {
        const r = await requestLine(socket, { op: "status" }, TIMEOUT_S * 1000) as {
          status?: Record<string, number | boolean>;
        };
        st = r.status;
        const ms = performance.now() - asked;
        statusCount++;
        statusMaxMs = Math.max(statusMaxMs, ms);
      } catch {
        // not listening yet
      }
      if (
        st !== undefined && st.synced === true && st.appliedGeneration === st.generation &&
        (st.namespaces as number) + (st.pods as number) >= expect
      ) {
        loadMs = performance.now() - t0;
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    peak = peakRssMiB(child.pid);
  } finally {
    await stop();
  }
  const row = {
    case: name,
    objects: expect,
    bytes,
    loadMs,
    statusMaxMs,
    statusCount,
    peakRssMiB: peak,
  };
  log(JSON.stringify(row));
  return row;
}

async function main(): Promise<void> {
  installSignalCleanup();
  const rows: Row[] = [];
  try {
    for (const n of SIZES) {
      const docs = Array.from({ length: n }, (_, i) => namespaceDoc(i));
      rows.push(await runCase(`${n}-namespaces`, docs, n));
    }
    if (PODS > 0) {
      const docs = [
        ...Array.from({ length: 100 }, (_, i) => namespaceDoc(i)),
        ...Array.from({ length: PODS }, (_, i) => podDoc(i)),
      ];
      rows.push(await runCase(`${PODS}-remote-pods`, docs, PODS + 100));
    }
    if (LIST > 0) {
      const items = Array.from(
        { length: LIST },
        (_, i) => `- ${namespaceDoc(i).trimEnd().replaceAll("\n", "\n  ")}\n`,
      ).join("");
      const doc = `apiVersion: v1\nkind: List\nitems:\n${items}`;
      rows.push(await runCase(`${LIST}-namespaces-one-List`, [doc], LIST));
    }
  } finally {
    await cleanupAll();
  }
  console.log(table(
    ["case", "objects", "MiB", "load s", "slowest status ms", "status answers", "peak RSS MiB"],
    rows.map((r) => [
      r.case,
      r.objects,
      fmt(r.bytes / 1048576, 1),
      r.loadMs === null ? `> ${TIMEOUT_S}` : fmt(r.loadMs / 1000, 2),
      fmt(r.statusMaxMs, 0),
      r.statusCount,
      fmt(r.peakRssMiB, 0),
    ]),
  ));
  Deno.writeTextFileSync(
    OUT,
    JSON.stringify({ binary: BINARY, at: new Date().toISOString(), rows }, null, 2) + "\n",
  );
}

await main();
