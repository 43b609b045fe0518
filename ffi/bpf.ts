// The bpf(2) system call, raw, through libc's syscall(): pins, map elements (single and
// batch), object info, ids and test runs. This is what every CNI call and the CLI need once
// the datapath is pinned, so they never load libbpf (ffi/libbpf.ts stays for loading objects).
// union bpf_attr and the info structs are laid out as linux/bpf.h defines them; the offsets are
// in ATTR and INFO below, and test/ffi_abi_test.ts checks each against the C header.
import { toCString } from "./_lib.ts";
import { BpfError, Errno } from "./errors.ts";
import { errno, syscall } from "./libc.ts";

/** __NR_bpf on x86-64 (asm/unistd_64.h). */
const SYS_BPF = 321n;

/** enum bpf_cmd */
export const BpfCmd = {
  MAP_LOOKUP_ELEM: 1,
  MAP_UPDATE_ELEM: 2,
  MAP_DELETE_ELEM: 3,
  MAP_GET_NEXT_KEY: 4,
  OBJ_PIN: 6,
  OBJ_GET: 7,
  PROG_TEST_RUN: 10,
  PROG_GET_FD_BY_ID: 13,
  MAP_GET_FD_BY_ID: 14,
  OBJ_GET_INFO_BY_FD: 15,
  MAP_LOOKUP_BATCH: 24,
  MAP_UPDATE_BATCH: 26,
  MAP_DELETE_BATCH: 27,
} as const;

/** Offsets and sizes of the union bpf_attr members used here (linux/bpf.h). */
export const ATTR = {
  /** BPF_MAP_*_ELEM, BPF_MAP_GET_NEXT_KEY */
  elem: { size: 32, map_fd: 0, key: 8, value: 16, flags: 24 },
  /** BPF_OBJ_PIN, BPF_OBJ_GET */
  obj: { size: 16, pathname: 0, bpf_fd: 8, file_flags: 12 },
  /** BPF_PROG_TEST_RUN */
  test: {
    size: 80,
    prog_fd: 0,
    retval: 4,
    data_size_in: 8,
    data_size_out: 12,
    data_in: 16,
    data_out: 24,
    repeat: 32,
    duration: 36,
    ctx_size_in: 40,
    ctx_in: 48,
  },
  /** BPF_*_GET_FD_BY_ID */
  getId: { size: 12, id: 0, next_id: 4, open_flags: 8 },
  /** BPF_OBJ_GET_INFO_BY_FD */
  info: { size: 16, bpf_fd: 0, info_len: 4, info: 8 },
  /** BPF_MAP_*_BATCH */
  batch: {
    size: 56,
    in_batch: 0,
    out_batch: 8,
    keys: 16,
    values: 24,
    count: 32,
    map_fd: 36,
    elem_flags: 40,
    flags: 48,
  },
} as const;

/** Offsets and sizes of struct bpf_map_info and struct bpf_prog_info (linux/bpf.h). */
export const INFO = {
  map: {
    size: 88,
    type: 0,
    id: 4,
    key_size: 8,
    value_size: 12,
    max_entries: 16,
    map_flags: 20,
    name: 24,
  },
  prog: {
    size: 232,
    type: 0,
    id: 4,
    tag: 8,
    nr_map_ids: 52,
    map_ids: 56,
    name: 64,
    run_time_ns: 192,
    run_cnt: 200,
  },
} as const;

export const BPF_ANY = 0n;
export const BPF_NOEXIST = 1n;
export const BPF_EXIST = 2n;
export const BPF_OBJ_NAME_LEN = 16;

function addr(b: Uint8Array | null): bigint {
  return b === null ? 0n : BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)));
}

/** One bpf(2) call; a negative errno for a failure the caller handles itself. */
function call(cmd: number, attr: Uint8Array<ArrayBuffer>): number {
  const rc = Number(syscall(SYS_BPF, BigInt(cmd), addr(attr), BigInt(attr.length)));
  return rc < 0 ? -errno() : rc;
}

function check(op: string, rc: number): number {
  if (rc < 0) throw new BpfError(op, -rc);
  return rc;
}

function attrOf(size: number): { bytes: Uint8Array<ArrayBuffer>; v: DataView } {
  const bytes = new Uint8Array(size);
  return { bytes, v: new DataView(bytes.buffer) };
}

/** Opens the object pinned at `path`; a BpfError with notFound when nothing is there. */
export function objGet(path: string): number {
  const p = toCString(path);
  const { bytes, v } = attrOf(ATTR.obj.size);
  v.setBigUint64(ATTR.obj.pathname, addr(p), true);
  return check(`open pinned object "${path}"`, call(BpfCmd.OBJ_GET, bytes));
}

export function objPin(fd: number, path: string): void {
  const p = toCString(path);
  const { bytes, v } = attrOf(ATTR.obj.size);
  v.setBigUint64(ATTR.obj.pathname, addr(p), true);
  v.setUint32(ATTR.obj.bpf_fd, fd, true);
  check(`pin "${path}"`, call(BpfCmd.OBJ_PIN, bytes));
}

