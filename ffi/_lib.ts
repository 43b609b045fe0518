// Shared helpers for the symbol tables: opening a library with an env override and a clear
// error, C strings, and reading errno right after a failing call.
import { LibraryError } from "./errors.ts";

const encoder = new TextEncoder();

/** NUL-terminated UTF-8 copy of a string, for `buffer` parameters. */
export function toCString(s: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(s.length * 3 + 1);
  const { written } = encoder.encodeInto(s, out);
  return out.subarray(0, written + 1);
}

/** Opens `path` (or the one in `envVar`) with Deno.dlopen, turning failure into a
 * LibraryError that says which package provides the library. */
export function openLibrary<S extends Deno.ForeignLibraryInterface>(
  library: string,
  defaultPath: string,
  envVar: string,
  symbols: S,
  debianPackage: string,
): Deno.DynamicLibrary<S> {
  let path = defaultPath;
  try {
    path = Deno.env.get(envVar) || defaultPath;
  } catch {
    // No --allow-env for this variable: use the default.
  }
  try {
    return Deno.dlopen(path, symbols);
  } catch (err) {
    throw new LibraryError(
      library,
      path,
      `install the Debian package ${debianPackage} or set ${envVar}`,
      { cause: err },
    );
  }
}
