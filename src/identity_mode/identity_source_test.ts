// Tests for identity_source.ts and spec/label_hash.ts: source precedence, validation and the shell agent's label hash.

import assert from "node:assert/strict";
import { errorOf } from "../cni/_test_util.ts";
import { identityArg, parseCniArgs, podNamespaceArg } from "../cni/cni_args.ts";
import { parseNetConf } from "../cni/net_conf.ts";
import { identityFromDigest, identityFromLabels, labelHashInput } from "../spec/label_hash.ts";
import { parseIdentityArg, RESERVED_IDENTITY, resolveIdentity } from "./identity_source.ts";

// Expected values come from the shell: printf '<lines>' | LC_ALL=C sort | sha1sum, first 8 hex
// digits read as an unsigned 32-bit integer.
Deno.test("identityFromLabels() matches `sort | sha1sum` of the label lines", () => {
  // printf 'app=web\nk8s:namespace=default\n' | sha1sum -> bc7806f8...
  assert.equal(identityFromLabels({ app: "web" }, "default"), 0xbc7806f8);
  // printf 'app=web\n' | sha1sum -> ee663e00...
  assert.equal(identityFromLabels({ app: "web" }), 0xee663e00);
  // Sorted bytewise: uppercase before lowercase. -> 6b651395...
  assert.equal(identityFromLabels({ a: "1", Z: "1", B: "1" }), 0x6b651395);
});

Deno.test("identityFromLabels() takes the namespace from the pod label when not given", () => {
  const labels = { tier: "db", app: "api", "io.kubernetes.pod.namespace": "prod" };
  assert.equal(
    labelHashInput(labels),
    "app=api\nio.kubernetes.pod.namespace=prod\nk8s:namespace=prod\ntier=db\n",
  );
  assert.equal(identityFromLabels(labels), 0x19c4f538);
  // The argument wins over the label.
  assert.ok(labelHashInput(labels, "other").includes("k8s:namespace=other\n"));
});

Deno.test("identityFromLabels() sorts by UTF-8 bytes, not UTF-16 code units", () => {
  // U+FF61 (EF BD A1) sorts before U+1F600 (F0 9F 98 80) bytewise, after it in UTF-16.
  assert.equal(labelHashInput({ "\u{1F600}": "1", "\uFF61": "1" }), "\uFF61=1\n\u{1F600}=1\n");
  assert.equal(identityFromLabels({ "\u{1F600}": "1", "\uFF61": "1" }), 0xee9e7baa);
});

Deno.test("identityFromLabels() does not depend on the order labels were given in", () => {
  assert.equal(
    identityFromLabels({ a: "1", b: "2", c: "3" }, "ns"),
    identityFromLabels({ c: "3", a: "1", b: "2" }, "ns"),
  );
});

Deno.test("identityFromDigest() maps a zero hash to the reserved identity", () => {
  assert.equal(identityFromDigest(new Uint8Array(20)), RESERVED_IDENTITY);
  assert.equal(identityFromDigest(new Uint8Array([0, 0, 0, 2, 9])), 2);
  assert.equal(identityFromDigest(new Uint8Array([0xff, 0xff, 0xff, 0xff])), 4294967295);
});

Deno.test("labelHashInput() rejects labels that would make distinct sets hash alike", () => {
  for (const labels of [{ "a=b": "c" }, { "a\nb": "c" }, { a: "b\nc=d" }, { "": "x" }]) {
    assert.equal(errorOf(() => labelHashInput(labels)).code, 7, JSON.stringify(labels));
  }
});

Deno.test("resolveIdentity() prefers CNI_ARGS, then args, then labels, then reserved", () => {
  const labels = { app: "web" };
  assert.deepEqual(
    resolveIdentity({ cniArgsIdentity: "42", argsIdentity: 7, labels, namespace: "default" }),
    { identity: 42, source: "cni-args" },
  );
  assert.deepEqual(resolveIdentity({ argsIdentity: 7, labels, namespace: "default" }), {
    identity: 7,
    source: "args",
  });
  assert.deepEqual(resolveIdentity({ labels, namespace: "default" }), {
    identity: 0xbc7806f8,
    source: "labels",
  });
  assert.deepEqual(resolveIdentity({ namespace: "default" }), {
    identity: RESERVED_IDENTITY,
    source: "reserved",
  });
  assert.deepEqual(resolveIdentity({ labels: {} }), { identity: 1, source: "reserved" });
});

Deno.test("parseIdentityArg() accepts decimal identities from 1 to 4294967295", () => {
  assert.equal(parseIdentityArg("1"), 1);
  assert.equal(parseIdentityArg("4294967295"), 4294967295);
  assert.equal(parseIdentityArg("0042"), 42);
});

Deno.test("resolveIdentity() rejects a bad CNI_ARGS identity with code 4 naming it", () => {
  for (const bad of ["0", "4294967296", "-1", "+5", "1e3", "0x10", " 5", "5.0", "abc", ""]) {
    const err = errorOf(() => resolveIdentity({ cniArgsIdentity: bad }));
    assert.equal(err.code, 4, bad);
    assert.ok(
      err.message.startsWith(`Invalid EBPFCNI_IDENTITY ${JSON.stringify(bad)}:`),
      err.message,
    );
  }
});

Deno.test("resolveIdentity() rejects a bad config identity with code 7", () => {
  for (const bad of [0, -1, 1.5, 4294967296, NaN]) {
    assert.equal(errorOf(() => resolveIdentity({ argsIdentity: bad })).code, 7, String(bad));
  }
});

Deno.test("resolveIdentity() takes its inputs straight from CNI_ARGS and the config", () => {
  const conf = parseNetConf(
    new TextEncoder().encode(JSON.stringify({
      cniVersion: "1.1.0",
      name: "net",
      type: "ebpfcni",
      podcidr: "10.13.0.0/24",
      args: { cni: { labels: { app: "web" } } },
    })),
  );
  const args = parseCniArgs("K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0");
  assert.deepEqual(
    resolveIdentity({
      cniArgsIdentity: identityArg(args),
      argsIdentity: conf.args.identity,
      labels: conf.args.labels,
      namespace: podNamespaceArg(args),
    }),
    { identity: 0xbc7806f8, source: "labels" },
  );
});
