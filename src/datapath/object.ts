// The compiled datapath object the binary embeds: src/datapath/bpf_object.gen.ts, which the
// build generates and git ignores (its bytes depend on clang and the kernel's BTF). Imported
// dynamically so that a tree never built still type-checks and runs its unit tests: the
// contract (programs, maps, layouts) is the committed src/spec/bpf_abi.gen.ts, and only
// what needs the object itself asks for it here.

/** What the generated module offers (checked against it whenever it exists). */
export interface EmbeddedObject {
  /** Kernel tags process_tc / process_tc_egress can have (SHA-256 and SHA-1 based). */
  readonly PROGRAM_TAGS: readonly string[];
  readonly PROGRAM_TAGS_EGRESS: readonly string[];
  readonly PROGRAM_TAGS_TO_NODE: readonly string[];
  readonly OBJECT_SHA256: string;
  objectBytes(): Uint8Array<ArrayBuffer>;
}

/** The build did not run: there is no object to load or to compare pins with. */
export class ObjectNotBuiltError extends Error {
  override name = "ObjectNotBuiltError";
}

let missing: unknown;
const generated: EmbeddedObject | undefined = await import("./bpf_object.gen.ts").catch(
  (err: unknown) => {
    const code = (err as { code?: unknown }).code;
    if (code !== "ERR_MODULE_NOT_FOUND" || !String(err).includes("bpf_object.gen.ts")) throw err;
    missing = err;
    return undefined;
  },
);

/** The embedded object; throws ObjectNotBuiltError in a tree where the build never ran. */
export function embeddedObject(): EmbeddedObject {
  if (generated) return generated;
  throw new ObjectNotBuiltError(
    'The datapath object is not built: run "bash scripts/build.sh" (it generates src/datapath/bpf_object.gen.ts)',
    { cause: missing },
  );
}
