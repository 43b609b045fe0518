// Writing a file whole or not at all, for the files the plugin and the agent keep in their
// private directories (spec/private_dir.ts): attachment records, the agent's enforcement file.
/** Writes `data` to `path` atomically: a temporary created exclusively (O_EXCL does not
 * follow a planted symlink), then renamed over the target. A failed write leaves nothing. */
export function writeFileAtomic(path: string, data: string): void {
  const tmp = `${path}.tmp`;
  for (let attempt = 0;; attempt++) {
    try {
      // A leftover of a crash (or a planted link: removing it removes the link).
      Deno.removeSync(tmp);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    try {
      Deno.writeTextFileSync(tmp, data, { createNew: true, mode: 0o600 });
      break;
    } catch (err) {
      try {
        Deno.removeSync(tmp);
      } catch {
        // never made, or made by someone else: not ours to keep
      }
      if (err instanceof Deno.errors.AlreadyExists && attempt < 3) continue;
      throw err;
    }
  }
  Deno.renameSync(tmp, path);
}
