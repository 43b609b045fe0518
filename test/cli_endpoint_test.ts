// The endpoint commands of the built binary against real pinned maps.
import assert from "node:assert/strict";
import { exists } from "./_kernel.ts";
import {
  assertFails,
  ebpfcni,
  endpoints,
  jsonFile,
  ok,
  snapshot,
  withEmptyPinDir,
  withMaps,
} from "./_cli.ts";

Deno.test("endpoint add upserts, list prints a table and sorted JSON, del removes", async () => {
  await withMaps(async (pinDir) => {
    const p = ["--pin-dir", pinDir];
    assert.equal(
      await ok(["endpoint", "add", "--ip", "10.13.0.10", "--identity", "1002", ...p]),
      "added endpoint 10.13.0.10 with identity 1002\n",
    );
    await ok(["endpoint", "add", "--ip", "10.13.0.9", "--identity", "1001", ...p]);
    await ok(["endpoint", "add", "--ip", "9.0.0.1", "--identity", "4294967295", ...p]);
    assert.equal(
      await ok(["endpoint", "add", "--ip", "10.13.0.9", "--identity", "1003", ...p]),
      "changed endpoint 10.13.0.9 from identity 1001 to 1003\n",
    );
    assert.equal(
      await ok(["endpoint", "add", "--ip", "10.13.0.9", "--identity", "1003", ...p]),
      "endpoint 10.13.0.9 already has identity 1003\n",
    );
    // Sorted by address as a number: 9.x before 10.x, .9 before .10.
    assert.equal(
      await ok(["endpoint", "list", ...p]),
      "IP            IDENTITY\n" +
        "9.0.0.1     4294967295\n" +
        "10.13.0.9         1003\n" +
        "10.13.0.10        1002\n",
    );
    assert.equal(
      await ok(["endpoint", "list", "--json", ...p]),
      '[\n  {"ip":"9.0.0.1","identity":4294967295},\n  {"ip":"10.13.0.9","identity":1003},\n' +
        '  {"ip":"10.13.0.10","identity":1002}\n]\n',
    );

    assert.equal(
      await ok(["endpoint", "del", "--ip", "10.13.0.9", ...p]),
      "deleted endpoint 10.13.0.9 (identity 1003)\n",
    );
    // Deleting what is not there is not an error, but says so.
    const again = await ebpfcni(["endpoint", "del", "--ip", "10.13.0.9", ...p]);
    assert.equal(again.code, 0);
    assert.equal(again.stderr, "ebpfcni: endpoint 10.13.0.9 was not registered\n");
    assert.deepEqual(await endpoints(pinDir), [
      { ip: "9.0.0.1", identity: 4294967295 },
      { ip: "10.13.0.10", identity: 1002 },
    ]);
  });
});

Deno.test("the pin directory also comes from --pin-dir before the command", async () => {
  await withMaps(async (pinDir) => {
    await ok(["--pin-dir", pinDir, "endpoint", "add", "--ip", "10.0.0.1", "--identity", "5"]);
    await ok(["endpoint", "--pin-dir", pinDir, "add", "--ip", "10.0.0.2", "--identity", "6"]);
    assert.equal((await endpoints(pinDir)).length, 2);
  });
});

Deno.test("endpoint commands refuse bad values with exit 2, naming them, and change nothing", async () => {
  await withMaps(async (pinDir) => {
    const p = ["--pin-dir", pinDir];
    await ok(["endpoint", "add", "--ip", "10.13.0.2", "--identity", "1001", ...p]);
    const before = await snapshot(pinDir);
    const cases: [string[], string][] = [
      [
        ["add", "--ip", "10.13.0.2", "--identity", "0"],
        `Invalid identity "0": must be an integer from 1 to 4294967295`,
      ],
      [
        ["add", "--ip", "10.13.0.3", "--identity", "4294967296"],
        `Invalid identity "4294967296": must be an integer from 1 to 4294967295`,
      ],
      [
        ["add", "--ip", "300.1.1.1", "--identity", "7"],
        `Invalid IP "300.1.1.1": octet 300 out of range 0-255`,
      ],
      [
        ["add", "--ip", "fd00::2", "--identity", "7"],
        `Invalid IP "fd00::2": IPv6 addresses are not supported (IPv4 dotted quad only)`,
      ],
      [
        ["del", "--ip", "fd00::2"],
        `Invalid IP "fd00::2": IPv6 addresses are not supported (IPv4 dotted quad only)`,
      ],
      [
        ["del", "--ip", "10.13.0"],
        `Invalid IP "10.13.0": expected 4 dot-separated octets, found 3`,
      ],
      [
        ["add", "--ip", "10.13.0.2"],
        "Missing required flag --identity (usage: ebpfcni endpoint add --ip IP --identity ID)",
      ],
      [
        ["add", "--identity", "5"],
        "Missing required flag --ip (usage: ebpfcni endpoint add --ip IP --identity ID)",
      ],
      [["del"], "Missing required flag --ip (usage: ebpfcni endpoint del --ip IP)"],
      [
        ["add", "--ip", "10.13.0.2", "--identity", "5", "--force"],
        `Unknown flag "--force" for "ebpfcni endpoint add" (see --help)`,
      ],
      [
        ["remove", "--ip", "10.13.0.2"],
        `Unknown endpoint command "remove": expected add, del, list or import`,
      ],
      [["list", "--json=1"], `Flag --json takes no value, got "1"`],
    ];
    for (const [args, message] of cases) {
      const r = await ebpfcni(["endpoint", ...args, ...p]);
      assertFails(r, 2, message);
      assert.equal(r.stdout, "");
    }
    assert.equal(await snapshot(pinDir), before);
  });
});

Deno.test("endpoint writes without pinned maps fail with how to create them, creating nothing", async () => {
  await withEmptyPinDir(async (pinDir) => {
    const hint = `run a CNI ADD first or "ebpfcni status --init --pin-dir ${pinDir}"`;
    const file = await jsonFile([{ ip: "10.0.0.1", identity: 1 }]);
    try {
      for (
        const args of [
          ["add", "--ip", "10.0.0.1", "--identity", "1"],
          ["del", "--ip", "10.0.0.1"],
          ["list"],
          ["list", "--json"],
          ["import", file],
        ]
      ) {
        const r = await ebpfcni(["endpoint", ...args, "--pin-dir", pinDir]);
        assertFails(r, 1, `No endpoint_map pinned under "${pinDir}": ${hint}`);
        assert.equal(r.stdout, "");
        assert.equal(exists(pinDir), false, `${args.join(" ")} created ${pinDir}`);
      }
    } finally {
      await Deno.remove(file);
    }
  });
});
