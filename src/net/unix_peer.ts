// Who is on the other end of a connection a Deno unix listener accepted. Deno gives no fd for
// a connection, so the fd is found the way `ss` would: among this process's sockets, the one
// bound to the listener's path that no earlier connection was matched to (the listener's
// accept loop takes one connection at a time, so right after an accept there is exactly one),
// and SO_PEERCRED read from it.
import { peerCred, unixSockName } from "../../ffi/libc.ts";

export interface PeerCred {
  /** 0 when the peer is of a PID namespace this process cannot see. */
  pid: number;
  uid: number;
  gid: number;
}

function socketFds(): Map<string, number> {
  const out = new Map<string, number>();
  for (const e of Deno.readDirSync("/proc/self/fd")) {
    let link: string;
    try {
      link = Deno.readLinkSync(`/proc/self/fd/${e.name}`);
    } catch {
      continue; // closed meanwhile
    }
    if (link.startsWith("socket:[")) out.set(link, Number(e.name));
  }
  return out;
}

export class PeerFinder {
  /** Sockets bound to the path already accounted for (the listener, earlier connections): by
   * inode, as long as they are open. */
  #known = new Set<string>();

  /** Call right after listening on `path`. */
  constructor(readonly path: string) {
    for (const [link, fd] of socketFds()) if (this.#boundHere(fd)) this.#known.add(link);
  }

  #boundHere(fd: number): boolean {
    try {
      return unixSockName(fd) === this.path;
    } catch {
      return false;
    }
  }

  /** The credentials of the connection just accepted; undefined when it cannot be told
   * apart (then it is refused). */
  accepted(): PeerCred | undefined {
    const fds = socketFds();
    for (const link of this.#known) if (!fds.has(link)) this.#known.delete(link);
    const fresh: [string, number][] = [];
    for (const [link, fd] of fds) {
      if (!this.#known.has(link) && this.#boundHere(fd)) fresh.push([link, fd]);
    }
    for (const [link] of fresh) this.#known.add(link);
    if (fresh.length !== 1) return undefined;
    try {
      return peerCred(fresh[0]![1]);
    } catch {
      return undefined;
    }
  }
}

/** The groups of process `pid` (its supplementary groups from /proc, and `gid`). */
export function groupsOf(pid: number, gid: number): Set<number> {
  const out = new Set([gid]);
  if (pid <= 0) return out;
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const line = status.split("\n").find((l) => l.startsWith("Groups:"));
    for (const g of line?.slice(7).trim().split(/\s+/) ?? []) if (g !== "") out.add(Number(g));
  } catch {
    // gone already: its primary group is all that is known
  }
  return out;
}
