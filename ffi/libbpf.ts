// libbpf (libbpf.so.1, >= 1.1): what it is for, CO-RE loading of an object from memory with
// its maps pinned, and the verifier log when the kernel refuses it. Everything else (pins, map
// elements, info, test runs) is raw bpf(2) in ffi/bpf.ts, and tc attach is netlink, so a CNI
// call on a node whose datapath is pinned never loads this library.
// The offsets of struct bpf_object_open_opts used here are in OPEN_OPTS; test/ffi_abi_test.ts
// checks them against libbpf's header.
import { openLibrary, toCString } from "./_lib.ts";
import { BpfError, Errno } from "./errors.ts";
import { errno, formatVaList } from "./libc.ts";

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
  bpf_map__set_max_entries: { parameters: ["pointer", "u32"], result: "i32" }, // map, max
  // map_fd, ring_buffer_sample_fn, ctx, opts
  ring_buffer__new: { parameters: ["i32", "function", "pointer", "pointer"], result: "pointer" },
  ring_buffer__consume: { parameters: ["pointer"], result: "i32" },
  ring_buffer__epoll_fd: { parameters: ["pointer"], result: "i32" },
  ring_buffer__free: { parameters: ["pointer"], result: "void" },
} as const satisfies Deno.ForeignLibraryInterface;

let lib: { symbols: Deno.DynamicLibrary<typeof symbols>["symbols"] } | undefined;
const printDefinition = { parameters: ["i32", "pointer", "pointer"], result: "i32" } as const;

/** struct bpf_object_open_opts (libbpf 1.1, bpf/libbpf.h): the fields set here. */
export const OPEN_OPTS = {
  size: 80,
  sz: 0,
  object_name: 8,
  kernel_log_buf: 56,
  kernel_log_size: 64,
};

function bpf() {
  if (lib) return lib;
  lib = openLibrary("libbpf", "libbpf.so.1", "EBPFCNI_LIBBPF", symbols, "libbpf1");
  // Silent by default: errors come back as return codes. libbpf's printer is process-wide,
  // so a JS callback is installed only while capturing (an isolate that ends must not leave
  // its callback behind for another one, e.g. under deno test --parallel).
  lib.symbols.libbpf_set_print(null);
  return lib;
}

/** Opens libbpf now (a LibraryError if it is missing), so a caller can find out before it
 * changes anything. */
export function requireLibbpf(): void {
  bpf();
}

/** A line libbpf printed: level 0 warn, 1 info, 2 debug. */
export interface LibbpfMessage {
  level: number;
  text: string;
}

/** Runs `fn` with libbpf's messages captured into `into`; returns the result and the warnings
 * (what explains a failure). The printer is installed for this call only: it is
 * process-wide, and a callback left behind would outlive its isolate. */
function capturing<T>(into: LibbpfMessage[], fn: () => T): { value: T; log: string } {
  const warnings: string[] = [];
  // libbpf calls back synchronously on this thread; va_list arrives as a pointer on
  // x86-64, so vsnprintf can render it.
  const cb = new Deno.UnsafeCallback(printDefinition, (level, fmt, args) => {
    const text = formatVaList(fmt, args).replace(/\n$/, "").replace(/^libbpf: /, "");
    into.push({ level, text });
    if (level === 0) warnings.push(text);
    return 0;
  });
  const previous = bpf().symbols.libbpf_set_print(cb.pointer);
  try {
    return { value: fn(), log: warnings.join("\n") };
  } finally {
    bpf().symbols.libbpf_set_print(previous);
    cb.close();
  }
}

function fail(op: string, rc: number, log = ""): never {
  throw new BpfError(op, -rc, log);
}

function check(op: string, rc: number): number {
  if (rc < 0) fail(op, rc);
  return rc;
}

/** An opened (and possibly loaded) bpf_object; dispose of it when done (`using`), pinned
 * objects stay. */
export class BpfObject {
  #ptr: Deno.PointerObject | null;
  /** Everything libbpf printed during this object's calls, for the caller's debug log. */
  readonly messages: LibbpfMessage[] = [];
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
    const o = OPEN_OPTS;
    const opts = new Uint8Array(o.size);
    const v = new DataView(opts.buffer);
    const addr = (b: Uint8Array<ArrayBuffer>) =>
      BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)));
    v.setBigUint64(o.sz, BigInt(o.size), true);
    v.setBigUint64(o.object_name, addr(nameC), true);
    v.setBigUint64(o.kernel_log_buf, addr(kernelLog), true);
    v.setBigUint64(o.kernel_log_size, BigInt(kernelLog.length), true);
    const messages: LibbpfMessage[] = [];
    const { value: ptr, log } = capturing(
      messages,
      () => bpf().symbols.bpf_object__open_mem(bytes, BigInt(bytes.length), opts),
    );
    // libbpf 1.x returns NULL and sets errno for pointer results.
    if (!ptr) throw new BpfError("open BPF object", errno() || Errno.EINVAL, log);
    const obj = new BpfObject(ptr, kernelLog, [nameC, bytes]);
    obj.messages.push(...messages);
    return obj;
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
    const { value: rc, log } = capturing(
      this.messages,
      () => bpf().symbols.bpf_object__load(this.#handle()),
    );
    if (rc < 0) {
      const end = this.#kernelLog.indexOf(0);
      const verifier = new TextDecoder().decode(
        this.#kernelLog.subarray(0, end < 0 ? undefined : end),
      );
      fail("load BPF object", rc, [log, verifier].filter(Boolean).join("\n"));
    }
  }

  /** Before load: the map's max_entries (a configurable size). */
  setMapMaxEntries(name: string, max: number): void {
    check(
      `set max entries of map "${name}"`,
      bpf().symbols.bpf_map__set_max_entries(this.#map(name), max),
    );
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

  [Symbol.dispose](): void {
    this.close();
  }
}

const sampleDefinition = { parameters: ["pointer", "pointer", "usize"], result: "i32" } as const;

/** A BPF ring buffer being read: `consume()` hands each new record to `onRecord` (a copy,
 * synchronously, on this thread); `epollFd` becomes readable when there are some. */
export class RingBuffer implements Disposable {
  #rb: Deno.PointerObject | null;
  readonly #cb: Deno.UnsafeCallback<typeof sampleDefinition>;
  readonly epollFd: number;

  constructor(mapFd: number, onRecord: (data: Uint8Array) => void) {
    this.#cb = new Deno.UnsafeCallback(sampleDefinition, (_ctx, data, size) => {
      if (data) {
        const n = Number(size);
        onRecord(new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(data, n).slice(0)));
      }
      return 0;
    });
    const rb = bpf().symbols.ring_buffer__new(mapFd, this.#cb.pointer, null, null);
    if (!rb) {
      this.#cb.close();
      throw new BpfError("open ring buffer", errno() || Errno.EINVAL);
    }
    this.#rb = rb;
    this.epollFd = bpf().symbols.ring_buffer__epoll_fd(rb);
  }

  /** Hands every record there is to the callback; how many. */
  consume(): number {
    if (!this.#rb) throw new BpfError("use closed ring buffer", Errno.EBADF);
    const n = bpf().symbols.ring_buffer__consume(this.#rb);
    if (n < 0) throw new BpfError("consume ring buffer", -n);
    return n;
  }

  close(): void {
    if (this.#rb) bpf().symbols.ring_buffer__free(this.#rb);
    this.#rb = null;
    this.#cb.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
