// What every command derives from env + config before touching the host: validated names,
// the IPAM contexts, the identity. Pure apart from reading nothing at all.
import type { CniEnv } from "./env.ts";
import type { CniCaller } from "../spec/agent_wire.ts";
import { ipamStdin, type NetConf, requestedIps } from "./net_conf.ts";
import { identityArg, parseCniArgs, podNamespaceArg, rejectUnknownArgs } from "./cni_args.ts";
import type { IpamContext, IpamDelContext } from "../ipam/mod.ts";
import { type ResolvedIdentity, resolveIdentity } from "../identity_mode/identity_source.ts";
import { hostVethName } from "../net/veth_names.ts";
import { StateStore } from "../node/attachment_store.ts";

/** Who a call runs for when the policy agent runs it (handed over by a plugin process). */
export type Caller = CniCaller;

export interface Ctx {
  env: CniEnv;
  caller?: Caller;
  rawEnv: Record<string, string>;
  conf: NetConf;
  cniArgs: Map<string, string>;
  hostVeth: string;
  state: StateStore;
}

export function makeCtx(
  env: CniEnv,
  rawEnv: Record<string, string>,
  conf: NetConf,
  caller?: Caller,
): Ctx {
  const cniArgs = parseCniArgs(env.args);
  // DEL stays best effort: it reads no argument, and must clean up whatever ADD was given.
  if (env.command === "ADD" || env.command === "CHECK") rejectUnknownArgs(cniArgs);
  return {
    env,
    rawEnv,
    conf,
    cniArgs,
    hostVeth: env.containerId ? hostVethName(env.containerId, env.ifname) : "",
    state: new StateStore(conf.stateDir, conf.name),
    ...(caller === undefined ? {} : { caller }),
  };
}

/** The CNI_* variables a delegated IPAM plugin is run with, naming the attachment it acts on
 * (GC tears down attachments other than the one, if any, in its own environment). */
function cniEnv(ctx: Ctx, containerId: string, ifname: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(ctx.rawEnv)) if (k.startsWith("CNI_")) out[k] = v;
  if (containerId !== "") out.CNI_CONTAINERID = containerId;
  if (ifname !== "") out.CNI_IFNAME = ifname;
  return out;
}

export function ipamDelCtx(
  ctx: Ctx,
  containerId = ctx.env.containerId,
  ifname = ctx.env.ifname,
): IpamDelContext {
  return {
    network: ctx.conf.name,
    containerId,
    ifname,
    conf: ctx.conf.ipam,
    rawConfig: ipamStdin(ctx.conf),
    env: cniEnv(ctx, containerId, ifname),
  };
}

export function ipamAddCtx(ctx: Ctx): IpamContext {
  return { ...ipamDelCtx(ctx), requestedIps: requestedIps(ctx.conf, ctx.cniArgs) };
}

export function identityOf(ctx: Ctx): ResolvedIdentity {
  return resolveIdentity({
    cniArgsIdentity: identityArg(ctx.cniArgs),
    argsIdentity: ctx.conf.args.identity,
    labels: ctx.conf.args.labels,
    namespace: podNamespaceArg(ctx.cniArgs),
  });
}
