// The policy commands of the built binary against real pinned maps.
import assert from "node:assert/strict";
import { exists } from "./_kernel.ts";
import { assertFails, ebpfcni, ok, policies, snapshot, withEmptyPinDir, withMaps } from "./_cli.ts";

Deno.test("policy allow adds one direction and prints the whole table", async () => {
  await withMaps(async (pinDir) => {
    const p = ["--pin-dir", pinDir];
    await ok(["policy", "allow", "--src", "1001", "--dst", "1002", ...p]);
    const out = await ok(["policy", "allow", "--src", "20", "--dst", "1001", ...p]);
    assert.equal(out, " SRC   DST\n  20  1001\n1001  1002\n");
    // Allowing again is fine and changes nothing.
    assert.equal(await ok(["policy", "allow", "--src", "20", "--dst", "1001", ...p]), out);
    assert.equal(await ok(["policy", "list", ...p]), out);
    assert.equal(
      await ok(["policy", "list", "--json", ...p]),
      '[\n  {"src":20,"dst":1001},\n  {"src":1001,"dst":1002}\n]\n',
    );
    // allow --json prints the table as policy list --json does.
    assert.deepEqual(
      JSON.parse(await ok(["policy", "allow", "--src", "1", "--dst", "2", "--json", ...p])),
      [{ src: 1, dst: 2 }, { src: 20, dst: 1001 }, { src: 1001, dst: 1002 }],
    );
  });
});

Deno.test("--symmetric allow and deny create and remove both directions", async () => {
  await withMaps(async (pinDir) => {
    const p = ["--pin-dir", pinDir];
    await ok(["policy", "allow", "--src", "7", "--dst", "8", ...p]);
    await ok(["policy", "allow", "--src", "1001", "--dst", "1002", "--symmetric", ...p]);
    assert.deepEqual(await policies(pinDir), [
      { src: 7, dst: 8 },
      { src: 1001, dst: 1002 },
      { src: 1002, dst: 1001 },
    ]);
    // Symmetric with src = dst is one entry.
    await ok(["policy", "allow", "--src", "5", "--dst", "5", "--symmetric", ...p]);
    assert.equal((await policies(pinDir)).length, 4);

    const out = await ok(["policy", "deny", "--src", "1002", "--dst", "1001", "--symmetric", ...p]);
    assert.equal(out, "SRC  DST\n  5    5\n  7    8\n");
    assert.deepEqual(await policies(pinDir), [{ src: 5, dst: 5 }, { src: 7, dst: 8 }]);
  });
});

Deno.test("policy deny removes one direction; denying what is not allowed is only a note", async () => {
  await withMaps(async (pinDir) => {
    const p = ["--pin-dir", pinDir];
    await ok(["policy", "allow", "--src", "1", "--dst", "2", "--symmetric", ...p]);
    await ok(["policy", "deny", "--src", "1", "--dst", "2", ...p]);
    assert.deepEqual(await policies(pinDir), [{ src: 2, dst: 1 }]);
    const r = await ebpfcni(["policy", "deny", "--src", "1", "--dst", "2", "--symmetric", ...p]);
    assert.equal(r.code, 0);
    assert.equal(r.stderr, "ebpfcni: 1 -> 2 was not allowed\n");
    assert.equal(r.stdout, "SRC  DST\n");
    assert.deepEqual(await policies(pinDir), []);
    assert.equal(await ok(["policy", "list", "--json", ...p]), "[]\n");
  });
});

Deno.test("policy commands refuse bad values with exit 2, naming them, and change nothing", async () => {
  await withMaps(async (pinDir) => {
    const p = ["--pin-dir", pinDir];
    await ok(["policy", "allow", "--src", "1001", "--dst", "1002", "--symmetric", ...p]);
    await ok(["endpoint", "add", "--ip", "10.13.0.2", "--identity", "1001", ...p]);
    const before = await snapshot(pinDir);
    const range = "must be an integer from 1 to 4294967295";
    const cases: [string[], string][] = [
      [["allow", "--src", "0", "--dst", "1002"], `invalid --src identity "0": ${range}`],
      [
        ["allow", "--src", "1", "--dst", "0", "--symmetric"],
        `invalid --dst identity "0": ${range}`,
      ],
      [["deny", "--src", "1001", "--dst", "0"], `invalid --dst identity "0": ${range}`],
      [["deny", "--src", "-5", "--dst", "1002"], `invalid --src identity "-5": ${range}`],
      [
        ["allow", "--src", "10.13.0.2", "--dst", "1"],
        `invalid --src identity "10.13.0.2": ${range}`,
      ],
      [
        ["allow", "--src", "1001"],
        "missing required flag --dst (usage: ebpfcni policy allow --src ID --dst ID [--symmetric] [--json])",
      ],
      [
        ["deny", "--dst", "1001"],
        "missing required flag --src (usage: ebpfcni policy deny --src ID --dst ID [--symmetric] [--json])",
      ],
      [
        ["deny", "--src", "1001", "--dst", "1002", "--both"],
        `unknown flag "--both" for "ebpfcni policy deny" (see --help)`,
      ],
      [["allow", "--src", "1", "--src", "2", "--dst", "3"], "flag --src given twice"],
      [
        ["remove", "--src", "1001", "--dst", "1002"],
        `unknown policy command "remove": expected allow, deny, list or import`,
      ],
      [["list", "extra"], `unexpected argument "extra" for "ebpfcni policy list"`],
    ];
    for (const [args, message] of cases) {
      const r = await ebpfcni(["policy", ...args, ...p]);
      assertFails(r, 2, message);
      assert.equal(r.stdout, "");
    }
    assertFails(
      await ebpfcni(["polcy", "list", ...p]),
      2,
      `unknown command "polcy": expected endpoint, policy, status or version`,
    );
    assert.equal(await snapshot(pinDir), before);
  });
});

Deno.test("policy commands without pinned maps fail with how to create them, creating nothing", async () => {
  await withEmptyPinDir(async (pinDir) => {
    for (
      const args of [["allow", "--src", "1", "--dst", "2"], ["deny", "--src", "1", "--dst", "2"], [
        "list",
      ]]
    ) {
      const r = await ebpfcni(["policy", ...args, "--pin-dir", pinDir]);
      assertFails(
        r,
        1,
        `no policy_map pinned under "${pinDir}": run a CNI ADD first or "ebpfcni status --init --pin-dir ${pinDir}"`,
      );
      assert.equal(exists(pinDir), false);
    }
  });
});
