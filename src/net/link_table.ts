// The links, addresses and routes of one network namespace, as the CNI commands change and read
// them: the seam between their logic and netlink. Links (link.ts) is the one over a netlink
// socket; teardown (cni/del.ts) takes any. The agent's only such need, the node's addresses,
// is a function in its options.
import type { RouteSpec } from "./messages.ts";
import type { Addr, Link, RouteEntry } from "./rtnl_parse.ts";

export interface LinkTable {
  /** The link called `name`, or undefined. */
  get(name: string): Link | undefined;
  byIndex(index: number): Link | undefined;
  list(): Link[];
  ensureBridge(name: string, mtu: number): Link;
  createVeth(hostName: string, peerName: string, peerNetnsFd: number, mtu: number): void;
  setUp(link: Link): void;
  setPromisc(link: Link, on: boolean): void;
  setMaster(link: Link, master: number): void;
  setHairpin(link: Link, on: boolean): void;
  /** False when there was no such link. */
  delete(name: string): boolean;
  addAddr(link: Link, ip: number, prefix: number): void;
  addrs(index?: number): Addr[];
  addRoute(r: RouteSpec, ifname: string): void;
  routes(): RouteEntry[];
}
