// The guest's file tree, built from host paths: every file keeps its absolute path, and each
// symlink on the way (Debian's /lib -> usr/lib, /usr/bin/clang -> ../lib/llvm-14/bin/clang,
// the checkout's .deno -> elsewhere) is recreated as a symlink, so binaries, their loader
// paths and paths baked into launchers resolve in the guest as they do on the host.
import { dirname, join, resolve } from "node:path";
import type { CpioEntry } from "./cpio.ts";

export class GuestTree {
  readonly #entries = new Map<string, CpioEntry>();

  /** Entries with every directory before what it holds. */
  entries(): CpioEntry[] {
    return [...this.#entries.values()].sort((a, b) => {
      return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
    });
  }

  has(path: string): boolean {
    return this.#entries.has(path);
  }

  /** Guest paths of the regular files, for reports. */
  files(): string[] {
    return this.entries().filter((e) => e.kind === "file" || e.kind === "data").map((e) => e.path);
  }

  /** The host path `path` (file, directory or symlink) with the symlinks on the way;
   * a directory is added empty (see addTree). */
  addPath(path: string, depth = 0): void {
    if (depth > 40) throw new Error(`Too many symlinks resolving "${path}"`);
    const parts = resolve(path).split("/").filter(Boolean);
    let cur = "";
    for (let i = 0; i < parts.length; i++) {
      cur += `/${parts[i]}`;
      const st = Deno.lstatSync(cur);
      if (st.isSymlink) {
        const target = Deno.readLinkSync(cur);
        this.#entries.set(cur, { kind: "symlink", path: cur, target });
        // Everything before `cur` is a real directory, so resolving lexically is exact.
        const rest = parts.slice(i + 1).join("/");
        this.addPath(join(resolve(dirname(cur), target), rest), depth + 1);
        return;
      }
      if (this.#entries.has(cur)) continue;
      if (st.isDirectory) {
        this.#entries.set(cur, { kind: "dir", path: cur, mode: (st.mode ?? 0o755) & 0o7777 });
      } else if (i === parts.length - 1) {
        this.#entries.set(cur, {
          kind: "file",
          path: cur,
          source: cur,
          mode: (st.mode ?? 0o644) & 0o7777,
        });
      } else {
        throw new Error(`"${cur}" is not a directory (resolving "${path}")`);
      }
    }
  }

  /** A host directory and everything in it, except entries `skip` says no to. */
  addTree(dir: string, skip: (path: string) => boolean = () => false): void {
    this.addPath(dir);
    const real = Deno.realPathSync(dir);
    for (const e of Deno.readDirSync(real)) {
      const p = `${real}/${e.name}`;
      if (skip(p)) continue;
      if (e.isDirectory) this.addTree(p, skip);
      else this.addPath(p);
    }
  }

  /** A host file at another guest path (its parents must be real directories here). */
  addFileAt(guestPath: string, source: string, mode?: number): void {
    this.mkdirs(dirname(guestPath));
    const st = Deno.statSync(source);
    this.#entries.set(guestPath, {
      kind: "file",
      path: guestPath,
      source,
      mode: mode ?? (st.mode ?? 0o644) & 0o7777,
    });
  }

  addData(guestPath: string, data: string | Uint8Array, mode = 0o644): void {
    this.mkdirs(dirname(guestPath));
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    this.#entries.set(guestPath, { kind: "data", path: guestPath, data: bytes, mode });
  }

  addSymlink(guestPath: string, target: string): void {
    this.mkdirs(dirname(guestPath));
    this.#entries.set(guestPath, { kind: "symlink", path: guestPath, target });
  }

  mkdirs(dir: string, mode = 0o755): void {
    let cur = "";
    for (const part of resolve(dir).split("/").filter(Boolean)) {
      cur += `/${part}`;
      const e = this.#entries.get(cur);
      if (e && e.kind !== "dir") {
        throw new Error(`Guest path "${cur}" is a ${e.kind}, not a directory`);
      }
      if (!e) this.#entries.set(cur, { kind: "dir", path: cur, mode });
    }
  }
}
