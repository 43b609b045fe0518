// An ipBlock read and validated as ValidateIPBlock does: `cidr` required and a valid CIDR, every
// `except` a valid CIDR and a strict subset of `cidr` (inside it, with a longer prefix).
//
// The product is IPv4-only: an IPv6 block is accepted (the API server accepts it) and kept as
// `{ family: 6 }`, which matches no address. Its syntax and the family and prefix lengths of its
// excepts are checked; whether an IPv6 except lies inside the IPv6 cidr is not, since that
// takes IPv6 arithmetic the product does not have and the block matches nothing either way.
//
// IPv4 text is read by the product's one parser (src/spec/ipv4.ts), so it is as strict as the
// API server with StrictIPCIDRValidation in one way and as lax as the default in another:
// leading zeros ("010.0.0.0/8") are refused, as libc would read them as octal; host bits after
// the prefix ("10.0.0.1/8") are accepted and masked off, as the API server does by default (it
// warns), and as every implementation then reads the value (net.ParseCIDR's network).
import { child, describeValue, index, type Reader } from "./_reader.ts";
import type { IpBlock } from "./model.ts";
import { type Cidr, cidrContains, CidrError, formatCidr, isIpv6, parseCidr } from "../spec/ipv4.ts";

export function readIpBlock(r: Reader, value: unknown, path: string): IpBlock {
  const o = r.object(value, path);
  r.onlyFields(o, ["cidr", "except"], path);
  const cidrPath = child(path, "cidr");
  const text = r.requiredString(o, "cidr", path);
  const exceptPath = child(path, "except");
  const exceptTexts = (r.optArray(o, "except", path) ?? []).map((e, i) => {
    if (typeof e !== "string") {
      r.fail(index(exceptPath, i), `must be a string, got ${describeValue(e)}`);
    }
    return e;
  });
  const parsed = readCidr(r, text, cidrPath);
  const except: Cidr[] = [];
  exceptTexts.forEach((exceptText, i) => {
    const p = index(exceptPath, i);
    const e = readCidr(r, exceptText, p);
    const subset = parsed.family === 4 && e.family === 4
      ? cidrContains(parsed.cidr, e.cidr.network) && parsed.cidr.prefix < e.cidr.prefix
      : parsed.family === e.family && parsed.prefix < e.prefix;
    if (!subset) {
      r.fail(
        p,
        `must be a strict subset of cidr ${describeValue(text)}, got ${describeValue(exceptText)}`,
      );
    }
    if (e.family === 4) except.push(e.cidr);
  });
  return parsed.family === 4 ? { family: 4, cidr: parsed.cidr, except, text } : { family: 6, text };
}

type ParsedCidr = { family: 4; cidr: Cidr; prefix: number } | { family: 6; prefix: number };

function readCidr(r: Reader, text: string, path: string): ParsedCidr {
  const invalid = (why: string, cause?: unknown): never =>
    r.fail(path, `must be a valid CIDR (${why}), got ${describeValue(text)}`, cause);
  if (text.includes(":")) {
    const slash = text.indexOf("/");
    if (slash < 0) invalid("missing prefix length");
    const prefixText = text.slice(slash + 1);
    if (!isIpv6(text.slice(0, slash))) invalid("not an IPv6 address before the '/'");
    if (!/^(0|[1-9][0-9]{0,2})$/.test(prefixText) || Number(prefixText) > 128) {
      invalid(`invalid prefix length ${describeValue(prefixText)}`);
    }
    return { family: 6, prefix: Number(prefixText) };
  }
  try {
    const cidr = parseCidr(text, { strict: false });
    return { family: 4, cidr, prefix: cidr.prefix };
  } catch (err) {
    if (!(err instanceof CidrError)) throw err;
    // CidrError reads `Cannot parse subnet "<text>": <why>`; the why is what is news here.
    const marker = `"${text}": `;
    const at = err.message.indexOf(marker);
    return invalid(at < 0 ? err.message : err.message.slice(at + marker.length), err);
  }
}

/** "10.0.0.0/8 except 10.1.0.0/16, 10.2.0.0/16" (for messages and explanations). */
export function describeIpBlock(block: IpBlock): string {
  if (block.family === 6) return block.text;
  const base = formatCidr(block.cidr);
  return block.except.length === 0
    ? base
    : `${base} except ${block.except.map((c) => formatCidr(c)).join(", ")}`;
}
