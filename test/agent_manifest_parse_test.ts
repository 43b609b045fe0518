// The manifest parser (src/agent/manifest_parse.ts) on its own: here rather than beside it
// because the YAML library reads environment variables (LOG_TOKENS, LOG_STREAM) as it parses,
// which unit tests without permissions may not.
import assert from "node:assert/strict";
import {
  documentsOf,
  ManifestError,
  MAX_DOCUMENTS,
  readManifest,
} from "../src/agent/manifest_parse.ts";

const SECRET = "s3cr3t-VALUE";

async function problemOf(path: string, text: string): Promise<string> {
  try {
    await readManifest(path, text);
  } catch (err) {
    assert.ok(err instanceof ManifestError, String(err));
    return err.message;
  }
  throw new Error(`${path} was read`);
}

Deno.test("readManifest() problems never quote the file's text", async () => {
  const cases: [string, string, RegExp][] = [
    ["a.yaml", `${SECRET}\n`, /^not a Kubernetes object: the document is a string$/],
    ["a.yaml", `- ${SECRET}\n`, /^not a Kubernetes object: the document is a sequence$/],
    ["a.yaml", `kind: Pod\n  ${SECRET}: [x\n`, /^not valid YAML: .* at line \d+, column \d+$/],
    ["a.yaml", `kind: "${SECRET}\\q"\n`, /^not valid YAML: an invalid escape/],
    ["a.yaml", `kind: *${SECRET}\n`, /^not valid YAML: an unresolved alias/],
    ["a.yaml", `a: |${SECRET}\n  x\n`, /^not valid YAML: /],
    ["a.json", `{"kind": ${SECRET}}`, /^not valid JSON: /],
    ["a.json", `{"kind": "Pod",\n "x": 1 ${SECRET}}`, /^not valid JSON: syntax error at line 2/],
    ["a.json", `"${SECRET}"`, /^not a Kubernetes object: the document is a string$/],
  ];
  for (const [path, text, want] of cases) {
    const message = await problemOf(path, text);
    assert.match(message, want, text);
    assert.ok(!message.includes(SECRET), message);
  }
});

Deno.test("readManifest() refuses a file of more than MAX_DOCUMENTS documents", async () => {
  assert.equal(
    await problemOf("a.yaml", "---\n".repeat(MAX_DOCUMENTS + 1)),
    `more than ${MAX_DOCUMENTS} documents in one file: not read`,
  );
  assert.deepEqual(await readManifest("a.yaml", "---\n".repeat(MAX_DOCUMENTS)), []);
});

Deno.test("readManifest() refuses an alias bomb without expanding it", async () => {
  const bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
  for (let i = 1; i < 9; i++) {
    const p = String.fromCharCode(96 + i);
    const n = String.fromCharCode(97 + i);
    bomb.push(`${n}: &${n} [*${p}, *${p}, *${p}, *${p}, *${p}, *${p}, *${p}, *${p}, *${p}, *${p}]`);
  }
  assert.match(await problemOf("a.yaml", bomb.join("\n") + "\n"), /too many alias expansions/);
});

Deno.test("documentsOf() gives way between documents", async () => {
  let pauses = 0;
  const docs = await documentsOf("a.yaml", "a: 1\n---\nb: 2\n---\nc: 3\n", () => {
    pauses++;
    return Promise.resolve();
  });
  assert.deepEqual(docs, [{ a: 1 }, { b: 2 }, { c: 3 }]);
  assert.ok(pauses >= 2, `${pauses} pauses`);
});

Deno.test("readManifest() reads multi-document YAML, Lists and typed lists by identity", async () => {
  const text = `apiVersion: v1
kind: Namespace
metadata: {name: x}
---
apiVersion: v1
kind: PodList
items:
- apiVersion: v1
  metadata: {name: a, namespace: x}
  spec: {containers: [{name: c, image: i}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: skipped}
`;
  const objects = await readManifest("a.yaml", text);
  assert.deepEqual(objects.map((o) => [o.kind, o.namespace, o.name]), [
    ["Namespace", undefined, "x"],
    ["Pod", "x", "a"],
  ]);
});
