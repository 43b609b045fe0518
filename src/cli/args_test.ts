// Unit tests for the CLI's value and flag parsing.
import assert from "node:assert/strict";
import {
  DEFAULT_PIN_DIR,
  FlagValueError,
  parseFlags,
  parseIdentity,
  parseIpv4,
  requireFlag,
  resolvePinDir,
  takeLeadingOptions,
  wantsHelp,
} from "./args.ts";
import { UsageError } from "./errors.ts";

const usage = (message: string) => ({ name: "UsageError", message });

Deno.test("parseIdentity() accepts 1 to 2^32-1 and names the bad value otherwise", () => {
  assert.equal(parseIdentity("1"), 1);
  assert.equal(parseIdentity("4294967295"), 4294967295);
  assert.equal(parseIdentity("01001"), 1001);
  for (const bad of ["0", "4294967296", "-1", "1e3", "1.0", "", " 5", "0x10", "99999999999"]) {
    assert.throws(
      () => parseIdentity(bad),
      usage(`Invalid identity ${JSON.stringify(bad)}: must be an integer from 1 to 4294967295`),
    );
  }
  assert.throws(
    () => parseIdentity("0", "--src identity"),
    usage(
      `Invalid --src identity "0": must be an integer from 1 to 4294967295`,
    ),
  );
});

Deno.test("parseIpv4() returns host-order numbers and says why an address is refused", () => {
  assert.equal(parseIpv4("10.13.0.2"), 0x0a0d0002);
  assert.equal(parseIpv4("255.255.255.255"), 0xffffffff);
  assert.equal(parseIpv4("0.0.0.0"), 0);
  const cases: [string, string][] = [
    ["300.1.1.1", "octet 300 out of range 0-255"],
    ["fd00::1", "IPv6 addresses are not supported (IPv4 dotted quad only)"],
    ["::ffff:10.0.0.1", "IPv6 addresses are not supported (IPv4 dotted quad only)"],
    ["1:2", "not an IPv4 address (dotted quad, e.g. 10.13.0.2)"],
    ["10.0.0.0/24", "expected a single address, not a CIDR"],
    ["1.2.3", "expected 4 dot-separated octets, found 3"],
    ["010.1.1.1", `octet "010" has a leading zero`],
    ["1.2.3.x", `invalid octet "x"`],
    ["", "expected 4 dot-separated octets, found 1"],
  ];
  for (const [text, why] of cases) {
    assert.throws(() => parseIpv4(text), usage(`Invalid IP ${JSON.stringify(text)}: ${why}`));
  }
});

Deno.test("resolvePinDir() prefers the flag, then EBPFCNI_PIN_DIR, then the default", () => {
  assert.equal(resolvePinDir(undefined, {}), DEFAULT_PIN_DIR);
  assert.equal(resolvePinDir(undefined, { EBPFCNI_PIN_DIR: "" }), DEFAULT_PIN_DIR);
  assert.equal(resolvePinDir(undefined, { EBPFCNI_PIN_DIR: "/e/" }), "/e");
  assert.equal(resolvePinDir("/f//", { EBPFCNI_PIN_DIR: "/e" }), "/f");
  assert.equal(resolvePinDir("/", {}), "/");
  assert.throws(
    () => resolvePinDir("rel", {}),
    usage(`Invalid --pin-dir "rel": must be an absolute path`),
  );
  assert.throws(
    () => resolvePinDir(undefined, { EBPFCNI_PIN_DIR: "x/y" }),
    usage(`Invalid EBPFCNI_PIN_DIR "x/y": must be an absolute path`),
  );
});

