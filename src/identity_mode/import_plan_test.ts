// Unit tests for import file validation and import planning.
import assert from "node:assert/strict";
import {
  ImportError,
  PairSet,
  parseEndpointFile,
  parsePolicyFile,
  planEndpointImport,
  planPolicyImport,
} from "./import_plan.ts";
import { formatRecordsJson } from "./map_records.ts";
import { parseIpv4 } from "../spec/ipv4.ts";

function rejects(fn: () => unknown, message: string, index?: number): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ImportError);
    assert.equal(err.message, message);
    assert.equal(err.index, index);
    return true;
  });
}

Deno.test("parsePolicyFile() reads what policy list --json prints, dropping repeats", () => {
  const text = formatRecordsJson([{ src: 1, dst: 2 }, { src: 2, dst: 1 }, { src: 1, dst: 2 }]);
  assert.deepEqual(parsePolicyFile(text), {
    entries: [{ src: 1, dst: 2 }, { src: 2, dst: 1 }],
    rules: [],
    total: 3,
  });
  assert.deepEqual(parsePolicyFile("[]"), { entries: [], rules: [], total: 0 });
  assert.deepEqual(parsePolicyFile(`[{"dst":4294967295,"src":1}]`).entries, [{
    src: 1,
    dst: 4294967295,
  }]);
});

Deno.test("parsePolicyFile() names the first bad entry's index and value and counts the rest", () => {
  rejects(
    () => parsePolicyFile(`[{"src":1,"dst":2},{"src":0,"dst":2},{"src":"3","dst":1}]`),
    `[1].src: must be an integer from 1 to 4294967295, got "0" (and 1 more invalid entries)`,
    1,
  );
  rejects(
    () => parsePolicyFile(`[{"src":1,"dst":2.5}]`),
    `[0].dst: must be an integer from 1 to 4294967295, got "2.5"`,
    0,
  );
  rejects(
    () => parsePolicyFile(`[{"src":"7","dst":2}]`),
    `[0].src: must be an integer from 1 to 4294967295, got the string "7"`,
    0,
  );
  rejects(
    () => parsePolicyFile(`[{"src":1,"dst":4294967296}]`),
    `[0].dst: must be an integer from 1 to 4294967295, got "4294967296"`,
    0,
  );
  rejects(() => parsePolicyFile(`[{"src":1}]`), `[0]: missing "dst"`, 0);
  rejects(
    () => parsePolicyFile(`[{"src":1,"dst":2,"action":1}]`),
    `[0]: unknown key "action" (expected "src" and "dst", optionally "proto", "ports")`,
    0,
  );
  rejects(
    () => parsePolicyFile(`[[1,2]]`),
    `[0]: expected an object like {"src":1001,"dst":1002}, got an array`,
    0,
  );
  rejects(
    () => parsePolicyFile(`[null]`),
    `[0]: expected an object like {"src":1001,"dst":1002}, got null`,
    0,
  );
  rejects(
    () => parsePolicyFile(`{"src":1,"dst":2}`),
    `expected a JSON array like [{"src":1001,"dst":1002}], got an object`,
  );
});

Deno.test("parsePolicyFile() reports malformed JSON on one line", () => {
  assert.throws(() => parsePolicyFile("[\n{"), (err: unknown) => {
    assert.ok(err instanceof ImportError);
    assert.match(err.message, /^not valid JSON: /);
    assert.doesNotMatch(err.message, /\n/);
    return true;
  });
});

Deno.test("parseEndpointFile() reads what endpoint list --json prints", () => {
  const text = formatRecordsJson([{ ip: "10.13.0.2", identity: 1001 }, {
    ip: "10.13.0.10",
    identity: 7,
  }]);
  assert.deepEqual(parseEndpointFile(text), {
    entries: [{ ip: parseIpv4("10.13.0.2"), identity: 1001 }, {
      ip: parseIpv4("10.13.0.10"),
      identity: 7,
    }],
    total: 2,
  });
  // The same entry twice is fine.
  assert.equal(
    parseEndpointFile(`[{"ip":"1.2.3.4","identity":5},{"ip":"1.2.3.4","identity":5}]`).entries
      .length,
    1,
  );
});

Deno.test("parseEndpointFile() refuses bad addresses, identities and conflicting repeats", () => {
  rejects(
    () => parseEndpointFile(`[{"ip":"300.1.1.1","identity":5}]`),
    `[0].ip "300.1.1.1": octet 300 out of range 0-255`,
    0,
  );
  rejects(
    () => parseEndpointFile(`[{"ip":"fd00::1","identity":5}]`),
    `[0].ip "fd00::1": IPv6 addresses are not supported (IPv4 dotted quad only)`,
    0,
  );
  rejects(
    () => parseEndpointFile(`[{"ip":167772161,"identity":5}]`),
    `[0].ip: must be an IPv4 address string, got "167772161"`,
    0,
  );
  rejects(
    () => parseEndpointFile(`[{"ip":"1.2.3.4","identity":0}]`),
    `[0].identity: must be an integer from 1 to 4294967295, got "0"`,
    0,
  );
  rejects(
    () =>
      parseEndpointFile(
        `[{"ip":"1.2.3.4","identity":5},{"ip":"1.2.3.5","identity":5},{"ip":"1.2.3.4","identity":6}]`,
      ),
    `[2]: ip "1.2.3.4" has identity 6 here but 5 at [0]`,
    2,
  );
});

Deno.test("planPolicyImport() writes only what is not allowed yet and checks capacity", () => {
  const allowed = [{ src: 1, dst: 2 }];
  const incoming = [{ src: 1, dst: 2 }, { src: 2, dst: 1 }, { src: 3, dst: 3 }];
  const plan = planPolicyImport(allowed, 1, incoming, 3);
  assert.deepEqual(plan.write, [{ src: 2, dst: 1 }, { src: 3, dst: 3 }]);
  assert.equal(plan.unchanged, 1);
  assert.equal(plan.after, 3);
  assert.equal(plan.fits, true);
  // A key present with another action counts in `entries` and again as new: stricter, never laxer.
  assert.equal(planPolicyImport(allowed, 2, incoming, 3).fits, false);
});

Deno.test("planEndpointImport() tells new, changed and unchanged addresses apart", () => {
  const current = [{ ip: 1, identity: 10 }, { ip: 2, identity: 20 }];
  const incoming = [{ ip: 1, identity: 10 }, { ip: 2, identity: 21 }, { ip: 3, identity: 30 }];
  const plan = planEndpointImport(current, incoming, 3);
  assert.deepEqual(plan.write, [{ ip: 2, identity: 21 }, { ip: 3, identity: 30 }]);
  assert.deepEqual(plan.added, [{ ip: 3, identity: 30 }]);
  assert.equal(plan.changed, 1);
  assert.equal(plan.unchanged, 1);
  assert.equal(plan.after, 3);
  assert.equal(plan.fits, true);
  assert.equal(planEndpointImport(current, incoming, 2).fits, false);
});

Deno.test("PairSet keeps pairs apart that src * 2^32 + dst would round together", () => {
  const set = new PairSet();
  // As doubles, 4294967295 * 2^32 + 1 and + 0 are the same number.
  assert.equal(set.add(4294967295, 1), true);
  assert.equal(set.add(4294967295, 0), true);
  assert.equal(set.add(4294967295, 1), false);
  assert.equal(set.has(4294967295, 0), true);
  assert.equal(set.has(1, 4294967295), false);
});
