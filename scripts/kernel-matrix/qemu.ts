// Boots a guest kernel + initramfs under qemu-system-x86_64 and waits for it to power off.
// KVM is used when /dev/kvm opens, but a guest that shows no sign of life on its console in
// time (here, nested KVM hangs in the firmware) is killed and booted again under TCG.
// Every qemu run has a hard timeout and is killed on the way out, whatever happens.
import { live, log } from "./sh.ts";

export type Accel = "kvm" | "tcg";

export interface BootConfig {
  kernel: string;
  initrd: string;
  append: string;
  memory: string;
  smp: number;
  accel: Accel | "auto";
  /** The guest's console (ttyS0). */
  consoleLog: string;
  /** The guest's second serial port (ttyS1), where run-tests.sh writes its KM lines. */
  resultsLog: string;
  /** init prints this on the console as soon as it runs. */
  marker: string;
  /** How long each accelerator gets to reach `marker`. */
  bootTimeoutMs: Record<Accel, number>;
  /** How long the whole run may take once `marker` was seen. */
  runTimeoutMs: number;
}

export interface Attempt {
  accel: Accel;
  outcome: "powered-off" | "boot-timeout" | "run-timeout" | "qemu-failed";
  /** qemu start to `marker` on the console. */
  bootMs?: number;
  wallMs: number;
  exitCode?: number;
  stderr: string;
}

export function kvmUsable(): boolean {
  try {
    Deno.openSync("/dev/kvm", { read: true, write: true }).close();
    return true;
  } catch {
    return false;
  }
}

export function qemuArgs(cfg: BootConfig, accel: Accel): string[] {
  return [
    // No default NIC (its option ROM only slows the boot), VGA, monitor or parallel port.
    "-nodefaults",
    "-display",
    "none",
    "-no-reboot",
    "-machine",
    `pc,accel=${accel}`,
    "-cpu",
    accel === "kvm" ? "host" : "max",
    "-smp",
    String(cfg.smp),
    "-m",
    cfg.memory,
    "-kernel",
    cfg.kernel,
    "-initrd",
    cfg.initrd,
    "-append",
    cfg.append,
    "-serial",
    `file:${cfg.consoleLog}`,
    "-serial",
    `file:${cfg.resultsLog}`,
  ];
}

function readText(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
}

async function attempt(cfg: BootConfig, accel: Accel): Promise<Attempt> {
  for (const p of [cfg.consoleLog, cfg.resultsLog]) Deno.writeTextFileSync(p, "");
  const start = performance.now();
  // coreutils timeout is the hard limit that holds even if this process is killed: it
  // outlives us and kills qemu at the deadline. It passes our SIGTERM on to qemu.
  const hardLimitS = Math.ceil((cfg.bootTimeoutMs[accel] + cfg.runTimeoutMs) / 1000) + 30;
  const child = new Deno.Command("timeout", {
    args: ["-s", "KILL", String(hardLimitS), "qemu-system-x86_64", ...qemuArgs(cfg, accel)],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  live.add(child);
  const stderr = new Response(child.stderr).text();
  let exited: Deno.CommandStatus | undefined;
  const status = child.status.then((s) => (exited = s));
  const kill = async () => {
    try {
      child.kill("SIGTERM");
      const late = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch {
          // gone
        }
      }, 5000);
      await status;
      clearTimeout(late);
    } catch {
      // exited meanwhile
    }
    await status;
  };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const result = async (outcome: Attempt["outcome"], bootMs?: number): Promise<Attempt> => ({
    accel,
    outcome,
    ...(bootMs !== undefined ? { bootMs } : {}),
    wallMs: Math.round(performance.now() - start),
    ...(exited ? { exitCode: exited.code } : {}),
    stderr: (await stderr).trim(),
  });
  try {
    let bootMs: number | undefined;
    while (bootMs === undefined) {
      if (readText(cfg.consoleLog).includes(cfg.marker)) {
        bootMs = Math.round(performance.now() - start);
        break;
      }
      if (exited) return await result("qemu-failed");
      if (performance.now() - start > cfg.bootTimeoutMs[accel]) {
        await kill();
        return await result("boot-timeout");
      }
      await sleep(50);
    }
    const deadline = performance.now() + cfg.runTimeoutMs;
    while (!exited) {
      if (performance.now() > deadline) {
        await kill();
        return await result("run-timeout", bootMs);
      }
      await Promise.race([status, sleep(200)]);
    }
    return await result(exited.code === 0 ? "powered-off" : "qemu-failed", bootMs);
  } finally {
    if (!exited) await kill();
    live.delete(child);
  }
}

/** Boots under KVM when it works, else (or after a KVM hang) under TCG. */
export async function boot(cfg: BootConfig): Promise<Attempt[]> {
  const order: Accel[] = cfg.accel === "auto"
    ? (kvmUsable() ? ["kvm", "tcg"] : ["tcg"])
    : [cfg.accel];
  const attempts: Attempt[] = [];
  for (const accel of order) {
    const a = await attempt(cfg, accel);
    attempts.push(a);
    if (a.outcome === "powered-off" || a.outcome === "run-timeout") break;
    if (a.outcome === "boot-timeout" || a.outcome === "qemu-failed") {
      const why = a.outcome === "boot-timeout"
        ? `no "${cfg.marker}" on the console within ${cfg.bootTimeoutMs[accel] / 1000} s`
        : `qemu exited ${a.exitCode}: ${a.stderr.split("\n").slice(-1)[0]}`;
      log(
        `${accel}: ${why}${
          accel === "kvm" && order.includes("tcg") ? "; falling back to TCG" : ""
        }`,
      );
      // A guest that got past init and then died is not the accelerator's fault.
      if (a.bootMs !== undefined) break;
    }
  }
  return attempts;
}
