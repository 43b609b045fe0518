// Evidence for where DEL's time goes (not part of `deno task bench`; needs strace): runs DEL of
// both plugins under `strace -f -T -e trace=sendto,sendmsg` and reports how long the kernel
// took to answer the RTM_DELLINK request (the veth deletion), next to the whole DEL.
// strace slows the processes down, so the wall times here are higher than in the benchmark;
// the RTM_DELLINK time is the kernel's and barely affected.
//   DENO_DIR=.deno/cache .deno/bin/deno run -A bench/strace_del.ts [PODS]
// Uses dist/ebpfcni (or $EBPFCNI_BINARY); every netns, bridge and directory is removed after.
import { BenchNet } from "./cni.ts";
import { cleanupAll, fmt, freeOctets, installSignalCleanup, median, run, tempDir } from "./lib.ts";

const PODS = Number(Deno.args[0] ?? 5);

/** Seconds of the RTM_DELLINK request in an strace -T log (0x11 when strace cannot decode
 * the message type, e.g. for a socket in another netns). */
function dellinkSeconds(log: string): number {
  const lines = log.split("\n");
  let total = 0;
  lines.forEach((l, k) => {
    if (!/nlmsg_type=(RTM_DELLINK|0x11 )/.test(l)) return;
    let m = /<([\d.]+)>$/.exec(l);
    if (!m) {
      // "<unfinished ...>": the time is on the same thread's "resumed" line.
      const pid = l.split(" ")[0];
      const resumed = lines.slice(k + 1).find((x) =>
        x.startsWith(`${pid} `) && x.includes("resumed")
      );
      m = /<([\d.]+)>$/.exec(resumed ?? "");
    }
    if (m) total += Number(m[1]);
  });
  return total;
}

installSignalCleanup();
try {
  const [octet] = await freeOctets(1);
  const nets = [new BenchNet("ebpfcni", "s", octet!, 1), new BenchNet("bridge", "s", octet!, 2)];
  const dir = tempDir("strace");
  const out: Record<string, { dellinkMs: number[]; wallMs: number[] }> = {};
  for (const net of nets) {
    const pods = await net.makePods(PODS + 1);
    for (const p of pods) await net.call("ADD", p);
    await net.call("DEL", pods[0]!); // warm-up, not counted
    out[net.kind] = { dellinkMs: [], wallMs: [] };
    for (const p of pods.slice(1)) {
      const { cmd, env } = net.invocation("DEL", p);
      const file = `${dir}/${net.kind}-${p.id}.strace`;
      const res = await run(
        "strace",
        ["-f", "-T", "-e", "trace=sendto,sendmsg", "-o", file, cmd],
        { env, clearEnv: true, stdin: JSON.stringify(net.config()) },
      );
      if (res.code !== 0) throw new Error(`${net.kind} DEL under strace failed: ${res.stdout}`);
      out[net.kind]!.dellinkMs.push(dellinkSeconds(Deno.readTextFileSync(file)) * 1000);
      out[net.kind]!.wallMs.push(res.ms);
    }
  }
  for (const [kind, r] of Object.entries(out)) {
    console.log(
      `${kind.padEnd(8)} RTM_DELLINK median ${fmt(median(r.dellinkMs), 1)} ms ` +
        `(${r.dellinkMs.map((x) => fmt(x, 1)).join(", ")}); whole DEL under strace median ` +
        `${fmt(median(r.wallMs), 1)} ms`,
    );
  }
} finally {
  await cleanupAll();
}
