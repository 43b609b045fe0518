// Opening CNI_NETNS with the spec's error: a path that is missing or not a network
// namespace is an invalid environment variable (code 4), found before any change.
import { Netns } from "../net/netns.ts";
import { SysError } from "../../ffi/errors.ts";
import { CniError, ErrCode } from "../spec/cni.ts";
import { quote } from "../spec/text.ts";

export function openNetns(path: string): Netns {
  let ns: Netns;
  try {
    ns = Netns.open(path);
  } catch (err) {
    const why = err instanceof SysError && err.notFound ? "does not exist" : "cannot be opened";
    throw new CniError(ErrCode.InvalidEnv, `CNI_NETNS ${quote(path)} ${why}`, String(err), {
      cause: err,
    });
  }
  try {
    // Entering proves it is a network namespace (setns refuses anything else).
    ns.run(() => undefined);
  } catch (err) {
    ns.close();
    throw new CniError(
      ErrCode.InvalidEnv,
      `CNI_NETNS ${quote(path)} is not a network namespace`,
      String(err),
      { cause: err },
    );
  }
  return ns;
}
