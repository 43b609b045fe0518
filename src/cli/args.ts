// Pure parsing of the CLI's command lines and values: identities, IPv4 addresses, the pin
// directory, and each command's flags. Flags go through node:util parseArgs (tokens mode),
// but its errors are replaced with one-line messages that name the bad flag or value.
import { parseArgs } from "node:util";
import { quote } from "../spec/text.ts";
import { IDENTITY_RANGE, parseIdentityText } from "../spec/identity_rule.ts";
import { IDENTITY_HOST, IDENTITY_WORLD } from "../spec/bpf_layout.ts";
import { ipv4Problem, parseIpv4 as ipv4FromText } from "../spec/ipv4.ts";
import { UsageError } from "./errors.ts";

/** Where the maps are pinned unless --pin-dir or EBPFCNI_PIN_DIR says otherwise (the same
 * default as the CNI config's pinDir and the original tools' /sys/fs/bpf/tc/globals). */
export { DEFAULT_PIN_DIR } from "../spec/bpf_layout.ts";
import { DEFAULT_PIN_DIR } from "../spec/bpf_layout.ts";
export const PIN_DIR_ENV = "EBPFCNI_PIN_DIR";

/** Parses a decimal identity (1 ..= 2^32-1); `label` names it in the error ("identity",
 * "--src identity"). */
export function parseIdentity(text: string, label = "identity"): number {
  const n = parseIdentityText(text);
  if (n === undefined) {
    throw new UsageError(`Invalid ${label} ${quote(text)}: must be ${IDENTITY_RANGE}`);
  }
  return n;
}

/** An identity or a reserved one by name: "host" (the node), "world" (anything unknown). */
export function parsePeer(text: string, label: string): number {
  if (text === "host") return IDENTITY_HOST;
  if (text === "world") return IDENTITY_WORLD;
  const n = parseIdentityText(text);
  if (n === undefined) {
    throw new UsageError(
      `Invalid ${label} ${quote(text)}: must be ${IDENTITY_RANGE}, "host" or "world"`,
    );
  }
  return n;
}

/** Parses a dotted-quad IPv4 address into a host-order u32; `label` names it in errors. */
export function parseIpv4(text: string, label = "IP"): number {
  const why = ipv4Problem(text);
  if (why !== undefined) throw new UsageError(`Invalid ${label} ${quote(text)}: ${why}`);
  return ipv4FromText(text);
}

/** The pin directory from --pin-dir, else EBPFCNI_PIN_DIR, else the default; absolute, with
 * trailing slashes dropped (pin paths are built by appending "/name"). */
export function resolvePinDir(flag: string | undefined, env: Record<string, string>): string {
  const fromEnv = env[PIN_DIR_ENV];
  const [raw, label] = flag !== undefined
    ? [flag, "--pin-dir"]
    : fromEnv !== undefined && fromEnv !== ""
    ? [fromEnv, PIN_DIR_ENV]
    : [DEFAULT_PIN_DIR, "pin directory"];
  if (!raw.startsWith("/")) {
    throw new UsageError(`Invalid ${label} ${quote(raw)}: must be an absolute path`);
  }
  if (raw.includes("\0")) throw new UsageError(`Invalid ${label} ${quote(raw)}: contains NUL`);
  const trimmed = raw.replace(/\/+$/, "");
  return trimmed === "" ? "/" : trimmed;
}

// ---- flags --------------------------------------------------------------------------------

/**
 * One flag. A string flag may carry `parse`, which turns its text into the value the command
 * reads (throwing FlagValueError with the detail: parseFlags names the flag and the text), and
 * `default`, the text (or a function giving it) taken when the flag is absent, parsed alike.
 */
export type FlagSpec =
  | { type: "boolean"; short?: string }
  | {
    type: "string";
    short?: string;
    // deno-lint-ignore no-explicit-any
    parse?: (text: string) => any;
    default?: string | (() => string);
    /** May be given more than once: its values (as given) are in `lists`. */
    multiple?: boolean;
  };
export type FlagSpecs = Record<string, FlagSpec>;

/** What a command reads for a flag: parse's result, the text, true; undefined when absent
 * and without a default. */
type FlagValue<F> = F extends { type: "boolean" } ? true | undefined
  : (F extends { parse: (text: string) => infer T } ? T : string) | Absent<F>;
type Absent<F> = F extends { default: string | (() => string) } ? never : undefined;
export type FlagValues<S extends FlagSpecs> = { [K in keyof S]: FlagValue<S[K]> };

export interface ParsedFlags<S extends FlagSpecs = FlagSpecs> {
  values: string extends keyof S ? Record<string, unknown> : FlagValues<S>;
  positionals: string[];
  /** Every value of each `multiple` flag given, in order. */
  lists?: Record<string, string[]>;
}

/** A flag's value is not one it takes; the message is the detail after the flag and value. */
export class FlagValueError extends Error {
  override name = "FlagValueError";
}

/** Runs each string flag's parser over its text, or over its default's when it is absent. */
function typedValues(values: Record<string, unknown>, flags: FlagSpecs): void {
  for (const [name, spec] of Object.entries(flags)) {
    if (spec.type !== "string") continue;
    const given = values[name];
    const text = typeof given === "string"
      ? given
      : typeof spec.default === "function"
      ? spec.default()
      : spec.default;
    if (text === undefined) continue;
    try {
      values[name] = spec.parse === undefined ? text : spec.parse(text);
    } catch (err) {
      if (!(err instanceof FlagValueError)) throw err;
      throw new UsageError(`Invalid --${name} ${quote(text)}: ${err.message}`, { cause: err });
    }
  }
}

