// The TypeScript mirrors of the datapath's C side: src/datapath/layout.ts against the BTF of
// the built object (read with bpftool), and the generated module against the build.
// Needs `bash scripts/gen-bpf.sh` first (dist/bpf/ebpfcni.bpf.o and bpf_object.gen.ts).
// Nothing here loads into the kernel: see datapath_kernel_test.ts for that.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as gen from "../src/datapath/bpf_object.gen.ts";
import {
  CIDR_MAP,
  CONFIG_MAP,
  CT_MAP,
  decodePolicyKey,
  encodePolicyKey,
  ENDPOINT_MAP,
  EVENTS_MAP,
  FRAG_MAP,
  HOST_MAP,
  IPCACHE_MAP,
  ISOLATION_MAP,
  MAPS,
  type MapSpec,
  PAIR_STATS_MAP,
  POLICY_MAP,
  RATE_MAP,
  RULE_MAP,
  STAT_NAMES,
  STATS_MAP,
  STRUCTS,
  VETH_MAP,
} from "../src/datapath/layout.ts";
import { randomHex, run, runJson } from "./_kernel.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const OBJECT = `${ROOT}dist/bpf/ebpfcni.bpf.o`;
const GEN_MODULE = `${ROOT}src/datapath/bpf_object.gen.ts`;

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
  mapDef(name: string): { type: number; maxEntries: number; key: BtfType; value: BtfType } {
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

Deno.test("the map definitions in the object's BTF match the specs in layout.ts", async () => {
  const btf = await builtBtf();
  const expected: [MapSpec, string, string][] = [
    [ENDPOINT_MAP, "__u32", "__u32"],
    [POLICY_MAP, "policy_key", "__u8"],
    [STATS_MAP, "__u32", "__u64"],
    [CONFIG_MAP, "__u32", "dp_config"],
    [VETH_MAP, "__u32", "veth_info"],
    [HOST_MAP, "__u32", "__u32"],
    [IPCACHE_MAP, "__u32", "ipcache_entry"],
    [CIDR_MAP, "cidr_key", "__u32"],
    [RULE_MAP, "rule_key", "__u32"],
    [ISOLATION_MAP, "__u32", "__u32"],
    [CT_MAP, "ct_key", "ct_entry"],
    [FRAG_MAP, "frag_key", "frag_ports"],
    [PAIR_STATS_MAP, "policy_key", "pair_stats"],
    [RATE_MAP, "__u32", "rate_state"],
  ];
  for (const [spec, keyName, valueName] of expected) {
    const def = btf.mapDef(spec.name);
    assert.equal(def.type, spec.type, `${spec.name} map type`);
    assert.equal(def.maxEntries, spec.maxEntries, `${spec.name} max_entries`);
    assert.equal(def.key.name, keyName, `${spec.name} key type`);
    assert.equal(def.value.name, valueName, `${spec.name} value type`);
    assert.equal(btf.sizeOf(def.key.id), spec.keySize, `${spec.name} key size`);
    assert.equal(btf.sizeOf(def.value.id), spec.valueSize, `${spec.name} value size`);
  }
  // The ring buffer has no key or value, only a size.
  assert.equal(btf.ringbufSize(EVENTS_MAP.name), EVENTS_MAP.maxEntries);
  // One counter per enum ebpfcni_stat value (STAT_MAX), named in index order.
  assert.equal(STAT_NAMES.length, STATS_MAP.maxEntries);
  // Every map in the object's .maps section is one layout.ts knows about.
  const maps = btf.find("DATASEC", ".maps").vars?.map((v) => btf.type(v.type_id).name).sort();
  assert.deepEqual(maps, MAPS.map((m) => m.name).sort());
  assert.deepEqual([...gen.MAP_NAMES].sort(), maps);
});

Deno.test("every struct of ebpfcni.h has the size and field offsets layout.ts gives it", async () => {
  // Compiled from the header itself: struct event, for one, is only ever a cast of ring
  // buffer memory, so the object's BTF does not carry it.
  const checks = Object.entries(STRUCTS).flatMap(([name, layout]) => [
    { expr: `sizeof(struct ${name})`, want: layout.size },
    ...Object.entries(layout.fields).map(([field, offset]) => ({
      expr: `offsetof(struct ${name}, ${field})`,
      want: offset,
    })),
  ]);
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
      `${c.expr} = ${got[checks.indexOf(c)]}, layout.ts says ${c.want}`
    );
    assert.deepEqual(wrong, []);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
  // And the ones the maps carry agree with the object's BTF.
  const btf = await builtBtf();
  for (const name of ["veth_info", "ct_entry", "rule_key", "dp_config"] as const) {
    const struct = btf.find("STRUCT", name);
    assert.equal(struct.size, STRUCTS[name].size, `BTF sizeof(struct ${name})`);
    for (const [field, offset] of Object.entries(STRUCTS[name].fields)) {
      assert.equal(btf.member(struct, field).bits_offset / 8, offset, `BTF ${name}.${field}`);
    }
  }
});

Deno.test("the generated module is what gen_bpf.ts makes from the built object", async () => {
  const tmp = await Deno.makeTempDir({ prefix: `ebpfcni-gen-${randomHex()}-` });
  try {
    const out = `${tmp}/bpf_object.gen.ts`;
    await run(Deno.execPath(), [
      "run",
      "--quiet",
      "--no-lock",
      "--allow-read",
      "--allow-write",
      `${ROOT}scripts/gen_bpf.ts`,
      OBJECT,
      out,
    ]);
    assert.equal(await Deno.readTextFile(out), await Deno.readTextFile(GEN_MODULE));
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
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
