// The datapath as the CNI commands see it: load-or-reuse for ADD (a failure means the node
// is not ready: code 11), open-only for DEL, CHECK and GC (which must not create pins).
import {
  type Datapath,
  DatapathError,
  ensureDatapath,
  openPinnedMaps,
} from "../datapath/loader.ts";
import { BpfError, LibraryError } from "../../ffi/errors.ts";
import { CniError, ErrCode } from "../spec/cni.ts";

export function openDatapath(pinDir: string, create: true): Datapath;
export function openDatapath(pinDir: string, create: false): Datapath | undefined;
export function openDatapath(pinDir: string, create: boolean): Datapath | undefined {
  try {
    return create ? ensureDatapath(pinDir) : openPinnedMaps(pinDir);
  } catch (err) {
    if (err instanceof DatapathError || err instanceof LibraryError) {
      const log = err.cause instanceof BpfError ? err.cause.log : "";
      throw new CniError(ErrCode.TryAgainLater, err.message, log, { cause: err });
    }
    throw err;
  }
}