const FLAGS = {
  ip: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

Deno.test("parseFlags() parses flags in either form and positionals", () => {
  assert.deepEqual(parseFlags(["--ip", "1.2.3.4", "--json"], FLAGS, "x"), {
    values: { ip: "1.2.3.4", json: true },
    positionals: [],
  });
  assert.deepEqual(
    parseFlags(["--ip=1.2.3.4", "f"], FLAGS, "x", { min: 1, max: 1, names: "FILE" }),
    {
      values: { ip: "1.2.3.4" },
      positionals: ["f"],
    },
  );
  // A negative number is a value for the check to reject, not a missing value.
  assert.deepEqual(parseFlags(["--ip", "-1"], FLAGS, "x").values, { ip: "-1" });
  assert.deepEqual(
    parseFlags(["--", "-"], FLAGS, "x", { min: 1, max: 1, names: "FILE" }).positionals,
    ["-"],
  );
});

Deno.test("parseFlags() refuses bad command lines with one-line messages", () => {
  const cases: [string[], string][] = [
    [["--bogus"], `Unknown flag "--bogus" for "ebpfcni endpoint add" (see --help)`],
    [["-x"], `Unknown flag "-x" for "ebpfcni endpoint add" (see --help)`],
    [
      ["--constructor", "x"],
      `Unknown flag "--constructor" for "ebpfcni endpoint add" (see --help)`,
    ],
    [["--__proto__=x"], `Unknown flag "--__proto__" for "ebpfcni endpoint add" (see --help)`],
    [["--ip"], "Missing value for --ip"],
    [["--ip", "--json"], "Missing value for --ip"],
    [["--ip", "-h"], "Missing value for --ip"],
    [["--json=yes"], `Flag --json takes no value, got "yes"`],
    [["--ip", "a", "--ip", "b"], "Flag --ip given twice"],
    [["extra"], `Unexpected argument "extra" for "ebpfcni endpoint add"`],
  ];
  for (const [args, message] of cases) {
    assert.throws(() => parseFlags(args, FLAGS, "endpoint add"), usage(message), args.join(" "));
  }
  assert.throws(
    () => parseFlags([], FLAGS, "policy import", { min: 1, max: 1, names: "FILE" }),
    usage(`Missing FILE for "ebpfcni policy import"`),
  );
});

const TYPED = {
  count: {
    type: "string",
    parse: (text: string) => {
      if (!/^[1-9][0-9]*$/.test(text)) throw new FlagValueError("must be a positive integer");
      return Number(text);
    },
    default: "3",
  },
  level: { type: "string", default: () => "info" },
  group: { type: "string", parse: (text: string) => text.length },
} as const;

Deno.test("parseFlags() gives a command its flags' parsed values, and each absent flag's default", () => {
  assert.deepEqual(parseFlags(["--count", "12", "--group", "wheel"], TYPED, "x").values, {
    count: 12,
    level: "info",
    group: 5,
  });
  // A default is flag text too: it goes through the same parse.
  assert.deepEqual(parseFlags([], TYPED, "x").values, { count: 3, level: "info" });
});

Deno.test("parseFlags() refuses a value its flag's parse refuses, naming the flag and the value", () => {
  assert.throws(
    () => parseFlags(["--count", "0"], TYPED, "x"),
    usage(`Invalid --count "0": must be a positive integer`),
  );
  assert.throws(
    () => parseFlags(["--count=-1\n"], TYPED, "x"),
    usage(`Invalid --count "-1\\n": must be a positive integer`),
  );
});

Deno.test("requireFlag() names the missing flag and the synopsis", () => {
  assert.equal(requireFlag({ ip: "1" }, "ip", "endpoint del --ip IP"), "1");
  assert.throws(
    () => requireFlag({ json: true } as Record<string, unknown>, "ip", "endpoint del --ip IP"),
    usage("Missing required flag --ip (usage: ebpfcni endpoint del --ip IP)"),
  );
});

Deno.test("wantsHelp() finds -h/--help before any --", () => {
  assert.equal(wantsHelp(["--ip", "1", "-h"]), true);
  assert.equal(wantsHelp(["--help"]), true);
  assert.equal(wantsHelp(["--", "--help"]), false);
  assert.equal(wantsHelp(["--helpful"]), false);
});

Deno.test("takeLeadingOptions() consumes global options up to the command word", () => {
  assert.deepEqual(takeLeadingOptions(["--pin-dir", "/p", "policy", "--json"], true), {
    rest: ["policy", "--json"],
    pinDir: "/p",
    help: false,
    version: false,
  });
  assert.deepEqual(takeLeadingOptions(["--pin-dir=/p", "-h"], false), {
    rest: [],
    pinDir: "/p",
    help: true,
    version: false,
  });
  assert.equal(takeLeadingOptions(["--version"], true).version, true);
  assert.throws(() => takeLeadingOptions(["--version"], false), UsageError);
  assert.throws(
    () => takeLeadingOptions(["--pin-dir"], true),
    usage("Missing value for --pin-dir"),
  );
  assert.throws(
    () => takeLeadingOptions(["--json", "policy"], true),
    usage(`Unknown flag "--json" before the command (see ebpfcni --help)`),
  );
  assert.throws(
    () => takeLeadingOptions(["--pin-dir", "/a", "--pin-dir", "/b"], true),
    usage("Flag --pin-dir given twice"),
  );
});

Deno.test("parseFlags() keeps every value of a repeatable flag in order", () => {
  const flags = { cidr: { type: "string", multiple: true }, one: { type: "string" } } as const;
  const r = parseFlags(["--cidr", "a", "--cidr=b", "--one", "x"], flags, "x");
  assert.deepEqual(r.lists, { cidr: ["a", "b"] });
  assert.throws(() => parseFlags(["--one", "a", "--one", "b"], flags, "x"), /--one given twice/);
});