/** True when -h or --help appears before any "--": help wins over every other problem. */
export function wantsHelp(args: readonly string[]): boolean {
  for (const a of args) {
    if (a === "--") return false;
    if (a === "-h" || a === "--help") return true;
  }
  return false;
}

/** Is `arg` one of `flags` (long, long=value, or short)? */
function isFlag(arg: string, flags: FlagSpecs): boolean {
  if (arg.startsWith("--")) return Object.hasOwn(flags, arg.slice(2).split("=")[0] ?? "");
  return arg.length === 2 && Object.values(flags).some((f) => f.short === arg[1]);
}

/**
 * Parses one command's flags and positionals. `command` ("endpoint add") goes into messages.
 * Unknown flags, a string flag without a value (or followed by another flag), a value given
 * to a boolean flag, a flag given twice, too many or too few positionals, and a value its
 * flag's `parse` refuses are usage errors.
 */
export function parseFlags<S extends FlagSpecs>(
  args: string[],
  flags: S,
  command: string,
  positionals: { min: number; max: number; names: string } = { min: 0, max: 0, names: "" },
): ParsedFlags<S> {
  // parseArgs sees only the flags' shapes: parsing values and defaults is done here.
  const options = Object.fromEntries(
    Object.entries(flags).map((
      [name, f],
    ) => [name, { type: f.type, ...(f.short && { short: f.short }) }]),
  );
  const { tokens } = parseArgs({
    args,
    options,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const values: Record<string, unknown> = {};
  const lists: Record<string, string[]> = {};
  const pos: string[] = [];
  const where = `for "ebpfcni ${command}"`;
  for (const t of tokens) {
    if (t.kind === "positional") {
      pos.push(t.value);
      continue;
    }
    if (t.kind !== "option") continue;
    // Own properties only: "--constructor" must not find Object.prototype.constructor.
    const spec = Object.hasOwn(flags, t.name) ? flags[t.name] : undefined;
    if (spec === undefined) {
      throw new UsageError(`Unknown flag ${quote(t.rawName)} ${where} (see --help)`);
    }
    const flag = `--${t.name}`;
    const multiple = spec.type === "string" && spec.multiple === true;
    if (Object.hasOwn(values, t.name) && !multiple) {
      throw new UsageError(`Flag ${flag} given twice`);
    }
    if (spec.type === "boolean") {
      if (t.inlineValue) {
        throw new UsageError(`Flag ${flag} takes no value, got ${quote(t.value ?? "")}`);
      }
      values[t.name] = true;
    } else {
      // parseArgs hands a string flag the next argument even when that is another flag
      // (`--ip --identity 5`); a value like "-1" is kept, for the value check to name it.
      if (t.value === undefined || (!t.inlineValue && isFlag(t.value, flags))) {
        throw new UsageError(`Missing value for ${flag}`);
      }
      values[t.name] = t.value;
      if (multiple) (lists[t.name] ??= []).push(t.value);
    }
  }
  if (pos.length > positionals.max) {
    const extra = pos[positionals.max] ?? "";
    throw new UsageError(`Unexpected argument ${quote(extra)} ${where}`);
  }
  if (pos.length < positionals.min) {
    throw new UsageError(`Missing ${positionals.names} ${where}`);
  }
  typedValues(values, flags);
  return {
    values,
    positionals: pos,
    ...(Object.keys(lists).length > 0 ? { lists } : {}),
  } as ParsedFlags<S>;
}

/** The value of a required flag; its absence is a usage error naming the synopsis. */
export function requireFlag<V extends Record<string, unknown>, K extends keyof V & string>(
  values: V,
  name: K,
  synopsis: string,
): Exclude<V[K], undefined> {
  const v = values[name];
  if (v === undefined) {
    throw new UsageError(`Missing required flag --${name} (usage: ebpfcni ${synopsis})`);
  }
  return v as Exclude<V[K], undefined>;
}

/**
 * Consumes the options allowed before a command word (--pin-dir, -h/--help, and --version at
 * the top): returns them and the rest, which starts at the first non-option argument.
 */
export function takeLeadingOptions(
  args: readonly string[],
  allowVersion: boolean,
): { rest: string[]; pinDir?: string; help: boolean; version: boolean } {
  let pinDir: string | undefined;
  let help = false;
  let version = false;
  let i = 0;
  for (; i < args.length; i++) {
    const a = args[i] ?? "";
    if (a === "--") {
      i++;
      break;
    }
    if (!a.startsWith("-") || a === "-") break;
    if (a === "-h" || a === "--help") help = true;
    else if (allowVersion && a === "--version") version = true;
    else if (a === "--pin-dir" || a.startsWith("--pin-dir=")) {
      if (pinDir !== undefined) throw new UsageError("Flag --pin-dir given twice");
      const v = a === "--pin-dir" ? args[++i] : a.slice("--pin-dir=".length);
      if (v === undefined || (a === "--pin-dir" && v.startsWith("-"))) {
        throw new UsageError("Missing value for --pin-dir");
      }
      pinDir = v;
    } else {
      throw new UsageError(`Unknown flag ${quote(a)} before the command (see ebpfcni --help)`);
    }
  }
  const out: { rest: string[]; pinDir?: string; help: boolean; version: boolean } = {
    rest: args.slice(i),
    help,
    version,
  };
  if (pinDir !== undefined) out.pinDir = pinDir;
  return out;
}
