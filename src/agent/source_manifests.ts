// The policy agent's manifest-directory source: every *.yaml, *.yml and *.json file of a
// directory (multi-document YAML, `kind: List` and typed lists), kinds Namespace, Pod, Node
// and NetworkPolicy; other kinds are skipped. Changes are picked up while running (inotify:
// dir_watch.ts, and a rescan on request). A file that does not parse, holds an invalid object,
// or is refused (not a regular file, too large, a symlink leading outside the directory:
// manifest_file.ts) is reported with its path and the problem, and changes nothing: the
// objects of its last good version stay. A file's problems are cleared when it is fixed or
// removed. A scan gives way to the event loop every few milliseconds and parses large files on
// a worker thread (the socket keeps answering), and its changes reach the model as one (a
// batch).
import { type Held, heldKey, ManifestError, readManifest } from "./manifest_parse.ts";
import { FileGone, FileRefused, readManifestFile } from "./manifest_file.ts";
import type { SourceSink } from "./source.ts";
import { watchDir } from "./dir_watch.ts";
import { ManifestParser } from "./manifest_parser.ts";
import { errorMessage } from "../spec/text.ts";

const EXTENSIONS = [".yaml", ".yml", ".json"];
/** How long a scan runs before it gives way to the event loop. */
const SLICE_MS = 20;
/** Conflicts reported one by one per file; more are counted. */
const MAX_CONFLICTS_LISTED = 5;

export interface ManifestSource {
  /** Reads the directory again now (what `agent status --wait-synced` asks for first). */
  rescan(): Promise<void>;
  stop(): Promise<void>;
}

/** Gives way to the event loop once `SLICE_MS` have passed since it last did. */
function slicer(): () => Promise<void> {
  let last = performance.now();
  return async () => {
    if (performance.now() - last < SLICE_MS) return;
    await new Promise((r) => setTimeout(r, 0));
    last = performance.now();
  };
}

