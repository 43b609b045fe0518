// Unit tests for ipBlock validation.
import assert from "node:assert/strict";
import { objectErrorOf, policyObj } from "./_test_util.ts";
import type { IpBlock } from "./model.ts";
import { parseNetworkPolicy } from "./parse.ts";
import { describeIpBlock } from "./parse_ipblock.ts";
import { parseCidr } from "../spec/ipv4.ts";

const withBlock = (ipBlock: unknown) => policyObj("ns/p", { egress: [{ to: [{ ipBlock }] }] });
const blockOf = (ipBlock: unknown): IpBlock | undefined =>
  parseNetworkPolicy(withBlock(ipBlock)).egress[0]?.peers[0]?.ipBlock;
const blockError = (ipBlock: unknown) =>
  objectErrorOf(() => parseNetworkPolicy(withBlock(ipBlock)));

Deno.test("readIpBlock() keeps an IPv4 cidr and its excepts", () => {
  assert.deepEqual(blockOf({ cidr: "10.0.0.0/8", except: ["10.1.0.0/16", "10.2.3.4/32"] }), {
    family: 4,
    cidr: parseCidr("10.0.0.0/8"),
    except: [parseCidr("10.1.0.0/16"), parseCidr("10.2.3.4/32")],
    text: "10.0.0.0/8",
  });
  assert.deepEqual(blockOf({ cidr: "0.0.0.0/0" }), {
    family: 4,
    cidr: { network: 0, prefix: 0 },
    except: [],
    text: "0.0.0.0/0",
  });
});

Deno.test("readIpBlock() masks host bits off, as the API server accepts them by default", () => {
  const block = blockOf({ cidr: "10.0.0.1/8", except: ["10.1.2.3/16"] });
  assert.ok(block?.family === 4);
  assert.deepEqual(block.cidr, parseCidr("10.0.0.0/8"));
  assert.deepEqual(block.except, [parseCidr("10.1.0.0/16")]);
  assert.equal(block.text, "10.0.0.1/8");
});

Deno.test("readIpBlock() keeps an IPv6 block as family 6", () => {
  assert.deepEqual(blockOf({ cidr: "2001:db8::/64", except: ["2001:db8::/96"] }), {
    family: 6,
    text: "2001:db8::/64",
  });
});

Deno.test("readIpBlock() requires a cidr", () => {
  const err = blockError({ except: ["10.0.0.0/8"] });
  assert.equal(err.path, "spec.egress[0].to[0].ipBlock.cidr");
  assert.equal(err.detail, "must be set");
  assert.equal(blockError({ cidr: "" }).detail, "must be set");
});

Deno.test("readIpBlock() refuses text that is not a CIDR, with the reason", () => {
  assert.equal(
    blockError({ cidr: "10.0.0/8" }).message,
    `Invalid NetworkPolicy "ns/p": spec.egress[0].to[0].ipBlock.cidr: must be a valid CIDR (expected 4 dot-separated octets, found 3), got "10.0.0/8"`,
  );
  assert.equal(
    blockError({ cidr: "10.0.0.0" }).detail,
    `must be a valid CIDR (missing prefix length), got "10.0.0.0"`,
  );
  assert.equal(
    blockError({ cidr: "10.0.0.0/33" }).detail,
    `must be a valid CIDR (prefix length out of range), got "10.0.0.0/33"`,
  );
  assert.equal(
    blockError({ cidr: "010.0.0.0/8" }).detail,
    `must be a valid CIDR (octet "010" has a leading zero), got "010.0.0.0/8"`,
  );
  assert.ok(blockError({ cidr: "10.0.0/8" }).cause instanceof Error);
  assert.equal(
    blockError({ cidr: "fd00::/129" }).detail,
    `must be a valid CIDR (invalid prefix length "129"), got "fd00::/129"`,
  );
  assert.equal(
    blockError({ cidr: "fd00:::1/64" }).detail,
    `must be a valid CIDR (not an IPv6 address before the '/'), got "fd00:::1/64"`,
  );
  assert.equal(
    blockError({ cidr: "fd00::" }).detail,
    `must be a valid CIDR (missing prefix length), got "fd00::"`,
  );
});

Deno.test("readIpBlock() requires every except to be a strict subset of the cidr", () => {
  const outside = blockError({ cidr: "10.0.0.0/8", except: ["10.1.0.0/16", "11.0.0.0/16"] });
  assert.equal(outside.path, "spec.egress[0].to[0].ipBlock.except[1]");
  assert.equal(outside.detail, `must be a strict subset of cidr "10.0.0.0/8", got "11.0.0.0/16"`);
  // Equal, or wider: not strict.
  assert.match(blockError({ cidr: "10.0.0.0/8", except: ["10.0.0.0/8"] }).detail, /strict subset/);
  assert.match(blockError({ cidr: "10.0.0.0/16", except: ["10.0.0.0/8"] }).detail, /strict subset/);
  // Another family.
  assert.match(blockError({ cidr: "10.0.0.0/8", except: ["fd00::/64"] }).detail, /strict subset/);
  assert.match(blockError({ cidr: "fd00::/64", except: ["10.0.0.0/16"] }).detail, /strict subset/);
  assert.match(blockError({ cidr: "fd00::/64", except: ["fd00::/48"] }).detail, /strict subset/);
});

Deno.test("readIpBlock() checks each except's syntax and type", () => {
  const err = blockError({ cidr: "10.0.0.0/8", except: ["10.1.0.0/16", "10.2.0.0/1x"] });
  assert.equal(err.path, "spec.egress[0].to[0].ipBlock.except[1]");
  assert.match(err.detail, /^must be a valid CIDR \(invalid prefix length "1x"\)/);
  assert.equal(blockError({ cidr: "10.0.0.0/8", except: [8] }).detail, "must be a string, got 8");
  assert.equal(
    blockError({ cidr: "10.0.0.0/8", excepts: [] }).detail,
    `unknown field "excepts" (known: cidr, except)`,
  );
});

Deno.test("describeIpBlock() writes the cidr minus its excepts", () => {
  const block = blockOf({ cidr: "10.0.0.1/8", except: ["10.1.0.0/16", "10.2.0.0/16"] });
  assert.ok(block !== undefined);
  assert.equal(describeIpBlock(block), "10.0.0.0/8 except 10.1.0.0/16, 10.2.0.0/16");
  assert.equal(describeIpBlock({ family: 6, text: "fd00::/8" }), "fd00::/8");
});
