// Bulk imports through the built binary: `list --json` output goes back in unchanged, a bad
// or overflowing file changes nothing, and the map limits hold exactly.
import assert from "node:assert/strict";
import {
  assertFails,
  ebpfcni,
  type EndpointRecord,
  endpoints,
  jsonFile,
  ok,
  policies,
  type PolicyRecord,
  withMaps,
} from "./_cli.ts";

const POLICY_MAX = 65536;
const ENDPOINT_MAX = 16384;

/** `n` distinct pairs starting at identity `base`, in a scrambled (not sorted) order. */
function pairs(n: number, base: number): PolicyRecord[] {
  const out: PolicyRecord[] = [];
  for (let i = 0; i < n; i++) {
    const j = (i * 7919) % n; // 7919 is prime and n is never a multiple of it here
    out.push({ src: base + Math.floor(j / 250), dst: 4294967295 - (j % 250) });
  }
  return out;
}

function key(p: PolicyRecord): string {
  return `${p.src}:${p.dst}`;
}

/** `n` distinct addresses in 10.x.y.z, scrambled, with identities from `base`. */
function addrs(n: number, base: number, second = 0): EndpointRecord[] {
  const out: EndpointRecord[] = [];
  for (let i = 0; i < n; i++) {
    const j = (i * 7919) % n;
    out.push({ ip: `10.${second}.${j >> 8}.${j & 0xff}`, identity: base + (j % 97) });
  }
  return out;
}

async function withFile<T>(data: unknown, fn: (path: string) => Promise<T>): Promise<T> {
  const path = await jsonFile(data);
  try {
    return await fn(path);
  } finally {
    await Deno.remove(path);
  }
}

Deno.test("policy import of 60,000 entries, then bad and overflowing files and a full map", async (t) => {
  await withMaps(async (pinDir) => {
    const p = ["--pin-dir", pinDir];
    const big = pairs(60000, 1000);

    await t.step("60,000 entries (some repeated) import and list back exactly", async () => {
      await ok(["policy", "allow", "--src", "1", "--dst", "2", ...p]);
      const file = [...big, ...big.slice(0, 100), { src: 1, dst: 2 }];
      await withFile(file, async (path) => {
        assert.equal(
          await ok(["policy", "import", path, ...p]),
          "imported 60001 policies (60000 new, 1 already allowed)\n",
        );
      });
      const listed = await policies(pinDir);
      assert.equal(listed.length, 60001);
      assert.deepEqual(new Set(listed.map(key)), new Set([...big, { src: 1, dst: 2 }].map(key)));
      const sorted = [...listed].sort((a, b) => a.src - b.src || a.dst - b.dst);
      assert.deepEqual(listed, sorted);
    });

    const before = await ok(["policy", "list", "--json", ...p]);

    await t.step("a file with one bad entry is rejected whole, naming it", async () => {
      const file: unknown[] = pairs(3000, 900000);
      file[2047] = { src: 12, dst: 0 };
      await withFile(file, async (path) => {
        assertFails(
          await ebpfcni(["policy", "import", path, ...p]),
          2,
          `Invalid policy file "${path}": [2047].dst: must be an integer from 1 to 4294967295, got "0"`,
        );
      });
      assertFails(
        await ebpfcni(["policy", "import", "-", ...p], `[{"src":1,"dst":2},{"src":"3","dst":4}]`),
        2,
        `Invalid policy file <stdin>: [1].src: must be an integer from 1 to 4294967295, got the string "3"`,
      );
      assertFails(
        await ebpfcni(["policy", "import", "-", ...p], "[{"),
        2,
        /^ebpfcni: Invalid policy file <stdin>: not valid JSON: /,
      );
      assert.equal(await ok(["policy", "list", "--json", ...p]), before);
    });

    await t.step("a file that would overflow the map is rejected whole", async () => {
      const room = POLICY_MAX - 60001;
      await withFile([...big.slice(0, 500), ...pairs(room + 1, 2000000)], async (path) => {
        assertFails(
          await ebpfcni(["policy", "import", path, ...p]),
          1,
          `Policy file "${path}" would overflow policy_map: 60001 entries + ${room + 1} new > ` +
            `${POLICY_MAX}; nothing changed`,
        );
      });
      assert.equal(await ok(["policy", "list", "--json", ...p]), before);
    });

    await t.step(
      "the map takes exactly 65,536 entries; a half-done --symmetric is undone",
      async () => {
        const rest = pairs(POLICY_MAX - 60001 - 1, 3000000);
        await withFile(rest, async (path) => {
          assert.equal(
            await ok(["policy", "import", path, ...p]),
            `imported ${rest.length} policies (${rest.length} new, 0 already allowed)\n`,
          );
        });
        // One slot left: the first direction fits, the second does not, so neither stays.
        const oneLeft = await ok(["policy", "list", "--json", ...p]);
        assertFails(
          await ebpfcni(["policy", "allow", "--src", "5", "--dst", "6", "--symmetric", ...p]),
          1,
          "policy_map is full (65536 entries): cannot allow 6 -> 5",
        );
        assert.equal(await ok(["policy", "list", "--json", ...p]), oneLeft);
        await ok(["policy", "allow", "--src", "5", "--dst", "6", ...p]);
        const full = await ok(["policy", "list", "--json", ...p]);
        assert.equal(JSON.parse(full).length, POLICY_MAX);
        assertFails(
          await ebpfcni(["policy", "allow", "--src", "6", "--dst", "5", ...p]),
          1,
          "policy_map is full (65536 entries): cannot allow 6 -> 5",
        );
        assertFails(
          await ebpfcni(["policy", "import", "-", ...p], `[{"src":6,"dst":5}]`),
          1,
          `Policy file <stdin> would overflow policy_map: ${POLICY_MAX} entries + 1 new > ${POLICY_MAX}; nothing changed`,
        );
        // Re-importing entries already there needs no room.
        assert.equal(
          await ok(["policy", "import", "-", ...p], JSON.stringify(big.slice(0, 10))),
          "imported 10 policies (0 new, 10 already allowed)\n",
        );
        assert.equal(await ok(["policy", "list", "--json", ...p]), full);
      },
    );
  });
});

