// Where one ebpfcni ADD's time goes, measured inside one process started the way the
// launcher starts the plugin (same deno, same flags; bench/latency.ts runs it):
//   startMs    process start -> first line of this script (runtime start-up, module graph
//              of this file only: it has no static imports)
//   importMs   loading the plugin's modules: what src/main.ts + the ADD path import
//   addMs      runCni ADD, first call in the process (cold: JIT, FFI symbol binding,
//              datapath pins opened, netlink)
//   delMs      runCni DEL of that pod, first call
//   add2Ms     ADD of a second pod in the same process (warm), del2Ms its DEL
// With "prewarm": true, before the first ADD the native layers are touched once, timed:
//   dpColdMs   ensureDatapath(pinDir) + close, first time (dlopen libbpf, open the pins)
//   dpWarmMs   the same again
//   nlColdMs   a netlink socket + one link lookup + close, first time (dlopen libmnl)
//   nlWarmMs   the same again
// so that addMs then shows what the first ADD costs beyond those.
// Arguments: a JSON object {config, pods: [{id, netns, identity}, {..}], prewarm?: boolean}.
const startMs = performance.now();

const spec = JSON.parse(Deno.args[0]!) as {
  config: Record<string, unknown>;
  pods: { id: string; netns: string; identity: number }[];
  prewarm?: boolean;
};

const t = performance.now();
const { runCni } = await import("../src/cni/dispatch.ts");
await import("../src/cni/add.ts");
await import("../src/cni/del.ts");
const importMs = performance.now() - t;

const stdin = new TextEncoder().encode(JSON.stringify(spec.config));

async function call(command: string, pod: { id: string; netns: string; identity: number }) {
  let out = "";
  const t0 = performance.now();
  const code = await runCni({
    env: {
      CNI_COMMAND: command,
      CNI_CONTAINERID: pod.id,
      CNI_NETNS: `/var/run/netns/${pod.netns}`,
      CNI_IFNAME: "eth0",
      CNI_PATH: "/usr/lib/cni",
      CNI_ARGS: `EBPFCNI_IDENTITY=${pod.identity}`,
    },
    stdin: () => Promise.resolve(stdin),
    stdout: (s) => (out += s),
  });
  const ms = performance.now() - t0;
  if (code !== 0) throw new Error(`${command} ${pod.id} failed: ${out}`);
  return ms;
}

const pre: Record<string, number> = {};
if (spec.prewarm) {
  const { ensureDatapath } = await import("../src/datapath/loader.ts");
  const { NetlinkSocket } = await import("../src/net/socket.ts");
  const { Links } = await import("../src/net/link.ts");
  const timed = (fn: () => void) => {
    const t0 = performance.now();
    fn();
    return performance.now() - t0;
  };
  const dp = () => ensureDatapath(spec.config.pinDir as string).close();
  const nl = () => {
    const s = new NetlinkSocket();
    try {
      new Links(s).get("lo");
    } finally {
      s.close();
    }
  };
  pre.dpColdMs = timed(dp);
  pre.dpWarmMs = timed(dp);
  pre.nlColdMs = timed(nl);
  pre.nlWarmMs = timed(nl);
}

const [a, b] = spec.pods;
const addMs = await call("ADD", a!);
const delMs = await call("DEL", a!);
const add2Ms = await call("ADD", b!);
const del2Ms = await call("DEL", b!);
console.log(JSON.stringify({ startMs, importMs, ...pre, addMs, delMs, add2Ms, del2Ms }));
