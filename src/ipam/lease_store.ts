// The on-disk lease store, shared with the reference host-local plugin
// (plugins/ipam/host-local/backend/disk): one directory per network,
// <dataDir>/<network>/, holding
//   <ip>                   one file per lease: "<containerID>\r\n<ifname>", no trailing newline
//                          (older host-local wrote just "<containerID>": a "legacy" lease)
//   last_reserved_ip.<N>   the IP last reserved from range set N, no trailing newline
//   lock                   empty; every operation holds flock(LOCK_EX) on it
// Both plugins can therefore manage the same directory concurrently.
//
// host-local creates a lease with O_EXCL and then writes it, so a crash in between
// leaves an empty file that blocks the IP forever. We write a temporary file
// it and link(2) it to the IP's name instead: link is as exclusive as O_EXCL but the
// name only ever appears with its full contents. A temporary file left by a crash is
// removed by the next operation, which is safe because temporaries only exist while
// their writer holds the lock.

import { CniError, ErrCode } from "../spec/cni.ts";
import { formatIpv4, tryParseIpv4 } from "../spec/ipv4.ts";
import { validateNetworkName } from "../spec/name_rules.ts";
import { checkPrivateDir } from "../spec/private_dir.ts";
import { errorMessage } from "../spec/text.ts";

/** A lease file; ifname is undefined for a legacy file that holds only the container ID. */
export interface Lease {
  ip: string;
  containerId: string;
  ifname?: string;
}

export const LOCK_FILE = "lock";
export const LAST_RESERVED_PREFIX = "last_reserved_ip.";
const TMP_PREFIX = ".ebpfcni-tmp.";
const LINE_BREAK = "\r\n";

function ioError(msg: string, cause: unknown): CniError {
  const why = errorMessage(cause);
  return new CniError(ErrCode.IoFailure, `${msg}: ${why}`, "", { cause });
}

/** host-local's match key: it trims the container ID, and compares against trimmed contents. */
function leaseKey(containerId: string, ifname: string): string {
  return containerId.trim() + LINE_BREAK + ifname;
}

/** Whether a lease belongs to the attachment; a legacy lease belongs to every interface of its container. */
export function ownedBy(lease: Lease, containerId: string, ifname: string): boolean {
  return lease.ifname === undefined
    ? lease.containerId === containerId.trim()
    : leaseKey(lease.containerId, lease.ifname) === leaseKey(containerId, ifname);
}

function isBookkeeping(name: string): boolean {
  return name === LOCK_FILE || name.startsWith(LAST_RESERVED_PREFIX) ||
    name.startsWith(TMP_PREFIX);
}

function isNotFound(err: unknown): boolean {
  return err instanceof Deno.errors.NotFound;
}

/** The store's lock file, never through a symlink: made with O_EXCL (which does not follow
 * one), and an existing one opened only when it is a regular file. Read-only suffices for
 * flock and works on a lock file we cannot write. */
