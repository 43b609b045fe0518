// A manifest file's text into the objects the agent reads (multi-document YAML, JSON, `kind:
// List` and typed lists), or the first problem, with its file, line and field. No I/O (the YAML
// library reads two environment variables as it parses: LOG_TOKENS, LOG_STREAM).
//
// A file that is not a manifest at all (a token, a key, a symlink's target read by mistake)
// must not be echoed into the log: a problem never quotes the file's text. The YAML library's
// messages quote the offending line (and some name the token), V8's JSON.parse quotes the
// input; both are replaced by a fixed description and a line and column. A document that is
// not a mapping is described by its type only. Parsing gives way to `pause` between documents
// (and objects), so a large file does not starve the agent's socket.
import { Composer, LineCounter, Parser, type YAMLError } from "yaml";
import { isObject } from "../netpol/_reader.ts";
import { type ObjectError, parseItems } from "../netpol/mod.ts";
import type { KubeKind } from "./source.ts";
import { errorMessage } from "../spec/text.ts";

/** The most documents one file may hold. */
export const MAX_DOCUMENTS = 50_000;

/** An object a file holds, by identity. */
export interface Held {
  kind: KubeKind;
  namespace: string | undefined;
  name: string;
  raw: Record<string, unknown>;
  json: string;
}

export function heldKey(h: { kind: string; namespace: string | undefined; name: string }): string {
  return `${h.kind}/${h.namespace ?? ""}/${h.name}`;
}

/** Why a file's text is refused: the first problem (never the file's text). */
export class ManifestError extends Error {
  override name = "ManifestError";
}

/** What each YAML error code means, in words (the library's own messages quote the source). */
const YAML_CODES: Record<YAMLError["code"], string> = {
  ALIAS_PROPS: "an alias with an anchor or tag",
  BAD_ALIAS: "an invalid alias",
  BAD_COLLECTION_TYPE: "a tag of the wrong collection type",
  BAD_DIRECTIVE: "an invalid directive",
  BAD_DQ_ESCAPE: "an invalid escape in a double-quoted string",
  BAD_INDENT: "bad indentation",
  BAD_PROP_ORDER: "an anchor or tag in the wrong place",
  BAD_SCALAR_START: "a plain value starting with a reserved character",
  BLOCK_AS_IMPLICIT_KEY: "a block collection as an implicit key",
  BLOCK_IN_FLOW: "a block collection inside a flow collection",
  DUPLICATE_KEY: "a key repeated in one mapping",
  IMPOSSIBLE: "a parser error",
  KEY_OVER_1024_CHARS: "an implicit key longer than 1024 characters",
  MISSING_CHAR: "a missing character (a closing quote or bracket, a comma, a space)",
  MULTILINE_IMPLICIT_KEY: "an implicit key spanning lines",
  MULTIPLE_ANCHORS: "several anchors on one node",
  MULTIPLE_DOCS: "several documents where one was expected",
  MULTIPLE_TAGS: "several tags on one node",
  NON_STRING_KEY: "a key that is not a string",
  TAB_AS_INDENT: "a tab used as indentation",
  TAG_RESOLVE_FAILED: "an unknown tag",
  UNEXPECTED_TOKEN: "an unexpected token",
};

function yamlProblem(err: YAMLError, lines: LineCounter, doc: number): ManifestError {
  const what = YAML_CODES[err.code] ?? "a syntax error";
  const at = err.pos[0] >= 0 ? lines.linePos(err.pos[0]) : undefined;
  const where = at === undefined ? ` (document ${doc})` : ` at line ${at.line}, column ${at.col}`;
  return new ManifestError(`not valid YAML: ${what}${where}`);
}

/** JSON.parse's message without the input it quotes: its position, when it gives one. */
function jsonProblem(err: Error): ManifestError {
  const m = err.message.match(/\(line (\d+) column (\d+)\)/);
  if (m) return new ManifestError(`not valid JSON: syntax error at line ${m[1]}, column ${m[2]}`);
  if (/end of JSON input/.test(err.message)) {
    return new ManifestError("not valid JSON: it ends early");
  }
  return new ManifestError("not valid JSON: an unexpected character");
}

/** A parser's failure other than a syntax error (nesting too deep: a RangeError, whose message
 * quotes nothing). */
function unexpected(format: string, err: unknown): ManifestError {
  const why = err instanceof RangeError ? err.message : (err as Error).name;
  return new ManifestError(`not valid ${format}: cannot be parsed (${why})`);
}

/** A value's type, for a document that is not an object (never the value). */
function typeOf(v: unknown): string {
  if (Array.isArray(v)) return "a sequence";
  if (typeof v === "string") return "a string";
  if (typeof v === "number") return "a number";
  if (typeof v === "boolean") return "a boolean";
  return typeof v;
}

/** The documents of a file's text, giving way to `pause` between them. Throws ManifestError. */
export async function documentsOf(
  path: string,
  text: string,
  pause: () => Promise<void>,
): Promise<unknown[]> {
  if (path.endsWith(".json")) {
    try {
      return [JSON.parse(text)];
    } catch (err) {
      throw err instanceof SyntaxError ? jsonProblem(err) : unexpected("JSON", err);
    }
  }
  const lines = new LineCounter();
  const composer = new Composer();
  const out: unknown[] = [];
  const take = (doc: ReturnType<Composer["end"]> extends Iterable<infer D> ? D : never) => {
    const n = out.length + 1;
    if (n > MAX_DOCUMENTS) {
      throw new ManifestError(`more than ${MAX_DOCUMENTS} documents in one file: not read`);
    }
    if (doc.errors.length > 0) throw yamlProblem(doc.errors[0]!, lines, n);
    try {
      out.push(doc.toJS({ maxAliasCount: 100 }));
    } catch (err) {
      // Its own messages name the alias (source text); the alias bomb's says nothing of it.
      const bomb = /alias count/i.test(errorMessage(err));
      throw new ManifestError(
        `not valid YAML: ${
          bomb ? "too many alias expansions (a resource exhaustion attack?)" : "an unresolved alias"
        } (document ${n})`,
      );
    }
  };
  try {
    for (const token of new Parser(lines.addNewLine).parse(text)) {
      for (const doc of composer.next(token)) {
        take(doc);
        await pause();
      }
    }
    for (const doc of composer.end()) take(doc);
  } catch (err) {
    throw err instanceof ManifestError ? err : unexpected("YAML", err);
  }
  return out;
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

/** The objects of one file's text. Throws ManifestError (the first problem). */
export async function readManifest(
  path: string,
  text: string,
  pause: () => Promise<void> = () => Promise.resolve(),
  parse: typeof documentsOf = documentsOf,
): Promise<Held[]> {
  const docs = await parse(path, text, pause);
  const objects: Held[] = [];
  for (const [d, doc] of docs.entries()) {
    if (doc === null || doc === undefined) continue; // an empty document
    const at = docs.length > 1 ? ` (document ${d + 1})` : "";
    if (!isObject(doc)) {
      throw new ManifestError(`not a Kubernetes object: the document is ${typeOf(doc)}${at}`);
    }
    for (const raw of flatten(doc)) {
      for (const item of parseItems(raw)) {
        if (!item.ok) throw new ManifestError(`${(item.error as ObjectError).message}${at}`);
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
      await pause();
    }
  }
  return objects;
}
