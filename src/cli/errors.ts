// The two ways a CLI command fails, which decide the exit status: a usage error (bad flag or
// value, exit 2, checked before anything is touched) or a failed operation (exit 1).

/** Exit status of a successful command. */
export const EXIT_OK = 0;
/** The operation was attempted and failed (missing maps, full map, kernel refusal). */
export const EXIT_FAILED = 1;
/** The command line or an input file was invalid; nothing was changed. */
export const EXIT_USAGE = 2;
/** `agent status --wait-synced`: applied, but some policies are not enforced (rule_map full). */
export const EXIT_NOT_ENFORCED = 3;

/** Bad command line or input content. The message names the bad value. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** The operation could not be carried out; the message says why and, if it can, what to do. */
export class CommandError extends Error {
  override name = "CommandError";
}
