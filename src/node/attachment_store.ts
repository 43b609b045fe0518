// Per-attachment records: written before ADD changes anything and completed as it goes, so
// DEL and GC can undo an ADD that crashed half-way. One JSON file per attachment under
// <stateDir>/<network>/.
//
// Records are not trusted blindly: one of the wrong shape, or naming another attachment than
// its file name does, is logged and set aside (renamed *.bad), and the caller goes on from
// the lease store. Files are written through a temporary created exclusively (never through a
// symlink someone planted), and a directory that others could write into is refused.
import { CniError, ErrCode } from "../spec/cni.ts";
import { isIdentity } from "../spec/identity_rule.ts";
import { isObject } from "../spec/json.ts";
import { errorMessage, quote } from "../spec/text.ts";
import { log } from "../log.ts";
import { checkPrivateDir } from "../spec/private_dir.ts";
import { writeFileAtomic } from "../spec/atomic_file.ts";
export { checkPrivateDir };

export interface AttachmentState {
  containerId: string;
  ifname: string;
  netns: string;
  hostVeth: string;
  /** The host veth's ifindex once created (its veth_map key). */
  hostIfindex?: number;
  bridge: string;
  /** IPv4 addresses (dotted quad) registered for this attachment. */
  ips: string[];
  identity: number;
  pinDir: string;
  /** K8S_POD_NAMESPACE / K8S_POD_NAME from CNI_ARGS, when the runtime gave them. */
  podNamespace?: string;
  podName?: string;
  /** ADD masqueraded the pod ("ipMasq"): DEL and GC remove its rules whatever the config
   * says by then. */
  ipMasq?: boolean;
}

/** Why `v` is not an AttachmentState, or undefined. */
export function recordProblem(v: unknown): string | undefined {
  if (!isObject(v)) return "not a JSON object";
  for (const k of ["containerId", "ifname", "netns", "hostVeth", "bridge", "pinDir"]) {
    if (typeof v[k] !== "string") return `"${k}" is not a string`;
  }
  if (!Array.isArray(v.ips) || !v.ips.every((ip) => typeof ip === "string")) {
    return `"ips" is not a list of strings`;
  }
  if (!isIdentity(v.identity)) return `"identity" is not an identity`;
  if (
    v.hostIfindex !== undefined && !(Number.isInteger(v.hostIfindex) && Number(v.hostIfindex) > 0)
  ) {
    return `"hostIfindex" is not an interface index`;
  }
  if (v.ipMasq !== undefined && typeof v.ipMasq !== "boolean") return `"ipMasq" is not a boolean`;
  for (const k of ["podNamespace", "podName"]) {
    if (v[k] !== undefined && typeof v[k] !== "string") return `"${k}" is not a string`;
  }
  return undefined;
}

export class StateStore {
  readonly dir: string;
  #checked = false;

  constructor(readonly stateDir: string, network: string) {
    this.dir = `${stateDir}/${network}`;
  }

  #path(containerId: string, ifname: string): string {
    // Both were validated (no "/", no ".."): safe as a file name.
    return `${this.dir}/${containerId}_${ifname}.json`;
  }

  #checkDirs(): void {
    if (this.#checked) return;
    checkPrivateDir(this.stateDir, "stateDir");
    checkPrivateDir(this.dir, "state directory");
    this.#checked = true;
  }

  /** Creates the store's directory (private) if it is missing; refuses an unsafe one. */
  ensureDir(): void {
    this.#checkDirs();
    try {
      Deno.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new CniError(ErrCode.IoFailure, `Cannot create "${this.dir}"`, String(err), {
        cause: err,
      });
    }
  }

  /** When the record of an attachment was last written (ms since the epoch), if there is one. */
  modifiedAt(containerId: string, ifname: string): number | undefined {
    try {
      return Deno.statSync(this.#path(containerId, ifname)).mtime?.getTime();
    } catch {
      return undefined;
    }
  }

  write(s: AttachmentState): void {
    this.#checkDirs();
    try {
      Deno.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      writeFileAtomic(this.#path(s.containerId, s.ifname), JSON.stringify(s));
    } catch (err) {
      if (err instanceof CniError) throw err;
      const why = errorMessage(err);
      throw new CniError(ErrCode.IoFailure, `Cannot write state in "${this.dir}": ${why}`, "", {
        cause: err,
      });
    }
  }

  /** Moves a record that cannot be trusted out of the way, and says so. */
  #setAside(path: string, why: string): void {
    log.warn(`state record ${quote(path)} set aside: ${why}`);
    try {
      Deno.renameSync(path, `${path}.bad`);
    } catch (err) {
      log.warn(`cannot set ${quote(path)} aside: ${err}`);
    }
  }

  /** The record at `path` if it is valid and names the attachment its file name does. */
  #load(path: string, containerId?: string, ifname?: string): AttachmentState | undefined {
    let text: string;
    try {
      text = Deno.readTextFileSync(path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return undefined;
      throw err;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      // A torn file from a crash: its attachment is also found through the lease store.
      this.#setAside(path, "not valid JSON");
      return undefined;
    }
    const problem = recordProblem(parsed);
    if (problem !== undefined) {
      this.#setAside(path, problem);
      return undefined;
    }
    const s = parsed as AttachmentState;
    const name = path.slice(path.lastIndexOf("/") + 1);
    const named = containerId !== undefined
      ? s.containerId === containerId && s.ifname === ifname
      : name === `${s.containerId}_${s.ifname}.json`;
    if (!named) {
      this.#setAside(
        path,
        `it names container ${quote(s.containerId)} interface ${quote(s.ifname)}`,
      );
      return undefined;
    }
    return s;
  }

  read(containerId: string, ifname: string): AttachmentState | undefined {
    return this.#load(this.#path(containerId, ifname), containerId, ifname);
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
        const s = this.#load(`${this.dir}/${e.name}`);
        if (s) out.push(s);
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    return out;
  }

  /** Every valid record of every network under `stateDir` (read-only). */
  static all(stateDir: string): AttachmentState[] {
    return StateStore.allByNetwork(stateDir).map((r) => r.record);
  }

  /** Every valid record under `stateDir` with its network (its directory's name), those of
   * network `except` left unread. */
  static allByNetwork(
    stateDir: string,
    except?: string,
  ): { network: string; record: AttachmentState }[] {
    const out: { network: string; record: AttachmentState }[] = [];
    try {
      for (const net of Deno.readDirSync(stateDir)) {
        if (!net.isDirectory || net.name === except) continue;
        for (const e of Deno.readDirSync(`${stateDir}/${net.name}`)) {
          if (!e.isFile || !e.name.endsWith(".json")) continue;
          try {
            const v = JSON.parse(Deno.readTextFileSync(`${stateDir}/${net.name}/${e.name}`));
            if (recordProblem(v) === undefined) {
              out.push({ network: net.name, record: v as AttachmentState });
            }
          } catch {
            // unreadable: its own network's store sets it aside
          }
        }
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    return out;
  }
}
