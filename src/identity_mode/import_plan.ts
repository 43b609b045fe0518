// Bulk import files for endpoint_map and policy_map: validation of the whole file before
// anything is written, and the plan of what to write. Pure.
//
// A file is exactly what `ebpfcni endpoint list --json` / `policy list --json` prints (see
// map_records.ts): a JSON array of {"ip","identity"} or {"src","dst"} objects. Every entry is
// checked; the first problem is reported with its index (0-based, as jq's .[i]) and value, and
// the count of further problems. Repeated entries are fine; an address given two different
// identities is not (which one was meant?).
import type { Endpoint, Policy } from "../spec/bpf_layout.ts";
import { describeValue, errorMessage } from "../spec/text.ts";
import { IDENTITY_RANGE, isIdentity } from "../spec/identity_rule.ts";
import { IDENTITY_HOST, IDENTITY_WORLD } from "../spec/bpf_layout.ts";
import { IPPROTO, parsePortRange, parseProtocol, PROTOCOL_NAMES } from "../spec/rule_key.ts";
import type { PolicyRule } from "./pair_rules.ts";
import { ipv4Problem, parseIpv4 } from "../spec/ipv4.ts";

/** The file is not a valid import file; nothing should be written. */
export class ImportError extends Error {
  override name = "ImportError";
  constructor(
    message: string,
    /** Index of the first bad entry, when the problem is an entry. */
    readonly index: number | undefined,
    /** How many entries are bad in all. */
    readonly problems: number,
  ) {
    super(message);
  }
}

/** A validated file: distinct entries in file order, and how many entries the file held. */
export interface ImportFile<T> {
  entries: T[];
  total: number;
}

function parseJsonArray(text: string, example: string): unknown[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    // V8 quotes the offending input, which may hold newlines: keep the message one line.
    const msg = errorMessage(err).replace(/[\r\n\t]/g, (c) => JSON.stringify(c).slice(1, -1));
    throw new ImportError(`not valid JSON: ${msg}`, undefined, 1);
  }
  if (!Array.isArray(doc)) {
    throw new ImportError(
      `expected a JSON array like [${example}], got ${describeValue(doc)}`,
      undefined,
      1,
    );
  }
  return doc;
}

/** Collects the problems of a file: the first one is reported, with how many more. */
class Problems {
  count = 0;
  #first: { message: string; index: number } | undefined;

  /** `detail` follows the entry's "[i]": ": reason" or ".key: reason". */
  add(index: number, detail: string): void {
    this.count++;
    this.#first ??= { message: `[${index}]${detail}`, index };
  }

  throwIfAny(): void {
    if (this.#first === undefined) return;
    const more = this.count > 1 ? ` (and ${this.count - 1} more invalid entries)` : "";
    throw new ImportError(this.#first.message + more, this.#first.index, this.count);
  }
}

/**
 * What is wrong with an element's shape (not an object, an unknown or a missing key), as the
 * detail after "[i]", or undefined. Checked first so the value checks can read both keys.
 */
function shapeProblem(
  item: unknown,
  keys: readonly [string, string],
  example: string,
  optional: readonly string[] = [],
): string | undefined {
  if (typeof item !== "object" || item === null || Array.isArray(item)) {
    return `: expected an object like ${example}, got ${describeValue(item)}`;
  }
  // for..in also lists inherited keys, but JSON.parse makes none (even "__proto__" is own).
  for (const k in item) {
    if (k !== keys[0] && k !== keys[1] && !optional.includes(k)) {
      const also = optional.length
        ? `, optionally ${optional.map((o) => `"${o}"`).join(", ")}`
        : "";
      return `: unknown key ${JSON.stringify(k.slice(0, 32))} (expected "${keys[0]}" and "${
        keys[1]
      }"${also})`;
    }
  }
  for (const k of keys) if (!Object.hasOwn(item, k)) return `: missing "${k}"`;
  return undefined;
}

function identityProblem(key: string, v: unknown): string {
  return `.${key}: must be ${IDENTITY_RANGE}, got ${describeValue(v)}`;
}

/** Validates an endpoint file; entries are distinct by address. */
export function parseEndpointFile(text: string): ImportFile<Endpoint> {
  const example = `{"ip":"10.13.0.2","identity":1001}`;
  const items = parseJsonArray(text, example);
  const problems = new Problems();
  // address -> [identity, index of the first entry with it]
  const seen = new Map<number, [number, number]>();
  const entries: Endpoint[] = [];
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    const shape = shapeProblem(item, ["ip", "identity"], example);
    if (shape !== undefined) {
      problems.add(i, shape);
      continue;
    }
    const { ip, identity } = item as { ip: unknown; identity: unknown };
    if (typeof ip !== "string") {
      problems.add(i, `.ip: must be an IPv4 address string, got ${describeValue(ip)}`);
      continue;
    }
    const why = ipv4Problem(ip);
    if (why !== undefined) {
      problems.add(i, `.ip ${JSON.stringify(ip.slice(0, 64))}: ${why}`);
      continue;
    }
    if (!isIdentity(identity)) {
      problems.add(i, identityProblem("identity", identity));
      continue;
    }
    const addr = parseIpv4(ip);
    const prev = seen.get(addr);
    if (prev === undefined) {
      seen.set(addr, [identity, i]);
      entries.push({ ip: addr, identity });
    } else if (prev[0] !== identity) {
      problems.add(i, `: ip "${ip}" has identity ${identity} here but ${prev[0]} at [${prev[1]}]`);
    }
  }
  problems.throwIfAny();
  return { entries, total: items.length };
}

/** A set of {src, dst} pairs (src * 2^32 + dst would not fit a double exactly). */
export class PairSet {
  readonly #bySrc = new Map<number, Set<number>>();

