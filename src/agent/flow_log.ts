// The agent's flow log (`agent run --flow-log FILE|-`): the JSON lines of drop verdicts,
// appended to FILE and rotated by size (FILE -> FILE.1 -> ... -> FILE.keep, the oldest
// removed), or written to stdout. Lines are written in order off a bounded queue, so a slow
// disk or a stdout nobody drains never holds up the agent: what overflows the queue is counted
// as dropped. The kernel's rate limit (rate_map) bounds what arrives in the first place.
import { errorMessage, quote } from "../spec/text.ts";
import type { AgentLog } from "../log.ts";

export interface FlowLogOptions {
  /** A file path, or "-" for stdout. */
  path: string;
  /** Rotate before a line would take the file past this many bytes. */
  maxBytes: number;
  /** Rotated files kept (FILE.1 newest); 0: the file is emptied instead. */
  keep: number;
}

export interface FlowLogStats {
  path: string;
  written: number;
  dropped: number;
  rotations: number;
  /** Why the events ring buffer is not read (the log is quiet), when reading it failed. */
  error?: string;
}

/** Lines waiting to be written at most (about 20 s of the default rate on one CPU). */
const MAX_QUEUED = 20_000;

/** How long close() waits for the queue to be written (a stdout nobody drains, a hung disk
 * must not hold up the agent's exit): what is left counts as dropped. */
const CLOSE_WAIT_MS = 2_000;

export class FlowLogError extends Error {
  override name = "FlowLogError";
}

/** Rotate before writing `lineBytes` to a file of `size` bytes? A line longer than the limit
 * still goes into a fresh file (never rotate an empty one). */
export function needsRotation(size: number, lineBytes: number, maxBytes: number): boolean {
  return size > 0 && size + lineBytes > maxBytes;
}

/** The renames that rotate `path` keeping `keep` old files, oldest first (each target is free
 * once the one before has run; the oldest, FILE.keep, is overwritten). */
export function rotationRenames(path: string, keep: number): [string, string][] {
  const out: [string, string][] = [];
  for (let i = keep - 1; i >= 1; i--) out.push([`${path}.${i}`, `${path}.${i + 1}`]);
  if (keep >= 1) out.push([path, `${path}.1`]);
  return out;
}

/** Where the lines go: a file, or stdout. */
export interface FlowOutput {
  write(bytes: Uint8Array): Promise<number>;
  close(): void;
}

function openFile(path: string, truncate: boolean): Deno.FsFile {
  return Deno.openSync(path, {
    write: true,
    create: true,
    append: !truncate,
    truncate,
    mode: 0o600,
  });
}

export class FlowLog {
  readonly #opts: FlowLogOptions;
  readonly #log: AgentLog;
  readonly #queue: Uint8Array[] = [];
  #out: FlowOutput;
  #size: number;
  #writing: Promise<void> | undefined;
  #failing = false;
  readonly #stats: FlowLogStats;

  #closed = false;

  private constructor(opts: FlowLogOptions, log: AgentLog, out: FlowOutput, size: number) {
    this.#opts = opts;
    this.#log = log;
    this.#out = out;
    this.#size = size;
    this.#stats = { path: opts.path, written: 0, dropped: 0, rotations: 0 };
  }

  /** Opens (appends to) the file; throws a FlowLogError naming it when it cannot. */
  static open(opts: FlowLogOptions, log: AgentLog): FlowLog {
    if (opts.path === "-") {
      return FlowLog.over({ write: (b) => Deno.stdout.write(b), close() {} }, opts, log);
    }
    try {
      const file = openFile(opts.path, false);
      return new FlowLog(opts, log, file, file.statSync().size);
    } catch (err) {
      throw new FlowLogError(
        `Cannot open the flow log ${quote(opts.path)}: ${errorMessage(err)}`,
        { cause: err },
      );
    }
  }

  /** A flow log written to `out` as to stdout (never rotated). */
  static over(out: FlowOutput, opts: FlowLogOptions, log: AgentLog): FlowLog {
    return new FlowLog({ ...opts, path: "-" }, log, out, 0);
  }

  get stats(): FlowLogStats {
    return { ...this.#stats };
  }

  /** Queues one line (with its newline). */
  write(line: string): void {
    if (this.#closed || this.#queue.length >= MAX_QUEUED) {
      this.#stats.dropped++;
      return;
    }
    this.#queue.push(new TextEncoder().encode(line));
    this.#kick();
  }

  #kick(): void {
    this.#writing ??= this.#drain().finally(() => {
      this.#writing = undefined;
      // A line queued after the drain's last look, before this ran, found it still busy.
      if (this.#queue.length > 0 && !this.#closed) this.#kick();
    });
  }

  async #drain(): Promise<void> {
    for (let bytes = this.#queue.shift(); bytes; bytes = this.#queue.shift()) {
      try {
        if (
          this.#opts.path !== "-" && needsRotation(this.#size, bytes.length, this.#opts.maxBytes)
        ) {
          this.#rotate();
        }
        for (let at = 0; at < bytes.length;) at += await this.#out.write(bytes.subarray(at));
        if (this.#closed) return; // close() gave up on it and counted it dropped
        this.#size += bytes.length;
        this.#stats.written++;
        if (this.#failing) this.#log.info("flow log writes again", { path: this.#opts.path });
        this.#failing = false;
      } catch (err) {
        if (this.#closed) return; // as above
        this.#stats.dropped++;
        if (!this.#failing) {
          this.#log.error("cannot write the flow log", {
            path: this.#opts.path,
            error: String(err),
          });
        }
        this.#failing = true;
      }
    }
  }

  #rotate(): void {
    try {
      this.#out.close();
    } catch {
      // closed by a rotation that failed half-way
    }
    for (const [from, to] of rotationRenames(this.#opts.path, this.#opts.keep)) {
      try {
        Deno.renameSync(from, to);
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
      }
    }
    this.#out = openFile(this.#opts.path, this.#opts.keep === 0);
    this.#size = 0;
    this.#stats.rotations++;
  }

  /** Writes what is queued (waiting at most `waitMs`: the rest counts as dropped), then
   * closes the file. */
  async close(waitMs = CLOSE_WAIT_MS): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const gaveUp = new Promise<true>((resolve) => {
      timer = setTimeout(() => resolve(true), waitMs);
    });
    const drained = (async () => {
      while (this.#writing) await this.#writing;
      return false as const;
    })();
    const late = await Promise.race([drained, gaveUp]);
    clearTimeout(timer);
    this.#closed = true;
    if (late) {
      const left = this.#queue.length + (this.#writing ? 1 : 0);
      this.#stats.dropped += left;
      this.#queue.length = 0;
      this.#log.warn("the flow log was not written out in time", {
        path: this.#opts.path,
        dropped: left,
      });
    }
    try {
      this.#out.close();
    } catch {
      // closed by a rotation that failed half-way
    }
  }
}
