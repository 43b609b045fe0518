// The shape every leaf command has, so the dispatcher can parse, help and run them alike.
import type { FlagSpecs, ParsedFlags } from "./args.ts";
import type { Io } from "./io.ts";

export interface Ctx {
  /** Resolved pin directory (flag, env or default). */
  pinDir: string;
  io: Io;
  env: Record<string, string>;
}

export interface Command<S extends FlagSpecs = FlagSpecs> {
  /** The command line without "ebpfcni ", e.g. "endpoint add --ip IP --identity ID". */
  synopsis: string;
  /** One line for the group's help. */
  summary: string;
  /** Help text after the usage line: what it does, then its own options. */
  help: string;
  /** Its own flags; --pin-dir and --help are added by the dispatcher. */
  flags: S;
  positionals?: { min: number; max: number; names: string };
  run(ctx: Ctx, args: ParsedFlags<S>): Promise<number> | number;
}

/** A command whose run() reads its flags typed: each as its spec's parse and default make it. */
export function command<S extends FlagSpecs>(c: Command<S>): Command {
  return c as unknown as Command;
}
