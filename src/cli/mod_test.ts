// Unit tests of the dispatcher: help, version and usage errors, none of which touch the kernel.
import assert from "node:assert/strict";
import { run } from "./mod.ts";
import type { Io } from "./io.ts";

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const io: Io = {
    out: (t) => void (out += t),
    err: (t) => void (err += t),
    readStdin: () => Promise.resolve(new Uint8Array()),
  };
  const code = await run(args, { EBPFCNI_PIN_DIR: "/nonexistent/ebpfcni-unit" }, io);
  return { code, out, err };
}

Deno.test("--help and -h print usage on stdout and exit 0 at every level", async () => {
  const cases: [string[], string][] = [
    [["--help"], "Usage: ebpfcni [--pin-dir DIR] COMMAND [FLAGS]"],
    [["-h"], "Usage: ebpfcni [--pin-dir DIR] COMMAND [FLAGS]"],
    [["endpoint", "--help"], "Usage: ebpfcni endpoint COMMAND [FLAGS]"],
    [["policy", "-h"], "Usage: ebpfcni policy COMMAND [FLAGS]"],
    [["endpoint", "add", "--help"], "Usage: ebpfcni endpoint add --ip IP --identity ID"],
    [["endpoint", "del", "-h"], "Usage: ebpfcni endpoint del --ip IP"],
    [["endpoint", "list", "--help"], "Usage: ebpfcni endpoint list [--json]"],
    [["endpoint", "import", "--help"], "Usage: ebpfcni endpoint import FILE"],
    [["policy", "allow", "--src", "0", "--help"], "Usage: ebpfcni policy allow --src ID --dst ID"],
    [["policy", "deny", "-h"], "Usage: ebpfcni policy deny --src ID --dst ID"],
    [["policy", "list", "-h"], "Usage: ebpfcni policy list [--json]"],
    [["policy", "import", "-h"], "Usage: ebpfcni policy import FILE"],
    [["status", "--help"], "Usage: ebpfcni status [--json] [--init]"],
    [["version", "--help"], "Usage: ebpfcni version"],
  ];
  for (const [args, first] of cases) {
    const r = await cli(...args);
    assert.equal(r.code, 0, args.join(" "));
    assert.equal(r.err, "");
    assert.ok(r.out.startsWith(first), `${args.join(" ")}: ${r.out.split("\n")[0]}`);
  }
});

Deno.test("the top-level help lists every command", async () => {
  const { out } = await cli("--help");
  for (
    const c of [
      "endpoint add",
      "endpoint del",
      "endpoint list",
      "endpoint import",
      "policy allow",
      "policy deny",
      "policy list",
      "policy import",
      "status",
      "version",
    ]
  ) {
    assert.match(out, new RegExp(`^  ${c}`, "m"), c);
  }
});

Deno.test("version and --version print the version", async () => {
  for (const args of [["version"], ["--version"]]) {
    const r = await cli(...args);
    assert.equal(r.code, 0);
    assert.match(r.out, /^ebpfcni \d+\.\d+\.\d+\n$/);
  }
});

Deno.test("usage errors exit 2 with one stderr line naming the bad value", async () => {
  const cases: [string[], string][] = [
    [[], "Missing command (see ebpfcni --help)"],
    [
      ["frob"],
      `Unknown command "frob": expected endpoint, policy, agent, cidr, ct, masquerade, status, monitor or version`,
    ],
    [["policy"], "Missing policy command: expected allow, deny, list, import or explain"],
    [
      ["policy", "frob"],
      `Unknown policy command "frob": expected allow, deny, list, import or explain`,
    ],
    [
      ["endpoint", "toString"],
      `Unknown endpoint command "toString": expected add, del, list or import`,
    ],
    [
      ["endpoint", "add", "--ip", "10.0.0.1", "--identity", "0"],
      `Invalid identity "0": must be an integer from 1 to 4294967295`,
    ],
    [
      ["endpoint", "add", "--ip", "300.1.1.1", "--identity", "5"],
      `Invalid IP "300.1.1.1": octet 300 out of range 0-255`,
    ],
    [
      ["endpoint", "del", "--ip", "fd00::1"],
      `Invalid IP "fd00::1": IPv6 addresses are not supported (IPv4 dotted quad only)`,
    ],
    [
      ["endpoint", "add", "--ip", "10.0.0.1"],
      "Missing required flag --identity (usage: ebpfcni endpoint add --ip IP --identity ID)",
    ],
    [
      ["policy", "allow", "--src", "1"],
      "Missing required flag --dst (usage: ebpfcni policy allow --src ID --dst ID [--proto P] [--port N|N-M] [--symmetric] [--show] [--json])",
    ],
    [
      ["policy", "deny", "--src", "1", "--dst", "x"],
      `Invalid --dst identity "x": must be an integer from 1 to 4294967295, "host" or "world"`,
    ],
    [
      ["policy", "list", "--bogus"],
      `Unknown flag "--bogus" for "ebpfcni policy list" (see --help)`,
    ],
    [["policy", "import"], `Missing FILE (a path, or - for stdin) for "ebpfcni policy import"`],
    [["--pin-dir", "relative", "status"], `Invalid --pin-dir "relative": must be an absolute path`],
    [["--pin-dir", "/a", "policy", "list", "--pin-dir", "/b"], "Flag --pin-dir given twice"],
  ];
  for (const [args, message] of cases) {
    const r = await cli(...args);
    assert.equal(r.code, 2, args.join(" "));
    assert.equal(r.out, "");
    assert.equal(r.err, `ebpfcni: ${message}\n`);
  }
});
