// The CNI protocol entry: env + stdin in, result or error JSON out. Validation happens
// before any change to the host; errors become the spec's error object on stdout with a
// non-zero exit, anything unexpected becomes code 999 with its cause chain in details.
import { causeChain, CniError, ErrCode } from "../spec/cni.ts";
import { parseEnv } from "./env.ts";
import { parseNetConf } from "./net_conf.ts";
import { checkCommandAllowed, CURRENT_VERSION, versionInfo } from "./spec_version.ts";
import { formatError, formatResult } from "./result.ts";
import { type Caller, type Ctx, makeCtx } from "./context.ts";
import { AttachmentLock } from "./lock.ts";
import { log } from "../log.ts";
import { faultPoint } from "./fault.ts";
import { errorMessage } from "../spec/text.ts";
import { decodeNetConf, type Obj } from "../spec/json.ts";

export interface CniIo {
  env: Record<string, string>;
  stdin: () => Promise<Uint8Array>;
  /** stdin's JSON, when the caller decoded it already (main.ts): it is not decoded again. */
  config?: Obj;
  stdout: (s: string) => void;
  /** Set when the policy agent runs the call for a plugin process (agent/cni_serve.ts). */
  caller?: Caller;
}

/** The attachment's lock (lock.ts), released when the command is done; its file goes with
 * the attachment (no record left: a DEL, or an ADD that failed and rolled back). */
async function lockAttachment(ctx: Ctx): Promise<Disposable> {
  // Directories made only for the lock go again with it, when nothing else is in them: a
  // command that failed on bad input leaves the host as it found it.
  const made = [ctx.state.stateDir, ctx.state.dir].filter((d) => !isDir(d));
  const { containerId, ifname } = ctx.env;
  let lock: AttachmentLock | undefined;
  for (let attempt = 0; lock === undefined; attempt++) {
    ctx.state.ensureDir();
    try {
      lock = await AttachmentLock.acquire(
        ctx.state.dir,
        containerId,
        ifname,
        undefined,
        ctx.caller?.signal,
      );
    } catch (err) {
      // A concurrent failed call on a fresh network may just have removed the directories.
      if (attempt >= 2 || isDir(ctx.state.dir) || ctx.caller?.signal.aborted) throw err;
    }
  }
  return {
    [Symbol.dispose]() {
      try {
        if (ctx.state.modifiedAt(containerId, ifname) === undefined) {
          lock!.discard();
          for (const d of made.reverse()) removeIfEmpty(d);
        }
      } finally {
        lock![Symbol.dispose]();
      }
    },
  };
}

function isDir(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

function removeIfEmpty(dir: string): void {
  try {
    Deno.removeSync(dir); // not recursive: fails if anything is in it
  } catch {
    // in use
  }
}

export async function runCni(io: CniIo): Promise<number> {
  let stdin: Uint8Array | undefined;
  let version: string = CURRENT_VERSION;
  try {
    const env = parseEnv(io.env);
    if (env.command === "VERSION") {
      io.stdout(JSON.stringify(versionInfo()) + "\n");
      return 0;
    }
    stdin = await io.stdin();
    const json = io.config ?? decodeNetConf(stdin);
    // The version an error is shaped for, should the config fail its checks.
    if (typeof json.cniVersion === "string") version = json.cniVersion;
    const conf = parseNetConf(stdin, json);
    version = conf.cniVersion;
    checkCommandAllowed(env.command, conf.cniVersion);
    const ctx = makeCtx(env, io.env, conf, io.caller);
    log.debug(`${env.command} ${env.containerId} ${env.ifname} on "${conf.name}"`);
    switch (env.command) {
      case "ADD": {
        const { cmdAdd } = await import("./add.ts");
        await faultPoint(io.env, "before-lock");
        using _lock = await lockAttachment(ctx);
        const result = await cmdAdd(ctx);
        try {
          io.stdout(JSON.stringify(formatResult(result, conf.cniVersion)) + "\n");
        } catch (err) {
          // The runtime never got the result (stdout closed): undone like any failed ADD.
          const { cmdDel } = await import("./del.ts");
          await cmdDel(ctx);
          throw err;
        }
        return 0;
      }
      case "DEL": {
        const { cmdDel } = await import("./del.ts");
        using _lock = await lockAttachment(ctx);
        await cmdDel(ctx);
        return 0;
      }
      case "CHECK": {
        const { cmdCheck } = await import("./check.ts");
        using _lock = await lockAttachment(ctx);
        await cmdCheck(ctx);
        return 0;
      }
      case "STATUS": {
        const { cmdStatus } = await import("./status.ts");
        await cmdStatus(ctx);
        return 0;
      }
      case "GC": {
        const { cmdGc } = await import("./gc.ts");
        await cmdGc(ctx);
        return 0;
      }
    }
  } catch (err) {
    const cniErr = err instanceof CniError ? err : new CniError(
      ErrCode.Internal,
      errorMessage(err),
      causeChain(err),
      {
        cause: err,
      },
    );
    log.error(`${io.env.CNI_COMMAND}: ${causeChain(cniErr)}`);
    try {
      io.stdout(JSON.stringify(formatError(cniErr, version)) + "\n");
    } catch {
      // stdout is gone (the logged error may be why): the exit status still says it failed
    }
    return 1;
  }
}
