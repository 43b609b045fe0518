// Test-only driver of the agent's masquerade (src/agent/masquerade.ts): run under
// `nsenter --net=/var/run/netns/NODE`, it is node SELF's agent with the node set it reads on
// stdin, one JSON line each ([{"name","podCidrs":["a.b.c.d/n"],"address":"a.b.c.d"}]),
// and writes the masquerade's status as a JSON line after each.
//   _masq_driver.ts SELF [NON_MASQUERADE_CIDR...]
import { startMasquerade } from "../src/agent/masquerade.ts";
import { jsonLog } from "../src/log.ts";
import type { ClusterNode } from "../src/spec/node.ts";
import { parseCidr, parseIpv4 } from "../src/spec/ipv4.ts";

const [self, ...nonMasq] = Deno.args;
let nodes = new Map<string, ClusterNode>();
let changed = () => {};
const masq = await startMasquerade(
  { nodes: () => nodes, onChange: (cb) => (changed = cb) },
  { self: self!, nonMasquerade: nonMasq.map((c) => parseCidr(c)), log: jsonLog("debug") },
);
const say = () => console.log(JSON.stringify(masq.status()));
say();
let pending = "";
for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
  pending += chunk;
  const lines = pending.split("\n");
  pending = lines.pop()!;
  for (const line of lines) if (line.trim() !== "") feed(line);
}

function feed(line: string): void {
  const list = JSON.parse(line) as { name: string; podCidrs: string[]; address?: string }[];
  nodes = new Map(list.map((n) => [n.name, {
    name: n.name,
    podCidrs: n.podCidrs.map((c) => parseCidr(c)),
    ...(n.address === undefined ? {} : { address: parseIpv4(n.address) }),
  }]));
  changed();
  say();
}
