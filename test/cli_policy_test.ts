// The policy commands of the built binary against real pinned maps.
import assert from "node:assert/strict";
import { exists } from "./_kernel.ts";
import { assertFails, ebpfcni, ok, policies, snapshot, withEmptyPinDir, withMaps } from "./_cli.ts";

Deno.test("policy allow adds one direction and prints what it added, the table with --show", async () => {
  await withMaps(async (pinDir) => {
    const p = ["--pin-dir", pinDir];
    assert.equal(
      await ok(["policy", "allow", "--src", "1001", "--dst", "1002", ...p]),
      "allowed 1001 -> 1002\n",
    );
    const table = " SRC   DST\n  20  1001\n1001  1002\n";
    assert.equal(
      await ok(["policy", "allow", "--src", "20", "--dst", "1001", "--show", ...p]),
      table,
    );
    // Allowing again is fine and changes nothing (a note on stderr).
    const again = await ebpfcni(["policy", "allow", "--src", "20", "--dst", "1001", ...p]);
    assert.equal(again.code, 0);
    assert.equal(again.stdout, "");
    assert.equal(again.stderr, "ebpfcni: 20 -> 1001 was already allowed\n");
    assert.equal(await ok(["policy", "list", ...p]), table);
    assert.equal(
      await ok(["policy", "list", "--json", ...p]),
      '[\n  {"src":20,"dst":1001},\n  {"src":1001,"dst":1002}\n]\n',
    );
    // --show --json prints the table as policy list --json does; --json alone what changed.
    assert.deepEqual(
      JSON.parse(
        await ok(["policy", "allow", "--src", "1", "--dst", "2", "--show", "--json", ...p]),
      ),
      [{ src: 1, dst: 2 }, { src: 20, dst: 1001 }, { src: 1001, dst: 1002 }],
    );
    assert.deepEqual(
      JSON.parse(await ok(["policy", "allow", "--src", "3", "--dst", "4", "--json", ...p])),
      [{ src: 3, dst: 4 }],
    );
  });
});

Deno.test("policy allow and deny by protocol and port range, host and world by name", async () => {
  await withMaps(async (pinDir) => {
    const p = ["--pin-dir", pinDir];
    await ok([
      "policy",
      "allow",
      "--src",
      "7",
      "--dst",
      "host",
      "--proto",
      "tcp",
      "--port",
      "8000-8100",
      ...p,
    ]);
    await ok([
      "policy",
      "allow",
      "--src",
      "7",
      "--dst",
      "world",
      "--proto",
      "udp",
      "--port",
      "53",
      ...p,
    ]);
    await ok(["policy", "allow", "--src", "7", "--dst", "8", "--proto", "icmp", ...p]);
    assert.equal(
      await ok(["policy", "list", ...p]),
      "SRC    DST  PROTO  PORTS\n" +
        "  7      8  icmp   any\n" +
        "  7   host  tcp    8000-8100\n" +
        "  7  world  udp    53\n",
    );
    // Denying part of a range leaves the rest allowed.
    assert.equal(
      await ok([
        "policy",
        "deny",
        "--src",
        "7",
        "--dst",
        "host",
        "--proto",
        "tcp",
        "--port",
        "8050-8060",
        ...p,
      ]),
      "denied 7 -> host tcp/8050-8060\n",
    );
    assert.deepEqual(JSON.parse(await ok(["policy", "list", "--json", ...p])), [
      { src: 7, dst: 8, proto: "icmp" },
      { src: 7, dst: 4294967294, proto: "tcp", ports: "8000-8049" },
      { src: 7, dst: 4294967294, proto: "tcp", ports: "8061-8100" },
      { src: 7, dst: 4294967295, proto: "udp", ports: "53" },
    ]);
    // Without --proto, deny removes everything of the pair; the list round-trips through import.
    const listed = await ok(["policy", "list", "--json", ...p]);
    await ok(["policy", "deny", "--src", "7", "--dst", "host", ...p]);
    assert.equal(JSON.parse(await ok(["policy", "list", "--json", ...p])).length, 2);
    await ok(["policy", "import", "-", ...p], listed);
    assert.equal(await ok(["policy", "list", "--json", ...p]), listed);
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
    assert.equal(out, "denied 1002 -> 1001\ndenied 1001 -> 1002\n");
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
    assert.equal(r.stdout, "denied 2 -> 1\n");
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
    const range = 'must be an integer from 1 to 4294967295, "host" or "world"';
    const cases: [string[], string][] = [
      [["allow", "--src", "0", "--dst", "1002"], `Invalid --src identity "0": ${range}`],
      [
        ["allow", "--src", "1", "--dst", "0", "--symmetric"],
        `Invalid --dst identity "0": ${range}`,
      ],
      [["deny", "--src", "1001", "--dst", "0"], `Invalid --dst identity "0": ${range}`],
      [["deny", "--src", "-5", "--dst", "1002"], `Invalid --src identity "-5": ${range}`],
      [
        ["allow", "--src", "10.13.0.2", "--dst", "1"],
        `Invalid --src identity "10.13.0.2": ${range}`,
      ],
      [
        ["allow", "--src", "1001"],
        "Missing required flag --dst (usage: ebpfcni policy allow --src ID --dst ID [--proto P] [--port N|N-M] [--symmetric] [--show] [--json])",
      ],
      [
        ["deny", "--dst", "1001"],
        "Missing required flag --src (usage: ebpfcni policy deny --src ID --dst ID [--proto P] [--port N|N-M] [--symmetric] [--show] [--json])",
      ],
      [
        ["allow", "--src", "1", "--dst", "2", "--port", "80"],
        "--port needs --proto tcp, udp or sctp",
      ],
      [
        ["allow", "--src", "1", "--dst", "2", "--proto", "icmp", "--port", "80"],
        "--port cannot go with --proto icmp",
      ],
      [
        ["allow", "--src", "1", "--dst", "2", "--proto", "gre"],
        `Invalid --proto "gre": must be one of icmp, tcp, udp, sctp`,
      ],
      [
        ["allow", "--src", "1", "--dst", "2", "--proto", "tcp", "--port", "90-80"],
        `Invalid --port "90-80": the range ends (80) before it starts (90)`,
      ],
      [
        ["allow", "--src", "1", "--dst", "2", "--proto", "tcp", "--port", "0"],
        `Invalid --port "0": ports are 1 to 65535`,
      ],
      [
        ["deny", "--src", "1001", "--dst", "1002", "--both"],
        `Unknown flag "--both" for "ebpfcni policy deny" (see --help)`,
      ],
      [["allow", "--src", "1", "--src", "2", "--dst", "3"], "Flag --src given twice"],
      [
        ["remove", "--src", "1001", "--dst", "1002"],
        `Unknown policy command "remove": expected allow, deny, list, import or explain`,
      ],
      [["list", "extra"], `Unexpected argument "extra" for "ebpfcni policy list"`],
    ];
    for (const [args, message] of cases) {
      const r = await ebpfcni(["policy", ...args, ...p]);
      assertFails(r, 2, message);
      assert.equal(r.stdout, "");
    }
    assertFails(
      await ebpfcni(["polcy", "list", ...p]),
      2,
      `Unknown command "polcy": expected endpoint, policy, agent, cidr, ct, masquerade, status, monitor or version`,
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
        `No policy_map pinned under "${pinDir}": run a CNI ADD first or "ebpfcni status --init --pin-dir ${pinDir}"`,
      );
      assert.equal(exists(pinDir), false);
    }
  });
});
