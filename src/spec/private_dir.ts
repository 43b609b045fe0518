// The rule for directories the plugin keeps state in (its records, the IPAM leases): anyone
// who can write into one can plant files (or symlinks) the plugin would then trust or write
// through, so it must be a real directory, root's (or the caller's), writable by its owner only.
import { CniError, ErrCode } from "./cni.ts";
import { quote } from "./text.ts";

/** Refuses a directory that is a symlink, not ours, or writable by group or others; a missing
 * one passes (the caller creates it private). */
export function checkPrivateDir(dir: string, what: string): void {
  let st: Deno.FileInfo;
  try {
    st = Deno.lstatSync(dir);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return;
    throw new CniError(ErrCode.IoFailure, `Cannot inspect ${what} ${quote(dir)}`, String(err), {
      cause: err,
    });
  }
  const fail = (why: string): never => {
    throw new CniError(
      ErrCode.InvalidConfig,
      `Refusing ${what} ${quote(dir)}: ${why}; it must be a directory owned by root and ` +
        "writable by its owner only",
    );
  };
  if (st.isSymlink) fail("it is a symbolic link");
  if (!st.isDirectory) fail("it is not a directory");
  const uid = Deno.uid();
  if (st.uid !== 0 && st.uid !== uid) fail(`it is owned by uid ${st.uid}`);
  const mode = st.mode ?? 0;
  if (mode & 0o022) {
    fail(
      `it is ${mode & 0o002 ? "world" : "group"}-writable (mode ${(mode & 0o7777).toString(8)})`,
    );
  }
}
