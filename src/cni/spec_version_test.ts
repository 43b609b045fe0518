// Tests for version.ts: negotiation, comparison, per-command version rules and VERSION output.

import assert from "node:assert/strict";
import { codeOf } from "./_test_util.ts";
import {
  checkCommandAllowed,
  compareVersions,
  CURRENT_VERSION,
  negotiate,
  parseVersion,
  SUPPORTED_VERSIONS,
  versionInfo,
} from "./spec_version.ts";

Deno.test("negotiate() returns every supported version unchanged", () => {
  for (const v of SUPPORTED_VERSIONS) assert.equal(negotiate(v), v);
});

Deno.test("negotiate() rejects unsupported and malformed versions with code 1", () => {
  for (const v of ["0.1.0", "0.2.0", "1.2.0", "2.0.0", "1.0", "", "x", "1.0.0 ", "v1.0.0"]) {
    assert.equal(codeOf(() => negotiate(v)), 1, v);
  }
});

Deno.test("negotiate() names the version and lists the supported ones", () => {
  assert.throws(() => negotiate("0.2.0"), {
    message: 'Incompatible CNI version "0.2.0": plugin supports 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0',
  });
});

Deno.test("compareVersions() orders numerically, not as strings", () => {
  assert.ok(compareVersions("0.10.0", "0.4.0") > 0);
  assert.ok(compareVersions("0.3.1", "0.4.0") < 0);
  assert.equal(compareVersions("1.1.0", "1.1.0"), 0);
  assert.equal(compareVersions("1.1", "1.1.0"), 0);
  assert.ok(compareVersions("1.1.0", "1.0.0") > 0);
});

Deno.test("parseVersion() rejects malformed versions with code 1", () => {
  for (const v of ["", "1.0.0.0", "a.b.c", "1..0", "-1.0.0", "1.0.0-rc1"]) {
    assert.equal(codeOf(() => parseVersion(v)), 1, v);
  }
  assert.deepEqual(parseVersion("1"), [1, 0, 0]);
});

Deno.test("checkCommandAllowed() refuses CHECK before 0.4.0 with code 1", () => {
  assert.equal(codeOf(() => checkCommandAllowed("CHECK", "0.3.1")), 1);
  assert.throws(() => checkCommandAllowed("CHECK", "0.3.0"), {
    message: 'Config version "0.3.0" does not allow CHECK: it needs 0.4.0 or later',
  });
  checkCommandAllowed("CHECK", "0.4.0");
  checkCommandAllowed("CHECK", "1.0.0");
});

Deno.test("checkCommandAllowed() refuses STATUS and GC before 1.1.0 with code 1", () => {
  for (const cmd of ["STATUS", "GC"] as const) {
    for (const v of ["0.3.0", "0.3.1", "0.4.0", "1.0.0"]) {
      assert.equal(codeOf(() => checkCommandAllowed(cmd, v)), 1, `${cmd} ${v}`);
    }
    checkCommandAllowed(cmd, "1.1.0");
  }
});

Deno.test("checkCommandAllowed() allows ADD, DEL and VERSION in every version", () => {
  for (const cmd of ["ADD", "DEL", "VERSION"] as const) {
    for (const v of SUPPORTED_VERSIONS) checkCommandAllowed(cmd, v);
  }
});

Deno.test("versionInfo() is the VERSION output with the current and supported versions", () => {
  assert.equal(CURRENT_VERSION, "1.1.0");
  assert.deepEqual(versionInfo(), {
    cniVersion: "1.1.0",
    supportedVersions: ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"],
  });
  // The output is a copy: callers cannot change the supported list.
  versionInfo().supportedVersions.pop();
  assert.equal(versionInfo().supportedVersions.length, 5);
});
