// The TypeScript mirrors of the datapath's C side: src/datapath/layout.ts against the BTF of
// the built object (read with bpftool), and the generated module against the build.
// Needs `bash scripts/gen-bpf.sh` first (dist/bpf/ebpfcni.bpf.o and bpf_object.gen.ts).
// Nothing here loads into the kernel: see datapath_kernel_test.ts for that.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as gen from "../src/datapath/bpf_object.gen.ts";
import {
  decodePolicyKey,
  encodePolicyKey,
  ENDPOINT_MAP,
  type MapSpec,
  POLICY_MAP,
  STAT_NAMES,
  STATS_MAP,
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
  // One counter per enum ebpfcni_stat value (STAT_MAX), named in index order.
  assert.equal(STAT_NAMES.length, STATS_MAP.maxEntries);
  // Every map in the object's .maps section is one layout.ts knows about.
  const maps = btf.find("DATASEC", ".maps").vars?.map((v) => btf.type(v.type_id).name).sort();
  assert.deepEqual(maps, [ENDPOINT_MAP.name, POLICY_MAP.name, STATS_MAP.name].sort());
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
  assert.equal(gen.PROGRAM_TAGS.length, 2);
  for (const tag of gen.PROGRAM_TAGS) assert.match(tag, /^[0-9a-f]{16}$/);
});
