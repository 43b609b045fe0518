// STATUS: ready only when bpffs holds (or can take) the pinned datapath and the lease store
// is usable. Loading here is the same idempotent step every ADD does first.
import { CniError, ErrCode } from "../spec/cni.ts";
import type { Ctx } from "./context.ts";
import { ipamStatus } from "../ipam/mod.ts";
import { ensureNodeDatapath } from "./datapath.ts";
import { ipamDelCtx } from "./context.ts";

export async function cmdStatus(ctx: Ctx): Promise<void> {
  try {
    using _dp = ensureNodeDatapath(ctx.conf);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw new CniError(ErrCode.PluginNotAvailable, `Datapath not ready: ${msg}`, "", {
      cause: err,
    });
  }
  const d = ipamDelCtx(ctx);
  await ipamStatus(ctx.conf.name, ctx.conf.ipam, { rawConfig: d.rawConfig, env: d.env });
}