function getFdById(cmd: number, id: number, what: string): number {
  const { bytes, v } = attrOf(ATTR.getId.size);
  v.setUint32(ATTR.getId.id, id, true);
  return check(`open ${what} id ${id}`, call(cmd, bytes));
}

/** An fd of the loaded program with this id (e.g. one attached to a tc hook). */
export function progFdById(id: number): number {
  return getFdById(BpfCmd.PROG_GET_FD_BY_ID, id, "program");
}

export function mapFdById(id: number): number {
  return getFdById(BpfCmd.MAP_GET_FD_BY_ID, id, "map");
}

/** A reusable single-element attr: loops over map elements allocate nothing per call. */
class ElemAttr {
  readonly bytes = new Uint8Array(ATTR.elem.size);
  readonly #v = new DataView(this.bytes.buffer);

  set(fd: number, key: Uint8Array | null, value: Uint8Array | null, flags: bigint): this {
    this.#v.setUint32(ATTR.elem.map_fd, fd, true);
    this.#v.setBigUint64(ATTR.elem.key, addr(key), true);
    this.#v.setBigUint64(ATTR.elem.value, addr(value), true);
    this.#v.setBigUint64(ATTR.elem.flags, flags, true);
    return this;
  }
}
const elem = new ElemAttr();

export function mapUpdate(
  fd: number,
  key: Uint8Array<ArrayBuffer>,
  value: Uint8Array<ArrayBuffer>,
  flags = BPF_ANY,
): void {
  check("update map element", call(BpfCmd.MAP_UPDATE_ELEM, elem.set(fd, key, value, flags).bytes));
}

/** Fills `value`; false when the key is absent. */
export function mapLookup(
  fd: number,
  key: Uint8Array<ArrayBuffer>,
  value: Uint8Array<ArrayBuffer>,
): boolean {
  const rc = call(BpfCmd.MAP_LOOKUP_ELEM, elem.set(fd, key, value, 0n).bytes);
  if (rc === -Errno.ENOENT) return false;
  check("look up map element", rc);
  return true;
}

/** False when the key was absent. */
export function mapDelete(fd: number, key: Uint8Array<ArrayBuffer>): boolean {
  const rc = call(BpfCmd.MAP_DELETE_ELEM, elem.set(fd, key, null, 0n).bytes);
  if (rc === -Errno.ENOENT) return false;
  check("delete map element", rc);
  return true;
}

/** Writes the key after `key` (or the first, for null) into `next`; false at the end. */
export function mapNextKey(
  fd: number,
  key: Uint8Array<ArrayBuffer> | null,
  next: Uint8Array<ArrayBuffer>,
): boolean {
  const rc = call(BpfCmd.MAP_GET_NEXT_KEY, elem.set(fd, key, next, 0n).bytes);
  if (rc === -Errno.ENOENT) return false;
  check("iterate map", rc);
  return true;
}

function batchAttr(
  fd: number,
  inBatch: Uint8Array | null,
  outBatch: Uint8Array | null,
  keys: Uint8Array,
  values: Uint8Array | null,
  count: number,
  elemFlags: bigint,
): { bytes: Uint8Array<ArrayBuffer>; v: DataView } {
  const a = attrOf(ATTR.batch.size);
  a.v.setBigUint64(ATTR.batch.in_batch, addr(inBatch), true);
  a.v.setBigUint64(ATTR.batch.out_batch, addr(outBatch), true);
  a.v.setBigUint64(ATTR.batch.keys, addr(keys), true);
  a.v.setBigUint64(ATTR.batch.values, addr(values), true);
  a.v.setUint32(ATTR.batch.count, count, true);
  a.v.setUint32(ATTR.batch.map_fd, fd, true);
  a.v.setBigUint64(ATTR.batch.elem_flags, elemFlags, true);
  return a;
}

/** Writes `count` packed keys and values in one syscall (the kernel stops at the first
 * failure and the error says how many were written). */
export function mapUpdateBatch(
  fd: number,
  keys: Uint8Array<ArrayBuffer>,
  values: Uint8Array<ArrayBuffer>,
  count: number,
  elemFlags = BPF_ANY,
): void {
  const a = batchAttr(fd, null, null, keys, values, count, elemFlags);
  const rc = call(BpfCmd.MAP_UPDATE_BATCH, a.bytes);
  if (rc < 0) {
    const done = a.v.getUint32(ATTR.batch.count, true);
    throw new BpfError(`batch update (${done} of ${count} written)`, -rc);
  }
}

export function mapDeleteBatch(fd: number, keys: Uint8Array<ArrayBuffer>, count: number): void {
  const a = batchAttr(fd, null, null, keys, null, count, 0n);
  const rc = call(BpfCmd.MAP_DELETE_BATCH, a.bytes);
  if (rc < 0) {
    const done = a.v.getUint32(ATTR.batch.count, true);
    throw new BpfError(`batch delete (${done} of ${count} deleted)`, -rc);
  }
}

