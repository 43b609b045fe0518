// Where CLI output goes. Commands write whole strings through an Io so tests of the
// dispatcher can capture them; the real one writes to the process's stdout and stderr.

export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** All of stdin (for `import -`). */
  readStdin(): Promise<Uint8Array>;
}

import { readStdinSync } from "../stdin.ts";

const encoder = new TextEncoder();

function writeAll(w: { writeSync(p: Uint8Array): number }, text: string): void {
  let buf = encoder.encode(text);
  try {
    while (buf.length > 0) buf = buf.subarray(w.writeSync(buf));
  } catch (err) {
    // A reader that went away (`ebpfcni policy list | head`) is not our failure.
    if (!(err instanceof Deno.errors.BrokenPipe)) throw err;
  }
}

export const processIo: Io = {
  out: (text) => writeAll(Deno.stdout, text),
  err: (text) => writeAll(Deno.stderr, text),
  readStdin: () => Promise.resolve(readStdinSync()),
};