/** Watches `dir` and keeps the sink in step with its files. */
export async function startManifestSource(dir: string, sink: SourceSink): Promise<ManifestSource> {
  let stat: Deno.FileInfo;
  try {
    stat = await Deno.stat(dir);
  } catch (err) {
    throw new Error(`Cannot read manifest directory "${dir}": ${errorMessage(err)}`);
  }
  if (!stat.isDirectory) throw new Error(`Manifest directory "${dir}" is not a directory`);

  /** What each file contributed (its last good version) and its text. */
  const files = new Map<string, { text: string; objects: Held[] }>();
  /** A refused file's text and why (not parsed again while it stays the same). */
  const refused = new Map<string, { text: string; message: string }>();
  /** The object each key currently is, and which file holds it. */
  const current = new Map<string, { file: string; held: Held }>();
  /** The problems each file has, as last handed to the sink. */
  const reported = new Map<string, string>();
  const report = (path: string, messages: string[]) => {
    const text = messages.join("\n");
    if ((reported.get(path) ?? "") === text) return;
    if (messages.length === 0) reported.delete(path);
    else reported.set(path, text);
    if (sink.problems) sink.problems(path, messages);
    else for (const m of messages) sink.problem(m);
  };

  const parser = new ManifestParser();
  const parse = parser.documents.bind(parser);
  const scan = async () => {
    const pause = slicer();
    // Symlinks are followed only to files inside the directory as it resolves now (a
    // ConfigMap volume swaps `..data` to a new directory inside it).
    const root = await Deno.realPath(dir);
    const problems = new Map<string, string[]>();
    const fail = (path: string, message: string) => {
      const list = problems.get(path) ?? [];
      list.push(`${path}: ${message}`);
      problems.set(path, list);
    };
    const seen = new Set<string>();
    const names: string[] = [];
    for await (const e of Deno.readDir(dir)) {
      if (!EXTENSIONS.some((x) => e.name.endsWith(x))) continue;
      if (e.name.startsWith(".")) continue; // editors' temporaries, a ConfigMap's ..data
      names.push(e.name);
    }
    names.sort();
    for (const name of names) {
      await pause();
      const path = `${dir.replace(/\/+$/, "")}/${name}`;
      let text: string;
      try {
        text = await readManifestFile(root, path);
      } catch (err) {
        if (err instanceof FileGone) continue; // removed meanwhile, or a dangling symlink
        seen.add(path); // its last good version stays
        refused.delete(path);
        fail(
          path,
          err instanceof FileRefused
            ? `${err.message}; its previous objects are kept`
            : `cannot read: ${errorMessage(err)}; its previous objects are kept`,
        );
        continue;
      }
      seen.add(path);
      if (files.get(path)?.text === text) {
        refused.delete(path);
        continue;
      }
      const was = refused.get(path);
      if (was?.text === text) {
        fail(path, was.message);
        continue;
      }
      try {
        files.set(path, { text, objects: await readManifest(path, text, pause, parse) });
        refused.delete(path);
      } catch (err) {
        // Anything else (the parser's worker failing) is named, not quoted: it may hold text.
        const why = err instanceof ManifestError
          ? err.message
          : `cannot be parsed (${(err as Error).name})`;
        const message = `${why}; its previous objects are kept`;
        refused.set(path, { text, message });
        fail(path, message);
      }
    }
    for (const path of [...files.keys()]) if (!seen.has(path)) files.delete(path);
    for (const path of [...refused.keys()]) if (!seen.has(path)) refused.delete(path);
    // What every key is now: the first file (in name order) that defines it.
    const next = new Map<string, { file: string; held: Held }>();
    for (const path of [...files.keys()].sort()) {
      let conflicts = 0;
      for (const h of files.get(path)!.objects) {
        const key = heldKey(h);
        const other = next.get(key);
        if (other) {
          if (other.file !== path && conflicts++ < MAX_CONFLICTS_LISTED) {
            fail(path, `${key} is also in ${other.file}, which wins`);
          }
          continue;
        }
        next.set(key, { file: path, held: h });
      }
      if (conflicts > MAX_CONFLICTS_LISTED) {
        fail(path, `${conflicts - MAX_CONFLICTS_LISTED} more objects are also in earlier files`);
      }
    }
    // Every file's problems now: new ones logged, those of fixed or removed files cleared.
    for (const path of new Set([...reported.keys(), ...problems.keys()])) {
      report(path, problems.get(path) ?? []);
    }
    sink.begin?.();
    try {
      for (const [key, was] of current) {
        if (!next.has(key)) sink.remove(was.held.kind, was.held.namespace, was.held.name);
      }
      for (const [key, now] of next) {
        if (current.get(key)?.held.json !== now.held.json) sink.upsert(now.held.raw);
        await pause();
      }
    } finally {
      sink.commit?.();
    }
    current.clear();
    for (const [k, v] of next) current.set(k, v);
    sink.synced();
  };

  // A scan that fails as a whole (the directory gone) is reported; the next one tries again.
  const guarded = async () => {
    try {
      await scan();
    } catch (err) {
      sink.health?.(false);
      report(dir, [`${dir}: cannot read the manifest directory: ${errorMessage(err)}`]);
      return;
    }
    sink.health?.(true);
    report(dir, []);
  };
  let scanning: Promise<void> = Promise.resolve();
  const rescan = () => (scanning = scanning.then(guarded));
  let timer: ReturnType<typeof setTimeout> | undefined;
  // Watching before the first scan: nothing written meanwhile is missed.
  const watcher = watchDir(dir, () => {
    // Editors and `cp` write in bursts: read once it settles.
    clearTimeout(timer);
    timer = setTimeout(() => void rescan(), 20);
  });
  // Not awaited: the agent serves its socket while a large directory loads (it reports
  // "not synced yet" until this first scan is done).
  void rescan();
  return {
    rescan,
    async stop() {
      await watcher.close();
      clearTimeout(timer);
      await scanning.catch(() => {});
      parser.close();
    },
  };
}
