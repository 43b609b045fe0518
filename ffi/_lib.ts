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

// The loader itself: libc's dlopen/dlsym, bound once through Deno.dlopen.
const loaderSymbols = {
  dlopen: { parameters: ["buffer", "i32"], result: "pointer" }, // const char *file, int mode
  dlsym: { parameters: ["pointer", "buffer"], result: "pointer" }, // void *handle, const char *name
  dlerror: { parameters: [], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;
const RTLD_NOW = 2;
let loader: Deno.DynamicLibrary<typeof loaderSymbols> | undefined;

function dlerror(): string {
  const p = loader?.symbols.dlerror();
  return p ? Deno.UnsafePointerView.getCString(p) : "unknown error";
}

/** Opens `path` (or the one in `envVar`), turning failure into a LibraryError that says
 * which package provides the library.
 *
 * Symbols are resolved lazily with dlsym and called through Deno.UnsafeFnPointer: binding
 * a symbol table with Deno.dlopen costs ~0.25 ms per symbol on this machine, an
 * UnsafeFnPointer ~0.05 ms, and a CNI call uses only a few symbols of each table. */
export function openLibrary<S extends Deno.ForeignLibraryInterface>(
  library: string,
  defaultPath: string,
  envVar: string,
  symbols: S,
  debianPackage: string,
): { symbols: Deno.DynamicLibrary<S>["symbols"] } {
  let path = defaultPath;
  try {
    path = Deno.env.get(envVar) || defaultPath;
  } catch {
    // No --allow-env for this variable: use the default.
  }
  loader ??= Deno.dlopen("libc.so.6", loaderSymbols);
  const handle = loader.symbols.dlopen(toCString(path), RTLD_NOW);
  if (!handle) {
    throw new LibraryError(
      library,
      path,
      `install the Debian package ${debianPackage} or set ${envVar}`,
      { cause: new Error(dlerror()) },
    );
  }
  const dl = loader;
  const lazy = {} as Record<string, unknown>;
  for (const [name, def] of Object.entries(symbols)) {
    Object.defineProperty(lazy, name, {
      configurable: true,
      enumerable: true,
      get() {
        const addr = dl.symbols.dlsym(handle, toCString(name));
        if (!addr) {
          throw new LibraryError(library, path, `it has no symbol ${name} (too old?)`, {
            cause: new Error(dlerror()),
          });
        }
        const fnDef = def as Deno.ForeignFunction;
        const fnPtr = new Deno.UnsafeFnPointer(addr as Deno.PointerObject<typeof fnDef>, fnDef);
        const fn = fnPtr.call.bind(fnPtr);
        Object.defineProperty(lazy, name, { value: fn, enumerable: true });
        return fn;
      },
    });
  }
  return { symbols: lazy as Deno.DynamicLibrary<S>["symbols"] };
}
