// STATUS: ready only when bpffs holds (or can take) the pinned datapath, the lease store is
// usable and the state directory takes a record. Loading here is the same idempotent step
// every ADD does first.
import { CniError, ErrCode } from "../spec/cni.ts";
import type { Ctx } from "./context.ts";
import { ipamStatus } from "../ipam/mod.ts";
import { probeFile } from "../ipam/lease_store.ts";
import { checkPrivateDir } from "../spec/private_dir.ts";
import { errorMessage, quote } from "../spec/text.ts";
import { ensureNodeDatapath } from "./datapath.ts";
import { ipamDelCtx } from "./context.ts";

export async function cmdStatus(ctx: Ctx): Promise<void> {
  try {
    using _dp = ensureNodeDatapath(ctx.conf);
  } catch (err) {
    const msg = errorMessage(err);
    throw new CniError(ErrCode.PluginNotAvailable, `Datapath not ready: ${msg}`, "", {
      cause: err,
    });
  }
  const d = ipamDelCtx(ctx);
  await ipamStatus(ctx.conf.name, ctx.conf.ipam, { rawConfig: d.rawConfig, env: d.env });
  probeStateDir(ctx.conf.stateDir);
}

/** Every ADD writes its record first: a refused or full stateDir would fail them all. One
 * that does not exist yet is made by the first ADD. */
function probeStateDir(dir: string): void {
  try {
    checkPrivateDir(dir, "stateDir");
    let exists = false;
    try {
      exists = Deno.statSync(dir).isDirectory;
    } catch {
      // made by the first ADD
    }
    if (exists) probeFile(`${dir}/.ebpfcni-probe.${crypto.randomUUID()}`);
  } catch (err) {
    const msg = errorMessage(err);
    throw new CniError(
      ErrCode.PluginNotAvailable,
      `State directory ${quote(dir)} is not usable: ${msg}`,
      "",
      { cause: err },
    );
  }
}
