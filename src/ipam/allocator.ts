// Pure address selection for one range set, in the same order as host-local's
// RangeIter (plugins/ipam/host-local/backend/allocator/allocator.go): round-robin
// from just after the last reserved IP, so a crash-looping pod does not get the
// same address back until the whole set has been used. The store supplies the
// leased IPs and the last reserved IP as data; nothing here touches the disk.

import { CniError, ErrCode } from "../spec/cni.ts";
import { formatIpv4 } from "../spec/ipv4.ts";
import { formatRangeSet, type Range, type RangeSet } from "./ipam_conf.ts";

export interface Allocation {
  ip: number;
  range: Range;
}

function inRange(r: Range, ip: number): boolean {
  return ip >= r.rangeStart && ip <= r.rangeEnd;
}

/** The range of the set that holds ip (between rangeStart and rangeEnd), if any. */
export function rangeFor(set: RangeSet, ip: number): Range | undefined {
  return set.find((r) => inRange(r, ip));
}

export function rangeSetContains(set: RangeSet, ip: number): boolean {
  return rangeFor(set, ip) !== undefined;
}

/**
 * Every allocatable address of the set once, gateways excluded, in host-local's
 * order: from lastReserved + 1 (when lastReserved is in the set; it comes last)
 * through the end of its range, on through the following ranges, wrapping around;
 * otherwise from the first range's start.
 */
export function* candidates(set: RangeSet, lastReserved?: number): Generator<Allocation> {
  if (set.length === 0) return;
  const resumeAt = lastReserved === undefined ? -1 : set.findIndex((r) => inRange(r, lastReserved));
  let idx = resumeAt >= 0 ? resumeAt : 0;
  let cur = resumeAt >= 0 ? lastReserved : undefined;
  let start: number | undefined;
  for (;;) {
    let r = set[idx]!;
    if (cur === undefined) {
      cur = r.rangeStart;
      start = cur;
    } else {
      if (cur === r.rangeEnd) {
        idx = (idx + 1) % set.length;
        r = set[idx]!;
        cur = r.rangeStart;
      } else {
        cur += 1;
      }
      if (start === undefined) start = cur;
      else if (cur === start) return;
    }
    if (cur !== r.gateway) yield { ip: cur, range: r };
  }
}

/** The first free address in iteration order; code 100 when every address is leased. */
export function allocate(
  set: RangeSet,
  leased: ReadonlySet<number>,
  lastReserved?: number,
): Allocation {
  for (const c of candidates(set, lastReserved)) {
    if (!leased.has(c.ip)) return c;
  }
  throw new CniError(
    ErrCode.AddressExhausted,
    `No IP addresses available in range set ${formatRangeSet(set)}`,
  );
}

/** Validates a caller-requested address; code 101 unless it is in a range, not a gateway, and free. */
export function checkRequested(
  set: RangeSet,
  ip: number,
  leased: ReadonlySet<number>,
): Allocation {
  const text = formatIpv4(ip);
  const range = rangeFor(set, ip);
  if (range === undefined) {
    throw new CniError(
      ErrCode.AddressUnavailable,
      `Requested IP address "${text}" is not in range set ${formatRangeSet(set)}`,
    );
  }
  if (ip === range.gateway) {
    throw new CniError(
      ErrCode.AddressUnavailable,
      `Requested IP address "${text}" is the gateway of range ${formatRangeSet([range])}`,
    );
  }
  if (leased.has(ip)) {
    throw new CniError(
      ErrCode.AddressUnavailable,
      `Requested IP address "${text}" is already allocated`,
    );
  }
  return { ip, range };
}