Deno.test("policy list --json output imports into another pin directory unchanged", async () => {
  await withMaps(async (a) => {
    await withMaps(async (b) => {
      await ok(["policy", "allow", "--src", "3", "--dst", "4", "--symmetric", "--pin-dir", a]);
      await withFile(pairs(500, 70), (path) => ok(["policy", "import", path, "--pin-dir", a]));
      const listed = await ok(["policy", "list", "--json", "--pin-dir", a]);
      assert.equal(
        await ok(["policy", "import", "-", "--pin-dir", b], listed),
        "imported 502 policies (502 new, 0 already allowed)\n",
      );
      assert.equal(await ok(["policy", "list", "--json", "--pin-dir", b]), listed);
    });
  });
});

Deno.test("endpoint import and list round-trip, with upserts", async () => {
  await withMaps(async (a) => {
    await withMaps(async (b) => {
      const first = addrs(1000, 5000);
      await withFile(first, async (path) => {
        assert.equal(
          await ok(["endpoint", "import", path, "--pin-dir", a]),
          "imported 1000 endpoints (1000 new, 0 changed, 0 unchanged)\n",
        );
      });
      const listed = await endpoints(a);
      const byIp = (r: EndpointRecord) => r.ip.split(".").reduce((n, o) => n * 256 + Number(o), 0);
      assert.deepEqual(listed, [...first].sort((x, y) => byIp(x) - byIp(y)));

      // New identities for 10 addresses, 5 new addresses, 3 unchanged.
      const update = [
        ...first.slice(0, 10).map((e) => ({ ip: e.ip, identity: e.identity + 100000 })),
        ...addrs(5, 1, 200),
        ...first.slice(10, 13),
      ];
      assert.equal(
        await ok(["endpoint", "import", "-", "--pin-dir", a], JSON.stringify(update)),
        "imported 18 endpoints (5 new, 10 changed, 3 unchanged)\n",
      );
      const json = await ok(["endpoint", "list", "--json", "--pin-dir", a]);
      assert.equal(JSON.parse(json).length, 1005);
      // Whatever list --json prints, import takes back unchanged.
      await ok(["endpoint", "import", "-", "--pin-dir", b], json);
      assert.equal(await ok(["endpoint", "list", "--json", "--pin-dir", b]), json);
      assert.equal(
        await ok(["endpoint", "import", "-", "--pin-dir", b], json),
        "imported 1005 endpoints (0 new, 0 changed, 1005 unchanged)\n",
      );
    });
  });
});

