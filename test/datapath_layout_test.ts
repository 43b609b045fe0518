// The TypeScript side of the datapath's C side: the generated contract
// (src/spec/bpf_abi.gen.ts, read by scripts/gen_bpf.ts from the object's BTF) against a
// second reader (bpftool) and the C compiler itself, the committed module against what the
// built object generates, and the embedded object module against the build.
// Needs `bash scripts/gen-bpf.sh` first (dist/bpf/ebpfcni.bpf.o and bpf_object.gen.ts).
// Nothing here loads into the kernel: see datapath_kernel_test.ts for that.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { embeddedObject } from "../src/datapath/object.ts";
import {
  decodePolicyKey,
  encodePolicyKey,
  EVENTS_MAP,
  MAPS,
  POLICY_MAP,
  STAT_NAMES,
  STATS_MAP,
  STRUCTS,
} from "../src/spec/bpf_layout.ts";
import { ENUMS } from "../src/spec/bpf_abi.gen.ts";
import { randomHex, run, runJson, tryRun } from "./_kernel.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const OBJECT = `${ROOT}dist/bpf/ebpfcni.bpf.o`;
const GEN_MODULE = `${ROOT}src/datapath/bpf_object.gen.ts`;
const ABI_MODULE = `${ROOT}src/spec/bpf_abi.gen.ts`;

interface BtfMember {
  name: string;
  type_id: number;
  bits_offset: number;
}

interface BtfType {
  id: number;
  kind: string;
  name: string;
  size?: number;
  type_id?: number;
  nr_elems?: number;
  members?: BtfMember[];
  vars?: { type_id: number }[];
}

class Btf {
  readonly #byId = new Map<number, BtfType>();

  constructor(types: BtfType[]) {
    for (const t of types) this.#byId.set(t.id, t);
  }

  type(id: number): BtfType {
    const t = this.#byId.get(id);
    assert.ok(t, `BTF type id ${id} exists`);
    return t;
  }

