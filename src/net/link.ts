// Link, address and route operations over one netlink socket (so, one namespace).
import { NetlinkSocket } from "./socket.ts";
import { Errno, NetlinkError, SysError } from "../../ffi/errors.ts";
import * as M from "./messages.ts";
import * as K from "./constants.ts";
import {
  type Addr,
  type Link,
  parseAddr,
  parseLink,
  parseRoute,
  type RouteEntry,
} from "./rtnl_parse.ts";
import type { LinkTable } from "./link_table.ts";

export class Links implements LinkTable {
  constructor(readonly nl: NetlinkSocket) {}

  /** The link called `name`, or undefined. */
  get(name: string): Link | undefined {
    try {
      const [msg] = this.nl.get(M.getLink(name));
      return msg ? parseLink(msg.payload) : undefined;
    } catch (err) {
      if (err instanceof SysError && err.notFound) return undefined;
      throw err;
    }
  }

  /** The link with this ifindex, or undefined. */
  byIndex(index: number): Link | undefined {
    try {
      const [msg] = this.nl.get(M.getLinkByIndex(index));
      return msg ? parseLink(msg.payload) : undefined;
    } catch (err) {
      if (err instanceof SysError && err.notFound) return undefined;
      throw err;
    }
  }

  list(): Link[] {
    return this.nl.dump(M.dumpLinks()).map((m) => parseLink(m.payload));
  }

  /** Creates bridge `name` unless it exists (a concurrent ADD may have made it first). */
  ensureBridge(name: string, mtu: number): Link {
    try {
      this.nl.request(M.newBridge(name, mtu));
    } catch (err) {
      if (!(err instanceof NetlinkError && err.exists)) throw err;
    }
    const link = this.get(name);
    if (!link) throw new SysError(`find bridge "${name}"`, Errno.ENODEV, "vanished after creation");
    if (link.kind !== "bridge") {
      throw new SysError(
        `use "${name}" as bridge`,
        Errno.EEXIST,
        `it exists and is a ${link.kind || "non-bridge"} link`,
      );
    }
    return link;
  }

  createVeth(hostName: string, peerName: string, peerNetnsFd: number, mtu: number): void {
    this.nl.request(M.newVeth(hostName, peerName, peerNetnsFd, mtu));
  }

  setUp(link: Link): void {
    this.nl.request(M.setLink(link.index, link.name, { flags: K.IFF_UP, mask: K.IFF_UP }));
  }

  setPromisc(link: Link, on: boolean): void {
    this.nl.request(
      M.setLink(link.index, link.name, { flags: on ? K.IFF_PROMISC : 0, mask: K.IFF_PROMISC }),
    );
  }

  setMaster(link: Link, master: number): void {
    this.nl.request(M.setLink(link.index, link.name, { master }));
  }

  setHairpin(link: Link, on: boolean): void {
    this.nl.request(M.setLink(link.index, link.name, { hairpin: on }));
  }

  /** Deletes `name`; false when it did not exist. */
  delete(name: string): boolean {
    const link = this.get(name);
    if (!link) return false;
    try {
      this.nl.request(M.delLink(link.index, name));
      return true;
    } catch (err) {
      if (err instanceof SysError && err.notFound) return false;
      throw err;
    }
  }

  /** Adds an address; one already there is fine. */
  addAddr(link: Link, ip: number, prefix: number): void {
    try {
      this.nl.request(M.newAddr(link.index, ip, prefix, link.name));
    } catch (err) {
      if (!(err instanceof NetlinkError && err.exists)) throw err;
    }
  }

  addrs(index?: number): Addr[] {
    const all = this.nl.dump(M.dumpAddrs()).map((m) => parseAddr(m.payload));
    return all.filter((a): a is Addr => !!a && (index === undefined || a.index === index));
  }

  addRoute(r: M.RouteSpec, ifname: string): void {
    try {
      this.nl.request(M.newRoute(r, ifname));
    } catch (err) {
      if (!(err instanceof NetlinkError && err.exists)) throw err;
    }
  }

  routes(): RouteEntry[] {
    return this.nl.dump(M.dumpRoutes()).map((m) => parseRoute(m.payload)).filter((
      r,
    ): r is RouteEntry => !!r);
  }
}

/** Interface names by index, each looked up once in this thread's namespace (for event
 * records); at most `max` kept, the oldest forgotten first (veths come and go with pods). */
export function ifnameCache(max = 1024): (index: number) => string {
  const names = new Map<number, string>();
  return (index) => {
    let name = names.get(index);
    if (name === undefined) {
      using nl = new NetlinkSocket();
      name = new Links(nl).byIndex(index)?.name ?? `if${index}`;
      if (names.size >= max) names.delete(names.keys().next().value!);
      names.set(index, name);
    }
    return name;
  };
}
