// Per-attachment records: written before ADD changes anything and completed as it goes, so
// DEL and GC can undo an ADD that crashed half-way. One JSON file per attachment under
// <stateDir>/<network>/.
import { CniError, ErrCode } from "../spec/cni.ts";

export interface AttachmentState {
  containerId: string;
  ifname: string;
  netns: string;
  hostVeth: string;
  bridge: string;
  /** IPv4 addresses (dotted quad) registered in endpoint_map for this attachment. */
  ips: string[];
  identity: number;
  pinDir: string;
}

export class StateStore {
  readonly dir: string;
  constructor(stateDir: string, network: string) {
    this.dir = `${stateDir}/${network}`;
  }

  #path(containerId: string, ifname: string): string {
    // Both were validated (no "/", no ".."): safe as a file name.
    return `${this.dir}/${containerId}_${ifname}.json`;
  }

  write(s: AttachmentState): void {
    try {
      Deno.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      const path = this.#path(s.containerId, s.ifname);
      Deno.writeTextFileSync(`${path}.tmp`, JSON.stringify(s));
      Deno.renameSync(`${path}.tmp`, path);
    } catch (err) {
      throw new CniError(ErrCode.IoFailure, `Cannot write state in "${this.dir}"`, String(err), {
        cause: err,
      });
    }
  }

  read(containerId: string, ifname: string): AttachmentState | undefined {
    try {
      return JSON.parse(Deno.readTextFileSync(this.#path(containerId, ifname)));
    } catch (err) {
      if (err instanceof Deno.errors.NotFound || err instanceof SyntaxError) return undefined;
      throw err;
    }
  }

  remove(containerId: string, ifname: string): void {
    try {
      Deno.removeSync(this.#path(containerId, ifname));
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }

  list(): AttachmentState[] {
    const out: AttachmentState[] = [];
    try {
      for (const e of Deno.readDirSync(this.dir)) {
        if (!e.isFile || !e.name.endsWith(".json")) continue;
        try {
          out.push(JSON.parse(Deno.readTextFileSync(`${this.dir}/${e.name}`)));
        } catch {
          // A torn file from a crash: its attachment is also found through the lease store.
        }
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    return out;
  }
}