/** Reads up to `max` entries starting after the opaque batch token `inBatch` (null: from
 * the start) into `keys`/`values`; returns the count and whether the map is exhausted. */
export function mapLookupBatch(
  fd: number,
  inBatch: Uint8Array<ArrayBuffer> | null,
  outBatch: Uint8Array<ArrayBuffer>,
  keys: Uint8Array<ArrayBuffer>,
  values: Uint8Array<ArrayBuffer>,
  max: number,
): { count: number; done: boolean } {
  const a = batchAttr(fd, inBatch, outBatch, keys, values, max, 0n);
  const rc = call(BpfCmd.MAP_LOOKUP_BATCH, a.bytes);
  const count = a.v.getUint32(ATTR.batch.count, true);
  if (rc === -Errno.ENOENT) return { count, done: true };
  check("batch lookup", rc);
  return { count, done: false };
}

function objInfo(fd: number, info: Uint8Array<ArrayBuffer>, what: string): DataView {
  const { bytes, v } = attrOf(ATTR.info.size);
  v.setUint32(ATTR.info.bpf_fd, fd, true);
  v.setUint32(ATTR.info.info_len, info.length, true);
  v.setBigUint64(ATTR.info.info, addr(info), true);
  check(`read ${what} info`, call(BpfCmd.OBJ_GET_INFO_BY_FD, bytes));
  return new DataView(info.buffer);
}

function cName(v: DataView, off: number): string {
  const bytes = new Uint8Array(v.buffer, off, BPF_OBJ_NAME_LEN);
  const end = bytes.indexOf(0);
  return new TextDecoder().decode(bytes.subarray(0, end < 0 ? BPF_OBJ_NAME_LEN : end));
}

export interface MapInfo {
  type: number;
  id: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  name: string;
}

export function mapInfo(fd: number): MapInfo {
  const m = INFO.map;
  const v = objInfo(fd, new Uint8Array(m.size), "map");
  return {
    type: v.getUint32(m.type, true),
    id: v.getUint32(m.id, true),
    keySize: v.getUint32(m.key_size, true),
    valueSize: v.getUint32(m.value_size, true),
    maxEntries: v.getUint32(m.max_entries, true),
    flags: v.getUint32(m.map_flags, true),
    name: cName(v, m.name),
  };
}

export interface ProgInfo {
  type: number;
  id: number;
  tag: string;
  name: string;
  mapIds: number[];
  runTimeNs: bigint;
  runCount: bigint;
}

/** bpf_prog_info of a program fd, with the ids of up to 64 maps it uses. */
export function progInfo(fd: number): ProgInfo {
  const p = INFO.prog;
  const ids = new Uint32Array(64);
  const info = new Uint8Array(p.size);
  const w = new DataView(info.buffer);
  w.setUint32(p.nr_map_ids, ids.length, true);
  w.setBigUint64(p.map_ids, addr(new Uint8Array(ids.buffer)), true);
  const v = objInfo(fd, info, "program");
  const nr = Math.min(v.getUint32(p.nr_map_ids, true), ids.length);
  return {
    type: v.getUint32(p.type, true),
    id: v.getUint32(p.id, true),
    tag: Array.from(info.subarray(p.tag, p.tag + 8), (b) => b.toString(16).padStart(2, "0"))
      .join(""),
    name: cName(v, p.name),
    mapIds: Array.from(ids.subarray(0, nr)),
    runTimeNs: v.getBigUint64(p.run_time_ns, true),
    runCount: v.getBigUint64(p.run_cnt, true),
  };
}

/** BPF_PROG_TEST_RUN on one frame. */
/** Offset of ifindex in struct __sk_buff. */
const SKB_CTX_IFINDEX = 40;

export function progTestRun(
  fd: number,
  frame: Uint8Array<ArrayBuffer>,
  repeat = 1,
  opts: { ifindex?: number | undefined } = {},
): { retval: number; durationNs: number } {
  const t = ATTR.test;
  const { bytes, v } = attrOf(t.size);
  v.setUint32(t.prog_fd, fd, true);
  v.setUint32(t.data_size_in, frame.length, true);
  v.setBigUint64(t.data_in, addr(frame), true);
  v.setUint32(t.repeat, repeat, true);
  // The device the frame arrives on (struct __sk_buff up to ifindex); else the loopback.
  const ctx = new Uint8Array(SKB_CTX_IFINDEX + 4);
  if (opts.ifindex !== undefined) {
    new DataView(ctx.buffer).setUint32(SKB_CTX_IFINDEX, opts.ifindex, true);
    v.setUint32(t.ctx_size_in, ctx.length, true);
    v.setBigUint64(t.ctx_in, addr(ctx), true);
  }
  check("test run", call(BpfCmd.PROG_TEST_RUN, bytes));
  return { retval: v.getUint32(t.retval, true), durationNs: v.getUint32(t.duration, true) };
}
