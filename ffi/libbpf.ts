// libbpf (libbpf.so.1, >= 1.1): object loading from memory, pinning, map operations, tc
// attach and test runs. Raw pointers stay in this file; callers get fds and typed errors.
import { openLibrary, toCString } from "./_lib.ts";
import { BpfError, Errno } from "./errors.ts";
import { closeFd, errno, formatVaList } from "./libc.ts";

const symbols = {
  libbpf_set_print: { parameters: ["function"], result: "pointer" }, // libbpf_print_fn_t
  bpf_object__open_mem: { parameters: ["buffer", "usize", "buffer"], result: "pointer" }, // buf, sz, opts
  bpf_object__load: { parameters: ["pointer"], result: "i32" }, // struct bpf_object *
  bpf_object__close: { parameters: ["pointer"], result: "void" },
  bpf_object__find_map_by_name: { parameters: ["pointer", "buffer"], result: "pointer" },
  bpf_object__find_program_by_name: { parameters: ["pointer", "buffer"], result: "pointer" },
  bpf_map__set_pin_path: { parameters: ["pointer", "buffer"], result: "i32" }, // map, path
  bpf_map__fd: { parameters: ["pointer"], result: "i32" },
  bpf_program__fd: { parameters: ["pointer"], result: "i32" },
  bpf_obj_get: { parameters: ["buffer"], result: "i32" }, // path
  bpf_obj_pin: { parameters: ["i32", "buffer"], result: "i32" }, // fd, path
  bpf_obj_get_info_by_fd: { parameters: ["i32", "buffer", "buffer"], result: "i32" }, // fd, info, __u32 *len
  bpf_map_update_elem: { parameters: ["i32", "buffer", "buffer", "u64"], result: "i32" },
  bpf_map_lookup_elem: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  bpf_map_delete_elem: { parameters: ["i32", "buffer"], result: "i32" },
  bpf_map_get_next_key: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  // fd, in_batch, out_batch, keys, values, __u32 *count, opts
  bpf_map_lookup_batch: {
    parameters: ["i32", "buffer", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  bpf_map_update_batch: {
    parameters: ["i32", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  bpf_map_delete_batch: { parameters: ["i32", "buffer", "buffer", "buffer"], result: "i32" },
  bpf_tc_hook_create: { parameters: ["buffer"], result: "i32" }, // struct bpf_tc_hook *
  bpf_tc_attach: { parameters: ["buffer", "buffer"], result: "i32" }, // hook, struct bpf_tc_opts *
  bpf_tc_detach: { parameters: ["buffer", "buffer"], result: "i32" },
  bpf_tc_query: { parameters: ["buffer", "buffer"], result: "i32" },
  bpf_prog_test_run_opts: { parameters: ["i32", "buffer"], result: "i32" }, // fd, opts
  libbpf_num_possible_cpus: { parameters: [], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

let lib: { symbols: Deno.DynamicLibrary<typeof symbols>["symbols"] } | undefined;
const printDefinition = { parameters: ["i32", "pointer", "pointer"], result: "i32" } as const;
let captured: string[] | undefined;
let logSink: (level: number, msg: string) => void = () => {};

function bpf() {
  if (lib) return lib;
  lib = openLibrary("libbpf", "libbpf.so.1", "EBPFCNI_LIBBPF", symbols, "libbpf1");
  // Silent by default: errors come back as return codes. libbpf's printer is process-wide,
  // so a JS callback is installed only while capturing (an isolate that ends must not leave
  // its callback behind for another one, e.g. under deno test --parallel).
  lib.symbols.libbpf_set_print(null);
  return lib;
}

/** Where libbpf's own messages go while they are captured (level: 0 warn, 1 info, 2 debug). */
export function setLibbpfLog(sink: (level: number, msg: string) => void): void {
  logSink = sink;
}

/** Runs `fn` with libbpf's messages captured, and returns them with the result. */
function capturing<T>(fn: () => T): { value: T; log: string } {
  const outer = captured;
  captured = [];
  const lines = captured;
  // libbpf calls back synchronously on this thread; va_list arrives as a pointer on
  // x86-64, so vsnprintf can render it.
  const cb = new Deno.UnsafeCallback(printDefinition, (level, fmt, args) => {
    const msg = formatVaList(fmt, args).replace(/\n$/, "").replace(/^libbpf: /, "");
    if (level === 0) lines.push(msg); // warnings explain a failure; info/debug only log
    logSink(level, msg);
    return 0;
  });
  const previous = bpf().symbols.libbpf_set_print(cb.pointer);
  try {
    const value = fn();
    return { value, log: lines.join("\n") };
  } finally {
    bpf().symbols.libbpf_set_print(previous);
    cb.close();
    captured = outer;
    outer?.push(...lines);
  }
}

function fail(op: string, rc: number, log = ""): never {
  throw new BpfError(op, -rc, log);
}

function check(op: string, rc: number): number {
  if (rc < 0) fail(op, rc);
  return rc;
}

/** An opened (and possibly loaded) bpf_object. Close it when done; pinned objects stay. */
export class BpfObject {
  #ptr: Deno.PointerObject | null;
  /** The verifier log of a failed load (libbpf retries into it with log level 1). */
  readonly #kernelLog: Uint8Array;
  /** Kept alive: libbpf holds pointers into them until close. */
  readonly #keep: Uint8Array[];

  private constructor(ptr: Deno.PointerObject, kernelLog: Uint8Array, keep: Uint8Array[]) {
    this.#ptr = ptr;
    this.#kernelLog = kernelLog;
    this.#keep = keep;
  }

  /** Opens an ELF object from memory, naming it `name` (prefixes internal maps). */
  static openMem(bytes: Uint8Array<ArrayBuffer>, name: string): BpfObject {
    const nameC = toCString(name);
    const kernelLog = new Uint8Array(1 << 20);
    const opts = new Uint8Array(80); // sizeof(struct bpf_object_open_opts), libbpf 1.1
    const v = new DataView(opts.buffer);
    const addr = (b: Uint8Array<ArrayBuffer>) =>
      BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)));
    v.setBigUint64(0, 80n, true);
    v.setBigUint64(8, addr(nameC), true); // object_name
    v.setBigUint64(56, addr(kernelLog), true); // kernel_log_buf
    v.setBigUint64(64, BigInt(kernelLog.length), true); // kernel_log_size
    const { value: ptr, log } = capturing(() =>
      bpf().symbols.bpf_object__open_mem(bytes, BigInt(bytes.length), opts)
    );
    // libbpf 1.x returns NULL and sets errno for pointer results.
    if (!ptr) throw new BpfError("open BPF object", errno() || Errno.EINVAL, log);
    return new BpfObject(ptr, kernelLog, [nameC, bytes]);
  }

  #handle(): Deno.PointerObject {
    if (!this.#ptr) throw new BpfError("use closed BPF object", Errno.EBADF);
    return this.#ptr;
  }

  #map(name: string): Deno.PointerObject {
    const m = bpf().symbols.bpf_object__find_map_by_name(this.#handle(), toCString(name));
    if (!m) throw new BpfError(`find map "${name}"`, Errno.ENOENT);
    return m;
  }

  #prog(name: string): Deno.PointerObject {
    const p = bpf().symbols.bpf_object__find_program_by_name(this.#handle(), toCString(name));
    if (!p) throw new BpfError(`find program "${name}"`, Errno.ENOENT);
    return p;
  }

  /** Before load: pin the map at `path`, reusing a compatible map already pinned there. */
  setMapPinPath(name: string, path: string): void {
    check(
      `set pin path of map "${name}"`,
      bpf().symbols.bpf_map__set_pin_path(this.#map(name), toCString(path)),
    );
  }

  /** Loads maps and programs into the kernel; the error carries the verifier log. */
  load(): void {
    const { value: rc, log } = capturing(() => bpf().symbols.bpf_object__load(this.#handle()));
    if (rc < 0) {
      const end = this.#kernelLog.indexOf(0);
      const verifier = new TextDecoder().decode(
        this.#kernelLog.subarray(0, end < 0 ? undefined : end),
      );
      fail("load BPF object", rc, [log, verifier].filter(Boolean).join("\n"));
    }
  }

  mapFd(name: string): number {
    return check(`fd of map "${name}"`, bpf().symbols.bpf_map__fd(this.#map(name)));
  }

  programFd(name: string): number {
    return check(`fd of program "${name}"`, bpf().symbols.bpf_program__fd(this.#prog(name)));
  }

  close(): void {
    if (this.#ptr) bpf().symbols.bpf_object__close(this.#ptr);
    this.#ptr = null;
    this.#keep.length = 0;
  }
}

/** Opens the object pinned at `path`; a BpfError with notFound when nothing is there. */
export function objGet(path: string): number {
  return check(`open pinned object "${path}"`, bpf().symbols.bpf_obj_get(toCString(path)));
}

export function objPin(fd: number, path: string): void {
  check(`pin "${path}"`, bpf().symbols.bpf_obj_pin(fd, toCString(path)));
}

export { closeFd };

function objInfo(fd: number, size: number, what: string): DataView {
  const info = new Uint8Array(size);
  const len = new Uint32Array([size]);
  check(
    `read ${what} info`,
    bpf().symbols.bpf_obj_get_info_by_fd(fd, info, new Uint8Array(len.buffer)),
  );
  return new DataView(info.buffer);
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

function cName(v: DataView, off: number): string {
  const bytes = new Uint8Array(v.buffer, off, 16);
  const end = bytes.indexOf(0);
  return new TextDecoder().decode(bytes.subarray(0, end < 0 ? 16 : end));
}

/** bpf_prog_info of a program fd (struct layout of linux/bpf.h). */
export function progInfo(fd: number): ProgInfo {
  const ids = new Uint32Array(16);
  const info = new Uint8Array(232);
  const v = new DataView(info.buffer);
  v.setUint32(52, ids.length, true); // nr_map_ids
  v.setBigUint64(56, BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(ids))), true);
  const len = new Uint32Array([info.length]);
  check(
    "read program info",
    bpf().symbols.bpf_obj_get_info_by_fd(fd, info, new Uint8Array(len.buffer)),
  );
  const nr = Math.min(v.getUint32(52, true), ids.length);
  return {
    type: v.getUint32(0, true),
    id: v.getUint32(4, true),
    tag: Array.from(info.subarray(8, 16), (b) => b.toString(16).padStart(2, "0")).join(""),
    name: cName(v, 64),
    mapIds: Array.from(ids.subarray(0, nr)),
    runTimeNs: v.getBigUint64(192, true),
    runCount: v.getBigUint64(200, true),
  };
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
  const v = objInfo(fd, 88, "map");
  return {
    type: v.getUint32(0, true),
    id: v.getUint32(4, true),
    keySize: v.getUint32(8, true),
    valueSize: v.getUint32(12, true),
    maxEntries: v.getUint32(16, true),
    flags: v.getUint32(20, true),
    name: cName(v, 24),
  };
}

export const BPF_ANY = 0n;
export const BPF_NOEXIST = 1n;

export function mapUpdate(
  fd: number,
  key: Uint8Array<ArrayBuffer>,
  value: Uint8Array<ArrayBuffer>,
  flags = BPF_ANY,
): void {
  check("update map element", bpf().symbols.bpf_map_update_elem(fd, key, value, flags));
}

/** Fills `value`; false when the key is absent. */
export function mapLookup(
  fd: number,
  key: Uint8Array<ArrayBuffer>,
  value: Uint8Array<ArrayBuffer>,
): boolean {
  const rc = bpf().symbols.bpf_map_lookup_elem(fd, key, value);
  if (rc === -Errno.ENOENT) return false;
  check("look up map element", rc);
  return true;
}

/** False when the key was absent. */
export function mapDelete(fd: number, key: Uint8Array<ArrayBuffer>): boolean {
  const rc = bpf().symbols.bpf_map_delete_elem(fd, key);
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
  const rc = bpf().symbols.bpf_map_get_next_key(fd, key, next);
  if (rc === -Errno.ENOENT) return false;
  check("iterate map", rc);
  return true;
}

function batchOpts(elemFlags: bigint): Uint8Array<ArrayBuffer> {
  const opts = new Uint8Array(24); // struct bpf_map_batch_opts
  const v = new DataView(opts.buffer);
  v.setBigUint64(0, 24n, true);
  v.setBigUint64(8, elemFlags, true);
  return opts;
}

/** Writes `count` packed keys and values in one syscall; returns how many were written
 * (the kernel stops at the first failure and the error says why). */
export function mapUpdateBatch(
  fd: number,
  keys: Uint8Array<ArrayBuffer>,
  values: Uint8Array<ArrayBuffer>,
  count: number,
  elemFlags = BPF_ANY,
): void {
  const n = new Uint32Array([count]);
  const rc = bpf().symbols.bpf_map_update_batch(
    fd,
    keys,
    values,
    new Uint8Array(n.buffer),
    batchOpts(elemFlags),
  );
  if (rc < 0) throw new BpfError(`batch update (${n[0]} of ${count} written)`, -rc);
}

export function mapDeleteBatch(fd: number, keys: Uint8Array<ArrayBuffer>, count: number): void {
  const n = new Uint32Array([count]);
  const rc = bpf().symbols.bpf_map_delete_batch(fd, keys, new Uint8Array(n.buffer), batchOpts(0n));
  if (rc < 0) throw new BpfError(`batch delete (${n[0]} of ${count} deleted)`, -rc);
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
  const n = new Uint32Array([max]);
  const rc = bpf().symbols.bpf_map_lookup_batch(
    fd,
    inBatch,
    outBatch,
    keys,
    values,
    new Uint8Array(n.buffer),
    batchOpts(0n),
  );
  if (rc === -Errno.ENOENT) return { count: n[0] ?? 0, done: true };
  check("batch lookup", rc);
  return { count: n[0] ?? 0, done: false };
}

export const BPF_TC_INGRESS = 1;
export const BPF_TC_EGRESS = 2;
const BPF_TC_F_REPLACE = 1;

function tcHook(ifindex: number, point: number): Uint8Array<ArrayBuffer> {
  const hook = new Uint8Array(24); // struct bpf_tc_hook
  const v = new DataView(hook.buffer);
  v.setBigUint64(0, 24n, true);
  v.setInt32(8, ifindex, true);
  v.setUint32(12, point, true);
  return hook;
}

function tcOpts(handle: number, priority: number, progFd = 0, flags = 0): Uint8Array<ArrayBuffer> {
  const opts = new Uint8Array(32); // struct bpf_tc_opts
  const v = new DataView(opts.buffer);
  v.setBigUint64(0, 32n, true);
  v.setInt32(8, progFd, true);
  v.setUint32(12, flags, true);
  v.setUint32(20, handle, true);
  v.setUint32(24, priority, true);
  return opts;
}

/** Creates the clsact qdisc on `ifindex`; one that already exists is fine (another
 * program, or an earlier attach, made it). */
export function tcHookCreate(ifindex: number, point = BPF_TC_INGRESS): void {
  const rc = bpf().symbols.bpf_tc_hook_create(tcHook(ifindex, point));
  if (rc < 0 && rc !== -Errno.EEXIST) fail(`create tc hook on ifindex ${ifindex}`, rc);
}

/** Attaches `progFd` as a direct-action filter at (handle, priority), replacing one there. */
export function tcAttach(
  ifindex: number,
  progFd: number,
  handle: number,
  priority: number,
  point = BPF_TC_INGRESS,
): number {
  const opts = tcOpts(handle, priority, progFd, BPF_TC_F_REPLACE);
  check(
    `attach tc program on ifindex ${ifindex}`,
    bpf().symbols.bpf_tc_attach(tcHook(ifindex, point), opts),
  );
  return new DataView(opts.buffer).getUint32(16, true);
}

/** False when no filter was at (handle, priority). */
export function tcDetach(
  ifindex: number,
  handle: number,
  priority: number,
  point = BPF_TC_INGRESS,
): boolean {
  const rc = bpf().symbols.bpf_tc_detach(tcHook(ifindex, point), tcOpts(handle, priority));
  if (rc === -Errno.ENOENT || rc === -Errno.EINVAL) return false;
  check(`detach tc program on ifindex ${ifindex}`, rc);
  return true;
}

/** The program id at (handle, priority), or 0 when none is attached there. */
export function tcQuery(
  ifindex: number,
  handle: number,
  priority: number,
  point = BPF_TC_INGRESS,
): number {
  const opts = tcOpts(handle, priority);
  const rc = bpf().symbols.bpf_tc_query(tcHook(ifindex, point), opts);
  if (rc === -Errno.ENOENT || rc === -Errno.EINVAL) return 0;
  check(`query tc program on ifindex ${ifindex}`, rc);
  return new DataView(opts.buffer).getUint32(16, true);
}

/** BPF_PROG_TEST_RUN on one frame. */
export function progTestRun(
  fd: number,
  frame: Uint8Array<ArrayBuffer>,
  repeat = 1,
): { retval: number; durationNs: number } {
  const opts = new Uint8Array(80); // struct bpf_test_run_opts
  const v = new DataView(opts.buffer);
  v.setBigUint64(0, 80n, true);
  v.setBigUint64(8, BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(frame))), true);
  v.setUint32(24, frame.length, true);
  v.setUint32(60, repeat, true);
  check("test run", bpf().symbols.bpf_prog_test_run_opts(fd, opts));
  return { retval: v.getUint32(56, true), durationNs: v.getUint32(64, true) };
}

/** Possible CPUs: per-CPU map values hold one slot for each. */
export function possibleCpus(): number {
  return check("count possible CPUs", bpf().symbols.libbpf_num_possible_cpus());
}
