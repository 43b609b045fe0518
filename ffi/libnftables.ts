// libnftables (libnftables.so.1, Debian's libnftables1): nftables commands as JSON
// (libnftables-json(5)), with the library's output and errors captured in buffers. The
// context's netlink socket belongs to the network namespace of the thread that made it:
// callers make, use and free it synchronously on the main thread.
import { openLibrary, toCString } from "./_lib.ts";
import { NftError } from "./errors.ts";
export { NftError };

const symbols = {
  nft_ctx_new: { parameters: ["u32"], result: "pointer" }, // uint32_t flags
  nft_ctx_free: { parameters: ["pointer"], result: "void" }, // struct nft_ctx *
  nft_ctx_output_set_flags: { parameters: ["pointer", "u32"], result: "void" }, // ctx, flags
  nft_ctx_buffer_output: { parameters: ["pointer"], result: "i32" },
  nft_ctx_buffer_error: { parameters: ["pointer"], result: "i32" },
  nft_ctx_get_output_buffer: { parameters: ["pointer"], result: "pointer" }, // const char *
  nft_ctx_get_error_buffer: { parameters: ["pointer"], result: "pointer" }, // const char *
  nft_run_cmd_from_buffer: { parameters: ["pointer", "buffer"], result: "i32" }, // ctx, buf
} as const satisfies Deno.ForeignLibraryInterface;

let lib: { symbols: Deno.DynamicLibrary<typeof symbols>["symbols"] } | undefined;
function nft() {
  return lib ??= openLibrary(
    "libnftables",
    "libnftables.so.1",
    "EBPFCNI_LIBNFTABLES",
    symbols,
    "libnftables1",
  );
}

const NFT_CTX_DEFAULT = 0;
/** Output (and so input) in JSON (nftables/libnftables.h). */
const NFT_CTX_OUTPUT_JSON = 1 << 4;
/** Rule handles in listings, for deleting rules. */
const NFT_CTX_OUTPUT_HANDLE = 1 << 3;

function text(p: Deno.PointerValue): string {
  return p ? Deno.UnsafePointerView.getCString(p) : "";
}

/** A libnftables context in the calling thread's network namespace. */
export class NftContext {
  #ctx: Deno.PointerObject | null;

  constructor() {
    const s = nft().symbols;
    const ctx = s.nft_ctx_new(NFT_CTX_DEFAULT);
    if (!ctx) throw new NftError("create nftables context", "out of memory");
    s.nft_ctx_output_set_flags(ctx, NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_HANDLE);
    if (s.nft_ctx_buffer_output(ctx) !== 0 || s.nft_ctx_buffer_error(ctx) !== 0) {
      s.nft_ctx_free(ctx);
      throw new NftError("create nftables context", "cannot buffer output");
    }
    this.#ctx = ctx;
  }

  /** Runs one JSON batch (one transaction: all of it or none); returns the JSON output
   * (listings), or undefined when there is none. */
  run(batch: { nftables: unknown[] }, op: string): unknown {
    if (!this.#ctx) throw new NftError(op, "closed nftables context");
    const s = nft().symbols;
    const rc = s.nft_run_cmd_from_buffer(this.#ctx, toCString(JSON.stringify(batch)));
    // Reading a buffer resets it: both are read on every call.
    const out = text(s.nft_ctx_get_output_buffer(this.#ctx));
    const err = text(s.nft_ctx_get_error_buffer(this.#ctx));
    if (rc !== 0) throw new NftError(op, err);
    return out.trim() === "" ? undefined : JSON.parse(out);
  }

  close(): void {
    if (this.#ctx) nft().symbols.nft_ctx_free(this.#ctx);
    this.#ctx = null;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
