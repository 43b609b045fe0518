// The manifest parser on a worker thread: a large file (one YAML document of several MiB takes
// seconds to parse) is parsed here, so the agent's event loop keeps serving its socket. One
// request at a time: { id, path, text } in, { id, docs } or { id, error } (a ManifestError's
// message, which never quotes the text) out.
import { documentsOf, ManifestError } from "./manifest_parse.ts";

interface Port {
  onmessage: ((e: MessageEvent<{ id: number; path: string; text: string }>) => void) | null;
  postMessage(message: unknown): void;
}
const port = self as unknown as Port;

port.onmessage = async (e) => {
  const { id, path, text } = e.data;
  try {
    port.postMessage({ id, docs: await documentsOf(path, text, () => Promise.resolve()) });
  } catch (err) {
    const error = err instanceof ManifestError
      ? err.message
      : `cannot be parsed (${(err as Error).name})`;
    port.postMessage({ id, error });
  }
};