Deno.test("endpoint import rejects bad or overflowing files without changing anything", async () => {
  await withMaps(async (pinDir) => {
    const p = ["--pin-dir", pinDir];
    await withFile(addrs(400, 10), (path) => ok(["endpoint", "import", path, ...p]));
    const before = await ok(["endpoint", "list", "--json", ...p]);
    const cases: [unknown, string][] = [
      [
        [...addrs(50, 1, 1), { ip: "10.0.0.300", identity: 3 }],
        `[50].ip "10.0.0.300": octet 300 out of range 0-255`,
      ],
      [
        [{ ip: "fd00::5", identity: 3 }],
        `[0].ip "fd00::5": IPv6 addresses are not supported (IPv4 dotted quad only)`,
      ],
      [
        [{ ip: "10.9.9.9", identity: 0 }],
        `[0].identity: must be an integer from 1 to 4294967295, got "0"`,
      ],
      [
        [{ ip: "10.9.9.9", identity: 4 }, { ip: "10.9.9.9", identity: 5 }],
        `[1]: ip "10.9.9.9" has identity 5 here but 4 at [0]`,
      ],
      [[{ ip: "10.9.9.9", id: 4 }], `[0]: unknown key "id" (expected "ip" and "identity")`],
      [
        { ip: "10.9.9.9", identity: 4 },
        `expected a JSON array like [{"ip":"10.13.0.2","identity":1001}], got an object`,
      ],
    ];
    for (const [data, message] of cases) {
      await withFile(data, async (path) => {
        assertFails(
          await ebpfcni(["endpoint", "import", path, ...p]),
          2,
          `Invalid endpoint file "${path}": ${message}`,
        );
      });
    }
    const tooMany = addrs(ENDPOINT_MAX - 400 + 1, 1, 100);
    await withFile(tooMany, async (path) => {
      assertFails(
        await ebpfcni(["endpoint", "import", path, ...p]),
        1,
        `Endpoint file "${path}" would overflow endpoint_map: 400 entries + ${tooMany.length} new > ` +
          `${ENDPOINT_MAX}; nothing changed`,
      );
    });
    assertFails(
      await ebpfcni(["endpoint", "import", "/nonexistent/x.json", ...p]),
      1,
      `Cannot read "/nonexistent/x.json": no such file`,
    );
    assert.equal(await ok(["endpoint", "list", "--json", ...p]), before);
  });
});

Deno.test("endpoint_map takes exactly 16,384 addresses; when full, changes still work", async () => {
  await withMaps(async (pinDir) => {
    const p = ["--pin-dir", pinDir];
    const all = addrs(ENDPOINT_MAX, 1, 7);
    await withFile(all, async (path) => {
      assert.equal(
        await ok(["endpoint", "import", path, ...p]),
        `imported ${ENDPOINT_MAX} endpoints (${ENDPOINT_MAX} new, 0 changed, 0 unchanged)\n`,
      );
    });
    assertFails(
      await ebpfcni(["endpoint", "add", "--ip", "10.8.0.1", "--identity", "5", ...p]),
      1,
      `endpoint_map is full (${ENDPOINT_MAX} entries): cannot add 10.8.0.1`,
    );
    const first = all[0] ?? { ip: "", identity: 0 };
    assert.equal(
      await ok(["endpoint", "add", "--ip", first.ip, "--identity", "424242", ...p]),
      `changed endpoint ${first.ip} from identity ${first.identity} to 424242\n`,
    );
    const listed = await endpoints(pinDir);
    assert.equal(listed.length, ENDPOINT_MAX);
    assert.deepEqual(listed.find((e) => e.ip === first.ip), { ip: first.ip, identity: 424242 });
    assert.equal(listed.some((e) => e.ip === "10.8.0.1"), false);
  });
});
