// The README's maps table against the generated contract (src/spec/bpf_abi.gen.ts): the
// table is written by hand for readers, so a map added, resized or retyped in bpf/ must show
// up there too. Needs no build: the contract module is committed.
import assert from "node:assert/strict";
import {
  MAP_SPECS,
  PROGRAM_PROCESS_TC,
  PROGRAM_PROCESS_TC_EGRESS,
  PROGRAM_PROCESS_TC_TO_NODE,
} from "../src/spec/bpf_abi.gen.ts";
import {
  BPF_MAP_TYPE_ARRAY,
  BPF_MAP_TYPE_HASH,
  BPF_MAP_TYPE_LPM_TRIE,
  BPF_MAP_TYPE_LRU_HASH,
  BPF_MAP_TYPE_LRU_PERCPU_HASH,
  BPF_MAP_TYPE_PERCPU_ARRAY,
  BPF_MAP_TYPE_RINGBUF,
} from "../src/spec/bpf_layout.ts";

const README = new URL("../README.md", import.meta.url);

/** The words the table uses for each map type. */
const TYPE_WORDS: Record<string, number> = {
  "hash": BPF_MAP_TYPE_HASH,
  "array": BPF_MAP_TYPE_ARRAY,
  "per-CPU array": BPF_MAP_TYPE_PERCPU_ARRAY,
  "LRU hash": BPF_MAP_TYPE_LRU_HASH,
  "LRU per-CPU hash": BPF_MAP_TYPE_LRU_PERCPU_HASH,
  "LPM trie": BPF_MAP_TYPE_LPM_TRIE,
  "ring buffer": BPF_MAP_TYPE_RINGBUF,
};

interface Row {
  pins: string[];
  type: string;
  what: string;
  maxEntries: string;
}

/** The rows of the table whose header starts `| pin `. */
function mapsTable(text: string): Row[] {
  const lines = text.split("\n");
  const start = lines.findIndex((l) => /^\| pin\s+\|/.test(l));
  assert.ok(start >= 0, "README.md has a table with a `pin` column");
  const rows: Row[] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith("|")) break;
    const [pin = "", type = "", what = "", maxEntries = ""] = line.split("|").slice(1, -1).map((
      c,
    ) => c.trim());
    rows.push({ pins: [...pin.matchAll(/`([^`]+)`/g)].map((m) => m[1]!), type, what, maxEntries });
  }
  return rows;
}

/** "16384", or "256 KiB" for the ring buffer (its max entries are bytes). */
function entries(text: string): number {
  const m = /^(\d+)( KiB)?$/.exec(text);
  assert.ok(m, `max entries "${text}" is a number`);
  return Number(m[1]) * (m[2] ? 1024 : 1);
}

Deno.test("the README's maps table lists every map with the type and max entries bpf/ gives it", async () => {
  const rows = mapsTable(await Deno.readTextFile(README));
  const maps = rows.filter((r) => r.type !== "programs");
  const wrong: string[] = [];
  for (const row of maps) {
    const name = row.pins[0] ?? "";
    const spec = MAP_SPECS[name as keyof typeof MAP_SPECS];
    if (!spec) {
      wrong.push(`"${name}" is not a map of the object`);
      continue;
    }
    if (TYPE_WORDS[row.type] !== spec.type) {
      wrong.push(`${name}: type "${row.type}", the object's is ${spec.type}`);
    }
    if (entries(row.maxEntries) !== spec.maxEntries) {
      wrong.push(`${name}: max entries ${row.maxEntries}, the object's ${spec.maxEntries}`);
    }
  }
  const listed = maps.map((r) => r.pins[0]);
  for (const name of Object.keys(MAP_SPECS)) {
    if (!listed.includes(name)) wrong.push(`${name} is missing`);
  }
  const programs = rows.find((r) => r.type === "programs");
  assert.ok(programs, "the table has a programs row");
  const named = [...programs.what.matchAll(/`([^`]+)`/g)].map((m) => m[1]);
  assert.deepEqual(named, [
    PROGRAM_PROCESS_TC,
    PROGRAM_PROCESS_TC_EGRESS,
    PROGRAM_PROCESS_TC_TO_NODE,
  ]);
  assert.deepEqual(wrong, []);
});
