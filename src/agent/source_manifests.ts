// The policy agent's manifest-directory source: every *.yaml, *.yml and *.json file of a
// directory (multi-document YAML, `kind: List` and typed lists), kinds Namespace, Pod, Node and
// NetworkPolicy; other kinds are skipped with a note. Changes are picked up while running
// (inotify through Deno.watchFs, and a rescan on request). A file that does not parse, or holds
// an invalid object, is reported with its path and the problem, and changes nothing: the
// objects of its last good version stay.
import { parseAllDocuments } from "yaml";
import { type ObjectError, parseItems } from "../netpol/mod.ts";
import type { KubeKind, SourceSink } from "./source.ts";

const EXTENSIONS = [".yaml", ".yml", ".json"];

/** An object a file holds, by identity. */
interface Held {
  kind: KubeKind;
  namespace: string | undefined;
  name: string;
  raw: Record<string, unknown>;
  json: string;
}

function heldKey(h: { kind: string; namespace: string | undefined; name: string }): string {
  return `${h.kind}/${h.namespace ?? ""}/${h.name}`;
}

/** The documents of a file's text. */
function documentsOf(path: string, text: string): unknown[] {
  if (path.endsWith(".json")) return [JSON.parse(text)];
  const docs = parseAllDocuments(text);
  const list = Array.isArray(docs) ? docs : [docs];
  const out: unknown[] = [];
  for (const d of list) {
    if (d.errors.length > 0) throw new Error(d.errors[0]!.message.split("\n")[0]);
    out.push(d.toJSON());
  }
  return out;
}

export interface FileProblem {
  path: string;
  message: string;
}

/** A document's objects: itself, or the items of a List (typed lists' items may omit their
 * kind, as API list responses do). */
function flatten(doc: unknown, kindHint?: string): unknown[] {
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) return [doc];
  const o = doc as Record<string, unknown>;
  if (typeof o.kind === "string" && o.kind.endsWith("List") && Array.isArray(o.items)) {
    const itemKind = o.kind === "List" ? undefined : o.kind.slice(0, -4);
    return o.items.flatMap((item) => flatten(item, itemKind));
  }
  if (o.kind === undefined && kindHint !== undefined) return [{ ...o, kind: kindHint }];
  return [o];
}

/** The objects of one file, or why the file is refused (the first problem). */
export function readManifest(path: string, text: string): { objects: Held[] } | FileProblem {
  let docs: unknown[];
  try {
    docs = documentsOf(path, text);
  } catch (err) {
    const what = path.endsWith(".json") ? "not valid JSON" : "not valid YAML";
    return { path, message: `${what}: ${(err as Error).message}` };
  }
  const objects: Held[] = [];
  for (const [d, doc] of docs.entries()) {
    if (doc === null || doc === undefined) continue; // an empty document
    for (const raw of flatten(doc)) {
      for (const item of parseItems(raw)) {
        if (!item.ok) {
          const at = docs.length > 1 ? ` (document ${d + 1})` : "";
          return { path, message: `${(item.error as ObjectError).message}${at}` };
        }
        const o = item.object;
        if (o.kind === "Other") continue;
        const namespace = o.kind === "Namespace" || o.kind === "Node"
          ? undefined
          : o.value.namespace;
        const r = raw as Record<string, unknown>;
        objects.push({
          kind: o.kind,
          namespace,
          name: o.value.name,
          raw: r,
          json: JSON.stringify(r),
        });
      }
    }
  }
  return { objects };
}

export interface ManifestSource {
  /** Reads the directory again now (what `agent status --wait-synced` asks for first). */
  rescan(): Promise<void>;
  stop(): Promise<void>;
}

/** Watches `dir` and keeps the sink in step with its files. */
export async function startManifestSource(dir: string, sink: SourceSink): Promise<ManifestSource> {
  let stat: Deno.FileInfo;
  try {
    stat = await Deno.stat(dir);
  } catch (err) {
    throw new Error(`Cannot read manifest directory "${dir}": ${(err as Error).message}`);
  }
  if (!stat.isDirectory) throw new Error(`Manifest directory "${dir}" is not a directory`);

  /** What each file contributed (its last good version) and its text. */
  const files = new Map<string, { text: string; objects: Held[] }>();
  /** The object each key currently is, and which file holds it. */
  const current = new Map<string, { file: string; held: Held }>();
  const reported = new Map<string, string>();

  const scan = async () => {
    const seen = new Set<string>();
    const names: string[] = [];
    for await (const e of Deno.readDir(dir)) {
      if (!(e.isFile || e.isSymlink) || !EXTENSIONS.some((x) => e.name.endsWith(x))) continue;
      if (e.name.startsWith(".")) continue; // editors' temporaries
      names.push(e.name);
    }
    names.sort();
    for (const name of names) {
      const path = `${dir.replace(/\/+$/, "")}/${name}`;
      seen.add(path);
      let text: string;
      try {
        text = await Deno.readTextFile(path);
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) continue; // gone meanwhile
        sink.problem(`${path}: cannot read: ${(err as Error).message}`);
        continue;
      }
      if (files.get(path)?.text === text) continue;
      const r = readManifest(path, text);
      if ("message" in r) {
        if (reported.get(path) !== r.message) {
          sink.problem(`${path}: ${r.message}; its previous objects are kept`);
          reported.set(path, r.message);
        }
        continue;
      }
      reported.delete(path);
      files.set(path, { text, objects: r.objects });
    }
    for (const path of [...files.keys()]) {
      if (!seen.has(path)) files.delete(path);
    }
    // What every key is now: the first file (in name order) that defines it.
    const next = new Map<string, { file: string; held: Held }>();
    for (const path of [...files.keys()].sort()) {
      for (const h of files.get(path)!.objects) {
        const key = heldKey(h);
        const other = next.get(key);
        if (other) {
          if (other.file !== path) {
            sink.problem(`${path}: ${key} is also in ${other.file}, which wins`);
          }
          continue;
        }
        next.set(key, { file: path, held: h });
      }
    }
    for (const [key, was] of current) {
      if (!next.has(key)) sink.remove(was.held.kind, was.held.namespace, was.held.name);
    }
    for (const [key, now] of next) {
      if (current.get(key)?.held.json !== now.held.json) sink.upsert(now.held.raw);
    }
    current.clear();
    for (const [k, v] of next) current.set(k, v);
    sink.synced();
  };

  // A scan fails only when the directory cannot be read: the source is lost until one passes.
  const checked = () =>
    scan().then(() => sink.health?.(true), (err) => {
      sink.health?.(false);
      throw err;
    });
  let scanning: Promise<void> = Promise.resolve();
  const rescan = () => (scanning = scanning.then(checked, checked));
  await rescan();

  const watcher = Deno.watchFs(dir, { recursive: false });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const watching = (async () => {
    try {
      for await (const _ of watcher) {
        // Editors and `cp` write in bursts: read once it settles.
        clearTimeout(timer);
        timer = setTimeout(() => void rescan(), 20);
      }
    } catch {
      // closed
    }
  })();
  return {
    rescan,
    async stop() {
      clearTimeout(timer);
      watcher.close();
      await watching;
      await scanning.catch(() => {});
    },
  };
}
