// Where the manifest source parses a file: on the main thread when it is small (a worker's
// round trip costs more), on a worker thread (manifest_worker.ts, started when first needed)
// when it is large. Either way a problem is a ManifestError that does not quote the text.
import { documentsOf, ManifestError } from "./manifest_parse.ts";

/** Files larger than this are parsed off the main thread. */
export const OFF_THREAD_BYTES = 256 * 1024;

type Reply = { id: number; docs: unknown[] } | { id: number; error: string };

export class ManifestParser {
  #worker: Worker | undefined;
  #next = 0;
  readonly #pending = new Map<
    number,
    { resolve(docs: unknown[]): void; reject(err: Error): void }
  >();

  /** The documents of `text`, giving way to `pause` when parsed here. */
  documents(path: string, text: string, pause: () => Promise<void>): Promise<unknown[]> {
    if (text.length <= OFF_THREAD_BYTES) return documentsOf(path, text, pause);
    const worker = this.#start();
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      worker.postMessage({ id, path, text });
    });
  }

  #start(): Worker {
    if (this.#worker !== undefined) return this.#worker;
    // Beside this module: the .ts when run from source, the bundled .js in the launcher's
    // agent/ directory (scripts/build.sh bundles it there).
    const here = import.meta.url;
    const url = new URL(
      here.endsWith(".ts") ? "./manifest_worker.ts" : "./manifest_worker.js",
      here,
    );
    const worker = new Worker(url.href, { type: "module" });
    worker.onmessage = (e: MessageEvent<Reply>) => {
      const r = e.data;
      const p = this.#pending.get(r.id);
      if (p === undefined) return;
      this.#pending.delete(r.id);
      if ("docs" in r) p.resolve(r.docs);
      else p.reject(new ManifestError(r.error));
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.#fail(new Error(`the parser's worker failed: ${e.message}`));
    };
    this.#worker = worker;
    return worker;
  }

  #fail(err: Error): void {
    this.#worker?.terminate();
    this.#worker = undefined;
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
  }

  close(): void {
    this.#fail(new Error("the manifest source stopped"));
  }
}