  /** Adds the pair; false when it was there already. */
  add(src: number, dst: number): boolean {
    let dsts = this.#bySrc.get(src);
    if (dsts === undefined) {
      dsts = new Set();
      this.#bySrc.set(src, dsts);
    } else if (dsts.has(dst)) {
      return false;
    }
    dsts.add(dst);
    return true;
  }

  has(src: number, dst: number): boolean {
    return this.#bySrc.get(src)?.has(dst) ?? false;
  }
}

/** A rule's peer: an identity, or "host" / "world". */
function peerOf(v: unknown): number | undefined {
  if (v === "host") return IDENTITY_HOST;
  if (v === "world") return IDENTITY_WORLD;
  return isIdentity(v) ? v : undefined;
}

/** A policy file: all-traffic pairs (policy_map) and L4 rules (rule_map), each distinct. */
export interface PolicyFile extends ImportFile<Policy> {
  rules: PolicyRule[];
}

/** Validates a policy file; entries are distinct by {src, dst} (and protocol and ports). */
export function parsePolicyFile(text: string): PolicyFile {
  const example = `{"src":1001,"dst":1002}`;
  const items = parseJsonArray(text, example);
  const problems = new Problems();
  const seen = new PairSet();
  const seenRules = new Set<string>();
  const entries: Policy[] = [];
  const rules: PolicyRule[] = [];
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    const shape = shapeProblem(item, ["src", "dst"], example, ["proto", "ports"]);
    if (shape !== undefined) {
      problems.add(i, shape);
      continue;
    }
    const o = item as { src: unknown; dst: unknown; proto?: unknown; ports?: unknown };
    const src = peerOf(o.src);
    const dst = peerOf(o.dst);
    if (src === undefined) problems.add(i, identityProblem("src", o.src));
    else if (dst === undefined) problems.add(i, identityProblem("dst", o.dst));
    else if (o.proto === undefined) {
      if (o.ports !== undefined) problems.add(i, `.ports: needs "proto"`);
      else if (seen.add(src, dst)) entries.push({ src, dst });
    } else {
      const proto = typeof o.proto === "string" ? parseProtocol(o.proto) : undefined;
      if (proto === undefined) {
        problems.add(i, `.proto: must be one of ${PROTOCOL_NAMES}, got ${describeValue(o.proto)}`);
        continue;
      }
      const rule: PolicyRule = { src, dst, proto };
      if (o.ports !== undefined) {
        const ports = typeof o.ports === "string" ? parsePortRange(o.ports) : undefined;
        if (typeof ports !== "object" || proto === IPPROTO.icmp) {
          const why = proto === IPPROTO.icmp
            ? "icmp has no ports"
            : `must be a port or range like "80" or "8000-8100", got ${describeValue(o.ports)}`;
          problems.add(i, `.ports: ${why}`);
          continue;
        }
        rule.ports = ports;
      }
      const key = JSON.stringify(rule);
      if (!seenRules.has(key)) {
        seenRules.add(key);
        rules.push(rule);
      }
    }
  }
  problems.throwIfAny();
  return { entries, rules, total: items.length };
}

/** What an import will do to a map. */
export interface ImportPlan<T> {
  /** Entries to write (new or changed); the rest are already in the map as given. */
  write: T[];
  /** Entries whose key is not in the map yet: each takes a slot. */
  added: T[];
  /** Endpoints whose address is registered with another identity (always 0 for policies). */
  changed: number;
  unchanged: number;
  /** Entries in the map after the import. */
  after: number;
  /** Whether `after` fits the map's max entries. */
  fits: boolean;
}

/**
 * Plans an endpoint import against the map's current entries (`current`, all of them) and its
 * capacity `max`.
 */
export function planEndpointImport(
  current: readonly Endpoint[],
  incoming: readonly Endpoint[],
  max: number,
): ImportPlan<Endpoint> {
  const have = new Map(current.map((e) => [e.ip, e.identity]));
  const write: Endpoint[] = [];
  const added: Endpoint[] = [];
  let changed = 0;
  for (const e of incoming) {
    const old = have.get(e.ip);
    if (old === e.identity) continue;
    write.push(e);
    if (old === undefined) added.push(e);
    else changed++;
  }
  const after = current.length + added.length;
  return {
    write,
    added,
    changed,
    unchanged: incoming.length - write.length,
    after,
    fits: after <= max,
  };
}

/**
 * Plans a policy import. `allowed` are the map's allow entries and `entries` the number of keys
 * in it whatever their value: a key present with another action is counted as taking a new slot,
 * which can only make the capacity check stricter than needed.
 */
export function planPolicyImport(
  allowed: readonly Policy[],
  entries: number,
  incoming: readonly Policy[],
  max: number,
): ImportPlan<Policy> {
  const have = new PairSet();
  for (const p of allowed) have.add(p.src, p.dst);
  const write = incoming.filter((p) => !have.has(p.src, p.dst));
  const after = entries + write.length;
  return {
    write,
    added: write,
    changed: 0,
    unchanged: incoming.length - write.length,
    after,
    fits: after <= max,
  };
}