function openLockFile(path: string): Deno.FsFile {
  for (;;) {
    let st: Deno.FileInfo | undefined;
    try {
      st = Deno.lstatSync(path);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    if (st !== undefined) {
      if (!st.isFile) throw new Error(st.isSymlink ? "it is a symbolic link" : "not a file");
      return Deno.openSync(path, { read: true });
    }
    try {
      return Deno.openSync(path, { read: true, write: true, createNew: true, mode: 0o600 });
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
      // made meanwhile by another process (or planted): look again
    }
  }
}

/** Writes one block to a new file at `path`, syncs it and removes it (also when that fails). */
export function probeFile(path: string): void {
  const file = Deno.openSync(path, { write: true, createNew: true, mode: 0o600 });
  try {
    const block = new Uint8Array(4096);
    for (let at = 0; at < block.length;) at += file.writeSync(block.subarray(at));
    file.syncSync();
  } finally {
    file.close();
    Deno.removeSync(path);
  }
}

export class LeaseStore {
  #held = 0;

  private constructor(readonly dir: string) {}

  /** Opens the network's directory, creating it (mode 0755, like host-local). */
  static open(dataDir: string, network: string): LeaseStore {
    validateNetworkName(network);
    const dir = `${dataDir.replace(/\/+$/, "")}/${network}`;
    checkPrivateDir(dataDir, "dataDir"); // before anything is made in it
    try {
      Deno.mkdirSync(dir, { recursive: true, mode: 0o755 });
    } catch (err) {
      throw ioError(`Cannot create lease directory "${dir}"`, err);
    }
    return LeaseStore.#checked(dataDir, dir);
  }

  /** Opens the directory only if it exists: DEL and GC must not create state. */
  static openExisting(dataDir: string, network: string): LeaseStore | undefined {
    validateNetworkName(network);
    const dir = `${dataDir.replace(/\/+$/, "")}/${network}`;
    try {
      if (!Deno.statSync(dir).isDirectory) {
        throw new CniError(ErrCode.IoFailure, `Lease directory "${dir}" is not a directory`);
      }
    } catch (err) {
      if (isNotFound(err)) return undefined;
      if (err instanceof CniError) throw err;
      throw ioError(`Cannot open lease directory "${dir}"`, err);
    }
    return LeaseStore.#checked(dataDir, dir);
  }

  /** Others who could write in the directories could plant leases, or symlinks we would
   * write through: refuses them (code 7), with nothing made yet. */
  static checkDirs(dataDir: string, network: string): void {
    validateNetworkName(network);
    LeaseStore.#checked(dataDir, `${dataDir.replace(/\/+$/, "")}/${network}`);
  }

  static #checked(dataDir: string, dir: string): LeaseStore {
    checkPrivateDir(dataDir, "dataDir");
    checkPrivateDir(dir, "lease directory");
    return new LeaseStore(dir);
  }

  /** Runs fn holding the directory's exclusive flock; every other method requires it. */
  async locked<T>(fn: () => T | Promise<T>): Promise<T> {
    const path = `${this.dir}/${LOCK_FILE}`;
    let file: Deno.FsFile;
    try {
      file = openLockFile(path);
    } catch (err) {
      throw ioError(`Cannot open lock file "${path}"`, err);
    }
    try {
      try {
        await file.lock(true);
      } catch (err) {
        throw ioError(`Cannot lock "${path}"`, err);
      }
      this.#held++;
      try {
        this.#removeStaleTemporaries();
        return await fn();
      } finally {
        this.#held--;
      }
    } finally {
      file.close(); // closing drops the flock
    }
  }

  #requireLock(): void {
    if (this.#held === 0) {
      throw new CniError(ErrCode.Internal, `Lease store "${this.dir}" used without its lock`);
    }
  }

  #names(): string[] {
    const names: string[] = [];
    try {
      for (const e of Deno.readDirSync(this.dir)) if (e.isFile) names.push(e.name);
    } catch (err) {
      throw ioError(`Cannot list lease directory "${this.dir}"`, err);
    }
    return names.sort();
  }

  #removeStaleTemporaries(): void {
    for (const name of this.#names()) {
      if (name.startsWith(TMP_PREFIX)) this.#removeIfPresent(name);
    }
  }

  #removeIfPresent(name: string): boolean {
    try {
      Deno.removeSync(`${this.dir}/${name}`);
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw ioError(`Cannot remove "${this.dir}/${name}"`, err);
    }
  }

  /** Writes a file atomically: temporary file, then link (exclusive) or rename (replace).
   * No fsync, like host-local: the name only ever appears complete, which is what a killed
   * plugin needs; leases do not outlive a power loss in a useful way anyway (pods are gone). */
  #writeAtomic(name: string, data: string, exclusive: boolean): boolean {
    const tmp = `${this.dir}/${TMP_PREFIX}${name}.${crypto.randomUUID()}`;
    const target = `${this.dir}/${name}`;
    try {
      Deno.writeTextFileSync(tmp, data, { createNew: true, mode: 0o600 });
      if (!exclusive) {
        Deno.renameSync(tmp, target);
        return true;
      }
      try {
        Deno.linkSync(tmp, target);
        return true;
      } catch (err) {
        if (err instanceof Deno.errors.AlreadyExists) return false;
        throw err;
      }
    } catch (err) {
      throw ioError(`Cannot write "${target}"`, err);
    } finally {
      try {
        Deno.removeSync(tmp);
      } catch {
        // already gone or never made
      }
    }
  }

  /** Creates the lease file for ip; false if the IP is already leased. Records last_reserved_ip.N. */
  reserve(
    ip: string,
    containerId: string,
    ifname: string,
    rangeSetIndex: number,
  ): boolean {
    this.#requireLock();
    const n = tryParseIpv4(ip);
    if (n === undefined || formatIpv4(n) !== ip) {
      throw new CniError(ErrCode.Internal, `Cannot reserve "${ip}": not a canonical IPv4 address`);
    }
    if (!(this.#writeAtomic(ip, leaseKey(containerId, ifname), true))) return false;
    try {
      this.#writeAtomic(`${LAST_RESERVED_PREFIX}${rangeSetIndex}`, ip, false);
    } catch (err) {
      try {
        this.#removeIfPresent(ip);
      } catch {
        // the original error matters more
      }
      throw err;
    }
    return true;
  }

  #read(name: string): string | undefined {
    try {
      return Deno.readTextFileSync(`${this.dir}/${name}`);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw ioError(`Cannot read "${this.dir}/${name}"`, err);
    }
  }

  /** Every file that could be a lease, with its trimmed contents (host-local compares those). */
  #contents(): { name: string; key: string }[] {
    const out: { name: string; key: string }[] = [];
    for (const name of this.#names()) {
      if (isBookkeeping(name)) continue;
      const text = this.#read(name);
      if (text !== undefined) out.push({ name, key: text.trim() });
    }
    return out;
  }

  /** All IPv4 leases; a file with unreadable contents still counts as taken. */
  leases(): Lease[] {
    this.#requireLock();
    const out: Lease[] = [];
    for (const { name, key } of this.#contents()) {
      if (tryParseIpv4(name) === undefined) continue;
      const sep = key.indexOf(LINE_BREAK);
      out.push(
        sep < 0 ? { ip: name, containerId: key } : {
          ip: name,
          containerId: key.slice(0, sep),
          ifname: key.slice(sep + LINE_BREAK.length),
        },
      );
    }
    return out;
  }

  /** The attachment's leases, legacy (container-ID-only) files included, like host-local's GetByID. */
  findByAttachment(containerId: string, ifname: string): Lease[] {
    return this.leases().filter((l) => ownedBy(l, containerId, ifname));
  }

  /**
   * Removes the attachment's lease files and returns their names. Like host-local,
   * legacy files are only considered when no exact match exists.
   */
  releaseByAttachment(containerId: string, ifname: string): string[] {
    this.#requireLock();
    const entries = this.#contents();
    const remove = (match: string): string[] => {
      const removed: string[] = [];
      for (const e of entries) {
        if (e.key === match && this.#removeIfPresent(e.name)) removed.push(e.name);
      }
      return removed;
    };
    const exact = remove(leaseKey(containerId, ifname));
    return exact.length > 0 ? exact : remove(containerId.trim());
  }

  /** Proves a lease can be written: a temporary file with a block of data, synced (a full
   * file system refuses that, where an empty file needs no block), then removed. */
  probeWritable(): void {
    this.#requireLock();
    const path = `${this.dir}/${TMP_PREFIX}probe.${crypto.randomUUID()}`;
    try {
      probeFile(path);
    } catch (err) {
      throw ioError(`Cannot write to lease directory "${this.dir}"`, err);
    }
  }

  /** Removes the lease file of ip; false if there was none. */
  releaseByIp(ip: string): boolean {
    this.#requireLock();
    if (tryParseIpv4(ip) === undefined) return false;
    return this.#removeIfPresent(ip);
  }

  /** The last IP reserved from range set N, if recorded (contents are not trimmed, as in host-local). */
  lastReservedIp(rangeSetIndex: number): string | undefined {
    this.#requireLock();
    return this.#read(`${LAST_RESERVED_PREFIX}${rangeSetIndex}`);
  }
}