  find(kind: string, name: string): BtfType {
    const found = [...this.#byId.values()].filter((t) => t.kind === kind && t.name === name);
    assert.equal(found.length, 1, `exactly one BTF ${kind} named ${name}`);
    return found[0]!;
  }

  /** Follows typedefs and qualifiers to the type that has a size. */
  resolve(id: number): BtfType {
    let t = this.type(id);
    while (["TYPEDEF", "CONST", "VOLATILE", "RESTRICT", "TYPE_TAG"].includes(t.kind)) {
      t = this.type(t.type_id!);
    }
    return t;
  }

  sizeOf(id: number): number {
    const t = this.resolve(id);
    assert.equal(typeof t.size, "number", `BTF type ${t.kind} ${t.name} has a size`);
    return t.size!;
  }

  member(struct: BtfType, name: string): BtfMember {
    const m = struct.members?.find((x) => x.name === name);
    assert.ok(m, `struct ${struct.name || "(anon)"} has member ${name}`);
    return m;
  }

  /** A BTF-defined ring buffer's max_entries (its size in bytes). */
  ringbufSize(name: string): number {
    const def = this.type(this.find("VAR", name).type_id!);
    const ptr = this.type(this.member(def, "max_entries").type_id);
    return this.type(ptr.type_id!).nr_elems!;
  }

  /** A BTF-defined map: `__uint(type, N)` is `int (*type)[N]`, `__type(key, T)` is `T *key`. */
  mapDef(
    name: string,
  ): { type: number; maxEntries: number; flags: number; key: BtfType; value: BtfType } {
    const v = this.find("VAR", name);
    const def = this.type(v.type_id!);
    assert.equal(def.kind, "STRUCT");
    const dim = (member: string) => {
      const ptr = this.type(this.member(def, member).type_id);
      assert.equal(ptr.kind, "PTR");
      const arr = this.type(ptr.type_id!);
      assert.equal(arr.kind, "ARRAY");
      return arr.nr_elems!;
    };
    const pointee = (member: string) => {
      const ptr = this.type(this.member(def, member).type_id);
      assert.equal(ptr.kind, "PTR");
      return this.type(ptr.type_id!);
    };
    return {
      type: dim("type"),
      maxEntries: dim("max_entries"),
      flags: def.members?.some((m) => m.name === "map_flags") ? dim("map_flags") : 0,
      key: pointee("key"),
      value: pointee("value"),
    };
  }
}

async function builtBtf(): Promise<Btf> {
  const out = await runJson<{ types: BtfType[] }>("bpftool", ["btf", "dump", "file", OBJECT, "-j"]);
  return new Btf(out.types);
}

Deno.test("struct policy_key in the object's BTF is 8 bytes: src_id at bit 0, dst_id at bit 32", async () => {
  const btf = await builtBtf();
  const key = btf.find("STRUCT", "policy_key");
  assert.equal(key.size, 8);
  assert.equal(key.size, POLICY_MAP.keySize);
  assert.deepEqual(key.members?.map((m) => [m.name, m.bits_offset]), [
    ["src_id", 0],
    ["dst_id", 32],
  ]);
  for (const m of key.members ?? []) {
    const t = btf.resolve(m.type_id);
    assert.equal(t.kind, "INT", `${m.name} is an integer`);
    assert.equal(t.size, 4, `${m.name} is 32-bit`);
  }
  // encodePolicyKey puts each identity where BTF says the member lives (little-endian).
  const bytes = encodePolicyKey(0x11223344, 0xa0b0c0d0);
  const view = new DataView(bytes.buffer);
  const at = (name: string) => btf.member(key, name).bits_offset / 8;
  assert.equal(view.getUint32(at("src_id"), true), 0x11223344);
  assert.equal(view.getUint32(at("dst_id"), true), 0xa0b0c0d0);
  assert.deepEqual(decodePolicyKey(bytes), { src: 0x11223344, dst: 0xa0b0c0d0 });
});

Deno.test("bpftool reads every map of the object's BTF as the generated specs say", async () => {
  const btf = await builtBtf();
  for (const spec of MAPS) {
    if (spec.type === EVENTS_MAP.type) {
      // The ring buffer has no key or value, only a size.
      assert.equal(btf.ringbufSize(spec.name), spec.maxEntries, `${spec.name} size`);
      continue;
    }
    const def = btf.mapDef(spec.name);
    assert.equal(def.type, spec.type, `${spec.name} map type`);
    assert.equal(def.maxEntries, spec.maxEntries, `${spec.name} max_entries`);
    assert.equal(def.flags, spec.flags, `${spec.name} map_flags`);
    assert.equal(btf.sizeOf(def.key.id), spec.keySize, `${spec.name} key size`);
    assert.equal(btf.sizeOf(def.value.id), spec.valueSize, `${spec.name} value size`);
  }
  // One counter per enum ebpfcni_stat value (STAT_MAX), named in index order.
  assert.equal(STAT_NAMES.length, STATS_MAP.maxEntries);
  // Every map in the object's .maps section is one bpf_layout.ts knows about.
  const maps = btf.find("DATASEC", ".maps").vars?.map((v) => btf.type(v.type_id).name).sort();
  assert.deepEqual(maps, MAPS.map((m) => m.name).sort());
});

Deno.test("the C compiler gives every struct and enum of ebpfcni.h the layout and values the generated contract has", async () => {
  // An independent reading: the header compiled for the host, not the object's BTF.
  const checks = [
    ...Object.entries(STRUCTS).flatMap(([name, layout]) => [
      { expr: `sizeof(struct ${name})`, want: layout.size },
      ...Object.entries(layout.fields).map(([field, offset]) => ({
        expr: `offsetof(struct ${name}, ${field})`,
        want: offset,
      })),
    ]),
    ...Object.values(ENUMS).flatMap((e) =>
      Object.entries(e).map(([name, value]) => ({ expr: name, want: value }))
    ),
  ];
  const tmp = await Deno.makeTempDir({ prefix: `ebpfcni-layout-${randomHex()}-` });
  try {
    // Compiled to assembly only, the values read off the array's .quad lines: no libc, no
    // linker, so it runs wherever clang does (the kernel matrix's guests too).
    await Deno.writeTextFile(
      `${tmp}/layout.c`,
      `#include <stddef.h>
#include <linux/types.h>
#include "ebpfcni.h"
const long layout_values[] = {
${checks.map((c) => `  (long)(${c.expr}),`).join("\n")}
};
`,
    );
    const asm = await run("clang", ["-S", "-o", "-", "-I", `${ROOT}bpf`, `${tmp}/layout.c`]);
    const got = [...asm.matchAll(/^\s*\.quad\s+(-?\d+)\b/gm)].map((m) => Number(m[1]));
    assert.equal(got.length, checks.length, `one .quad per check in:\n${asm}`);
    const wrong = checks.filter((c, i) => got[i] !== c.want).map((c) =>
      `${c.expr} = ${got[checks.indexOf(c)]}, bpf_abi.gen.ts says ${c.want}`
    );
    assert.deepEqual(wrong, []);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
  // And bpftool finds each in the object's BTF where the generated module says.
  const btf = await builtBtf();
  for (const [name, layout] of Object.entries(STRUCTS)) {
    const struct = btf.find("STRUCT", name);
    assert.equal(struct.size, layout.size, `BTF sizeof(struct ${name})`);
    for (const [field, offset] of Object.entries(layout.fields)) {
      assert.equal(btf.member(struct, field).bits_offset / 8, offset, `BTF ${name}.${field}`);
    }
  }
});

/** Runs gen_bpf.ts on the built object, writing into `dir`; its exit code and stderr. */
function genBpf(dir: string, ...flags: string[]) {
  return tryRun(Deno.execPath(), [
    "run",
    "--quiet",
    "--no-lock",
    "--allow-read",
    "--allow-write",
    `${ROOT}scripts/gen_bpf.ts`,
    ...flags,
    OBJECT,
    `${dir}/bpf_object.gen.ts`,
    `${dir}/bpf_abi.gen.ts`,
  ]);
}

Deno.test("the committed contract module is what gen_bpf.ts makes from the built object", async () => {
  const tmp = await Deno.makeTempDir({ prefix: `ebpfcni-gen-${randomHex()}-` });
  try {
    const r = await genBpf(tmp);
    assert.equal(r.code, 0, r.stderr);
    const generated = await Deno.readTextFile(`${tmp}/bpf_abi.gen.ts`);
    assert.ok(
      generated === await Deno.readTextFile(ABI_MODULE),
      `src/spec/bpf_abi.gen.ts is stale: run "bash scripts/gen-bpf.sh" and commit it`,
    );
    assert.equal(
      await Deno.readTextFile(`${tmp}/bpf_object.gen.ts`),
      await Deno.readTextFile(GEN_MODULE),
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("gen_bpf.ts --check fails naming the stale contract module and leaves it as it was", async () => {
  const tmp = await Deno.makeTempDir({ prefix: `ebpfcni-gen-${randomHex()}-` });
  try {
    const committed = await Deno.readTextFile(ABI_MODULE);
    const stale = committed.replace(/maxEntries: 131072,/, "maxEntries: 131071,");
    assert.notEqual(stale, committed);
    await Deno.writeTextFile(`${tmp}/bpf_abi.gen.ts`, stale);
    const r = await genBpf(tmp, "--check");
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /bpf_abi\.gen\.ts is not what bpf\/ builds to: run "bash scripts\/gen-bpf\.sh"/,
    );
    assert.match(r.stderr, /committed: ".*131071,"\n\s+generated: ".*131072,"/);
    assert.equal(await Deno.readTextFile(`${tmp}/bpf_abi.gen.ts`), stale);
    // And the current one passes.
    await Deno.writeTextFile(`${tmp}/bpf_abi.gen.ts`, committed);
    const ok = await genBpf(tmp, "--check");
    assert.equal(ok.code, 0, ok.stderr);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("the embedded object is the built object, byte for byte, with tags for both programs", async () => {
  const gen = embeddedObject();
  const object = await Deno.readFile(OBJECT);
  assert.equal(gen.objectBytes().length, object.length);
  assert.ok(
    gen.objectBytes().every((b, i) => b === object[i]),
    "objectBytes() is the object file byte for byte",
  );
  assert.equal(gen.OBJECT_SHA256, createHash("sha256").update(object).digest("hex"));
  for (const tags of [gen.PROGRAM_TAGS, gen.PROGRAM_TAGS_EGRESS]) {
    assert.equal(tags.length, 2);
    for (const tag of tags) assert.match(tag, /^[0-9a-f]{16}$/);
  }
});
