// Shared steps of `endpoint import` and `policy import`: reading the file (or stdin), turning
// validation failures into usage errors that name the file, and writing in batches that are
// undone if the kernel refuses one part-way (e.g. a CNI ADD filled the map meanwhile).
import { errorMessage, quote } from "../spec/text.ts";
import { ImportError } from "../identity_mode/import_plan.ts";
import { CommandError, UsageError } from "./errors.ts";
import type { Io } from "./io.ts";

/** Entries per batch syscall: big enough that syscalls are not the cost, small enough that a
 * failure leaves little to undo. */
export const IMPORT_CHUNK = 16384;

export function sourceName(path: string): string {
  return path === "-" ? "<stdin>" : quote(path);
}

function readProblem(err: unknown): string {
  if (err instanceof Deno.errors.NotFound) return "no such file";
  if (err instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (err instanceof Deno.errors.IsADirectory) return "is a directory";
  // Deno appends " (os error N): op 'path'"; the path is already in the message.
  return errorMessage(err).replace(/ \(os error \d+\).*$/, "");
}

/** Reads the import source as UTF-8 text: a file, or stdin for "-". */
export async function readSource(path: string, io: Io): Promise<string> {
  let bytes: Uint8Array;
  try {
    bytes = path === "-" ? await io.readStdin() : await Deno.readFile(path);
  } catch (err) {
    throw new CommandError(`Cannot read ${sourceName(path)}: ${readProblem(err)}`, { cause: err });
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new UsageError(`Invalid ${sourceName(path)}: not UTF-8 text`);
  }
}

/** Runs a file parser, reporting an invalid file as a usage error naming it. */
export function validateSource<T>(
  kind: string,
  path: string,
  text: string,
  parse: (t: string) => T,
): T {
  try {
    return parse(text);
  } catch (err) {
    if (err instanceof ImportError) {
      throw new UsageError(`Invalid ${kind} file ${sourceName(path)}: ${err.message}`);
    }
    throw err;
  }
}

/**
 * Writes `items` in chunks. When a chunk fails, `undo` gets every item of the chunks tried so
 * far (the failing one may be partly written) and the error is rethrown.
 */
export function writeChunked<T>(
  items: readonly T[],
  write: (chunk: readonly T[]) => void,
  undo: (tried: readonly T[]) => void,
): void {
  for (let at = 0; at < items.length; at += IMPORT_CHUNK) {
    try {
      write(items.slice(at, at + IMPORT_CHUNK));
    } catch (err) {
      try {
        undo(items.slice(0, at + IMPORT_CHUNK));
      } catch (undoErr) {
        throw new CommandError(
          `${errorMessage(err)}; undoing the partial import also failed: ` +
            `${errorMessage(undoErr)}`,
          { cause: err },
        );
      }
      throw err;
    }
  }
}
