// Tests for env.ts: per-command required variables and the rules for their values.

import assert from "node:assert/strict";
import { errorOf } from "./_test_util.ts";
import { parseEnv, validateIfName, validateNetnsPath } from "./env.ts";
import { ifNameProblem, validateNetworkName } from "../spec/name_rules.ts";
import { quote } from "../spec/text.ts";

const FULL = {
  CNI_COMMAND: "ADD",
  CNI_CONTAINERID: "abc123",
  CNI_NETNS: "/var/run/netns/test",
  CNI_IFNAME: "eth0",
  CNI_ARGS: "K8S_POD_NAME=p",
  CNI_PATH: "/opt/cni/bin:/usr/lib/cni",
};

Deno.test("parseEnv() reads a complete ADD environment", () => {
  assert.deepEqual(parseEnv(FULL), {
    command: "ADD",
    containerId: "abc123",
    netns: "/var/run/netns/test",
    ifname: "eth0",
    args: "K8S_POD_NAME=p",
    path: ["/opt/cni/bin", "/usr/lib/cni"],
  });
});

Deno.test("parseEnv() lists every missing variable for ADD with code 4", () => {
  const err = errorOf(() => parseEnv({ CNI_COMMAND: "ADD", CNI_CONTAINERID: "x" }));
  assert.equal(err.code, 4);
  assert.equal(
    err.message,
    "Required environment variables missing: CNI_NETNS, CNI_IFNAME, CNI_PATH",
  );
});

Deno.test("parseEnv() treats empty variables as missing, as skel does", () => {
  const err = errorOf(() => parseEnv({ ...FULL, CNI_NETNS: "", CNI_IFNAME: "" }));
  assert.equal(err.message, "Required environment variables missing: CNI_NETNS, CNI_IFNAME");
});

Deno.test("parseEnv() allows DEL without CNI_NETNS", () => {
  const env = parseEnv({ ...FULL, CNI_COMMAND: "DEL", CNI_NETNS: undefined });
  assert.equal(env.netns, "");
  assert.equal(env.command, "DEL");
});

Deno.test("parseEnv() still validates a CNI_NETNS given to DEL", () => {
  assert.equal(errorOf(() => parseEnv({ ...FULL, CNI_COMMAND: "DEL", CNI_NETNS: "rel" })).code, 4);
});

Deno.test("parseEnv() requires CNI_NETNS for CHECK", () => {
  const err = errorOf(() => parseEnv({ ...FULL, CNI_COMMAND: "CHECK", CNI_NETNS: undefined }));
  assert.equal(err.message, "Required environment variables missing: CNI_NETNS");
});

Deno.test("parseEnv() needs only CNI_COMMAND for VERSION, STATUS and GC", () => {
  for (const command of ["VERSION", "STATUS", "GC"]) {
    assert.deepEqual(parseEnv({ CNI_COMMAND: command }), {
      command,
      containerId: "",
      netns: "",
      ifname: "",
      args: "",
      path: [],
    });
  }
});

Deno.test("parseEnv() ignores libcni's VERSION placeholders such as a relative CNI_NETNS", () => {
  const env = parseEnv({
    CNI_COMMAND: "VERSION",
    CNI_CONTAINERID: "cni",
    CNI_NETNS: "dummy",
    CNI_IFNAME: "dummy",
    CNI_PATH: "dummy",
  });
  assert.equal(env.command, "VERSION");
  assert.equal(env.netns, "");
});

Deno.test("parseEnv() reports a missing CNI_COMMAND with code 4", () => {
  const err = errorOf(() => parseEnv({}));
  assert.equal(err.code, 4);
  assert.equal(err.message, "Required environment variables missing: CNI_COMMAND");
});

Deno.test("parseEnv() names an unknown CNI_COMMAND with code 4", () => {
  const err = errorOf(() => parseEnv({ ...FULL, CNI_COMMAND: "add" }));
  assert.equal(err.code, 4);
  assert.match(err.message, /^Unknown CNI_COMMAND "add": expected one of ADD, DEL/);
});

Deno.test("parseEnv() rejects bad values with code 4 and says which rule", () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ CNI_CONTAINERID: "-abc" }, /^Invalid CNI_CONTAINERID "-abc": must start with/],
    [{ CNI_CONTAINERID: "a b" }, /^Invalid CNI_CONTAINERID "a b"/],
    [{ CNI_CONTAINERID: "a/b" }, /^Invalid CNI_CONTAINERID/],
    [{ CNI_IFNAME: "eth0eth0eth0eth0" }, /^Invalid CNI_IFNAME "eth0eth0eth0eth0": .*15 bytes/],
    [{ CNI_IFNAME: "." }, /must not be "\." or "\.\."/],
    [{ CNI_IFNAME: ".." }, /must not be "\." or "\.\."/],
    [{ CNI_IFNAME: "eth/0" }, /must not contain "\/"/],
    [{ CNI_IFNAME: "eth:0" }, /must not contain/],
    [{ CNI_IFNAME: "eth 0" }, /whitespace/],
    [{ CNI_IFNAME: "eth\t0" }, /whitespace/],
    [
      { CNI_NETNS: "var/run/netns/x" },
      /^Invalid CNI_NETNS "var\/run\/netns\/x": must be an absolute path$/,
    ],
    [{ CNI_NETNS: "/proc/1/ns/net\0" }, /must not contain NUL/],
  ];
  for (const [override, message] of cases) {
    const err = errorOf(() => parseEnv({ ...FULL, ...override }));
    assert.equal(err.code, 4, JSON.stringify(override));
    assert.match(err.message, message);
  }
});

Deno.test("parseEnv() accepts a 15-byte interface name and counts bytes, not characters", () => {
  assert.equal(parseEnv({ ...FULL, CNI_IFNAME: "abcdefghijklmno" }).ifname, "abcdefghijklmno");
  // 8 characters, 16 bytes in UTF-8.
  assert.match(ifNameProblem("éééééééé") ?? "", /15 bytes/);
});

Deno.test("parseEnv() truncates a huge container ID in the message", () => {
  const err = errorOf(() => parseEnv({ ...FULL, CNI_CONTAINERID: "!".repeat(10000) }));
  assert.ok(err.message.length < 300, err.message);
  assert.match(err.message, /\(10000 characters\)/);
});

Deno.test("validateNetworkName() rejects empty and invalid names with code 7", () => {
  assert.equal(validateNetworkName("k8s-pod.net_1"), "k8s-pod.net_1");
  for (const name of ["", "-net", "my net", "net/1", "_x"]) {
    assert.equal(errorOf(() => validateNetworkName(name)).code, 7, name);
  }
});

Deno.test("validateIfName() names the field and uses the code it is given", () => {
  const err = errorOf(() => validateIfName("a/b", '"bridge"', 7));
  assert.equal(err.code, 7);
  assert.match(err.message, /^Invalid "bridge" "a\/b": /);
  assert.equal(errorOf(() => validateIfName("", "CNI_IFNAME")).code, 4);
});

Deno.test("validateNetnsPath() accepts absolute paths without checking they exist", () => {
  assert.equal(validateNetnsPath("/no/such/netns"), "/no/such/netns");
});

Deno.test("quote() escapes control characters so messages stay on one line", () => {
  assert.equal(quote("a\nb"), '"a\\nb"');
});
