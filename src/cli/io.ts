// Where CLI output goes. Commands write whole strings through an Io so tests of the
// dispatcher can capture them; the real one writes to the process's stdout and stderr.

export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** All of stdin (for `import -`). */
  readStdin(): Promise<Uint8Array>;
  /** Whoever read `out` went away (a command that streams stops then). */
  readonly outClosed?: boolean;
}

import { readStdinSync } from "../stdin.ts";

const encoder = new TextEncoder();

/** False when the reader went away. */
function writeAll(w: { writeSync(p: Uint8Array): number }, text: string): boolean {
  let buf = encoder.encode(text);
  try {
    while (buf.length > 0) buf = buf.subarray(w.writeSync(buf));
  } catch (err) {
    // A reader that went away (`ebpfcni policy list | head`) is not our failure.
    if (!(err instanceof Deno.errors.BrokenPipe)) throw err;
    return false;
  }
  return true;
}

let stdoutClosed = false;

export const processIo: Io = {
  out: (text) => void (writeAll(Deno.stdout, text) || (stdoutClosed = true)),
  err: (text) => void writeAll(Deno.stderr, text),
  readStdin: () => Promise.resolve(readStdinSync()),
  get outClosed() {
    return stdoutClosed;
  },
};
