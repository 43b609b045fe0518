// Unit tests for flow evaluation: isolation, rules, peers, ports, nodes and hostNetwork pods.
import assert from "node:assert/strict";
import { flow, modelOf, namespaceObj, podObj, policyObj } from "./_test_util.ts";
import { FlowError } from "./errors.ts";
import { evaluate, inBlock, portMatches } from "./evaluate.ts";
import type { Model } from "./model.ts";
import { parseCidr, parseIpv4 } from "../spec/ipv4.ts";

// The upstream e2e layout: namespaces x, y, z (label ns=<name>), pods a, b, c in each
// (label pod=<name>), serving 80 and 81 over TCP and UDP under names like serve-80-tcp.
const NAMESPACES = ["x", "y", "z"];
const PODS = ["a", "b", "c"];
const PORTS = [80, 81].flatMap((port) =>
  ["TCP", "UDP"].map((protocol) => ({
    name: `serve-${port}-${protocol.toLowerCase()}`,
    containerPort: port,
    protocol,
  }))
);

function ipOf(ref: string): string {
  const [ns, pod] = ref.split("/");
  return `10.0.${NAMESPACES.indexOf(ns ?? "") + 1}.${PODS.indexOf(pod ?? "") + 1}`;
}

function cluster(...extra: unknown[]): Model {
  const objects: unknown[] = [];
  for (const ns of NAMESPACES) {
    objects.push(namespaceObj(ns, { ns }));
    for (const pod of PODS) {
      objects.push(podObj(`${ns}/${pod}`, { pod }, { ip: ipOf(`${ns}/${pod}`), ports: PORTS }));
    }
  }
  return modelOf(...objects, ...extra);
}

const allowed = (model: Model, src: string, dst: string, port = 80, proto: "TCP" | "UDP" = "TCP") =>
  evaluate(model, flow(src, dst, port, proto)).allowed;

const denyAllIngress = policyObj("x/deny-all", { podSelector: {}, ingress: [] });

Deno.test("evaluate() allows everything when no policy selects either pod", () => {
  const d = evaluate(cluster(), flow("x/a", "y/b"));
  assert.deepEqual(d, {
    allowed: true,
    egress: { applies: true, isolatedBy: [], allowedBy: [], allowed: true },
    ingress: { applies: true, isolatedBy: [], allowedBy: [], allowed: true },
  });
});

Deno.test("evaluate() denies ingress to a pod selected by a policy with no ingress rules", () => {
  const model = cluster(denyAllIngress);
  const d = evaluate(model, flow("y/a", "x/b"));
  assert.equal(d.allowed, false);
  assert.deepEqual(d.ingress, {
    applies: true,
    isolatedBy: ["x/deny-all"],
    allowedBy: [],
    allowed: false,
  });
  assert.equal(d.egress.allowed, true);
  // Only ingress of x's pods: egress from x and ingress elsewhere are untouched.
  assert.equal(allowed(model, "x/a", "y/b"), true);
});

Deno.test("evaluate() isolates only pods in the policy's own namespace", () => {
  const model = cluster(policyObj("y/deny-all", { podSelector: {} }));
  assert.equal(allowed(model, "x/a", "x/b"), true);
  assert.equal(allowed(model, "x/a", "y/b"), false);
});

Deno.test("evaluate() isolates only pods the policy's podSelector selects", () => {
  const model = cluster(policyObj("x/deny-a", { podSelector: { matchLabels: { pod: "a" } } }));
  assert.equal(allowed(model, "y/a", "x/a"), false);
  assert.equal(allowed(model, "y/a", "x/b"), true);
});

Deno.test("evaluate() does not isolate ingress for an Egress-only policy, nor use its ingress rules", () => {
  const egressOnly = policyObj("x/egress-only", {
    podSelector: {},
    policyTypes: ["Egress"],
    ingress: [{ from: [{ podSelector: { matchLabels: { pod: "b" } } }] }],
  });
  const d = evaluate(cluster(egressOnly), flow("y/a", "x/a"));
  assert.deepEqual(d.ingress.isolatedBy, []);
  assert.equal(d.ingress.allowed, true);
  // With another policy isolating x/a for ingress, the Egress-only policy's ingress rule
  // still does not count.
  const both = cluster(egressOnly, denyAllIngress);
  const d2 = evaluate(both, flow("x/b", "x/a"));
  assert.deepEqual(d2.ingress.isolatedBy, ["x/deny-all"]);
  assert.deepEqual(d2.ingress.allowedBy, []);
  assert.equal(d2.allowed, false);
});

Deno.test("evaluate() judges egress for the source pod and needs both directions to allow", () => {
  const model = cluster(policyObj("x/deny-egress", { podSelector: {}, policyTypes: ["Egress"] }));
  const d = evaluate(model, flow("x/a", "y/b"));
  assert.deepEqual(d.egress, {
    applies: true,
    isolatedBy: ["x/deny-egress"],
    allowedBy: [],
    allowed: false,
  });
  assert.equal(d.ingress.allowed, true);
  assert.equal(d.allowed, false);
  assert.equal(allowed(model, "y/b", "x/a"), true);
});

Deno.test("evaluate() adds policies up and cites every allowing rule, sorted", () => {
  const model = cluster(
    policyObj("x/z-allow-b", {
      podSelector: { matchLabels: { pod: "a" } },
      ingress: [
        { from: [{ podSelector: { matchLabels: { pod: "c" } } }] },
        { from: [{ podSelector: { matchLabels: { pod: "b" } } }] },
        { ports: [{ port: 80 }] },
      ],
    }),
    policyObj("x/a-allow-b", {
      podSelector: {},
      ingress: [{ from: [{ podSelector: { matchLabels: { pod: "b" } } }] }],
    }),
    policyObj("x/m-deny", { podSelector: {} }),
  );
  const d = evaluate(model, flow("x/b", "x/a"));
  assert.equal(d.allowed, true);
  assert.deepEqual(d.ingress.isolatedBy, ["x/a-allow-b", "x/m-deny", "x/z-allow-b"]);
  assert.deepEqual(d.ingress.allowedBy, [
    { policy: "x/a-allow-b", direction: "ingress", rule: 0 },
    { policy: "x/z-allow-b", direction: "ingress", rule: 1 },
    { policy: "x/z-allow-b", direction: "ingress", rule: 2 },
  ]);
  assert.equal(allowed(model, "x/c", "x/b"), false);
});

Deno.test("evaluate() lets a rule without peers or ports allow every flow", () => {
  const model = cluster(policyObj("x/allow-all", { podSelector: {}, ingress: [{}] }));
  assert.equal(allowed(model, "z/c", "x/a", 81, "UDP"), true);
  assert.equal(allowed(model, "203.0.113.9", "x/a", 9999), true);
});

Deno.test("evaluate() matches a podSelector peer alone only in the policy's namespace", () => {
  const model = cluster(policyObj("x/from-b", {
    podSelector: {},
    ingress: [{ from: [{ podSelector: { matchLabels: { pod: "b" } } }] }],
  }));
  assert.equal(allowed(model, "x/b", "x/a"), true);
  assert.equal(allowed(model, "y/b", "x/a"), false);
  assert.equal(allowed(model, "x/c", "x/a"), false);
});

Deno.test("evaluate() matches a namespaceSelector peer alone to every pod of those namespaces", () => {
  const model = cluster(policyObj("x/from-y", {
    podSelector: {},
    ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: "y" } } }] }],
  }));
  for (const pod of PODS) assert.equal(allowed(model, `y/${pod}`, "x/a"), true);
  assert.equal(allowed(model, "x/b", "x/a"), false);
  assert.equal(allowed(model, "z/b", "x/a"), false);
});

Deno.test("evaluate() ANDs a podSelector with a namespaceSelector in one peer", () => {
  const model = cluster(policyObj("x/from-y-b", {
    podSelector: {},
    ingress: [{
      from: [{
        namespaceSelector: {
          matchExpressions: [{ key: "ns", operator: "In", values: ["y", "z"] }],
        },
        podSelector: { matchLabels: { pod: "b" } },
      }],
    }],
  }));
  assert.equal(allowed(model, "y/b", "x/a"), true);
  assert.equal(allowed(model, "z/b", "x/a"), true);
  assert.equal(allowed(model, "y/c", "x/a"), false);
  assert.equal(allowed(model, "x/b", "x/a"), false);
});

Deno.test("evaluate() ORs the peers of a rule", () => {
  const model = cluster(policyObj("x/or", {
    podSelector: {},
    ingress: [{
      from: [
        { namespaceSelector: { matchLabels: { ns: "y" } } },
        { podSelector: { matchLabels: { pod: "b" } } },
      ],
    }],
  }));
  assert.equal(allowed(model, "y/c", "x/a"), true);
  assert.equal(allowed(model, "x/b", "x/a"), true);
  assert.equal(allowed(model, "z/b", "x/a"), false);
});

Deno.test("evaluate() selects a namespace without an object by its kubernetes.io/metadata.name", () => {
  const model = modelOf(
    podObj("x/a", {}, { ip: "10.0.1.1" }),
    podObj("w/b", {}, { ip: "10.0.9.2" }),
    policyObj("x/from-w", {
      podSelector: {},
      ingress: [{
        from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "w" } } }],
      }],
    }),
  );
  assert.equal(allowed(model, "w/b", "x/a"), true);
  const byOtherLabel = modelOf(
    podObj("x/a"),
    podObj("w/b"),
    policyObj("x/from-team", {
      podSelector: {},
      ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: "w" } } }] }],
    }),
  );
  assert.equal(allowed(byOtherLabel, "w/b", "x/a"), false);
});

Deno.test("evaluate() matches an ipBlock against a source pod's IPs, except excluded", () => {
  const model = cluster(policyObj("x/from-block", {
    podSelector: {},
    ingress: [{
      from: [{ ipBlock: { cidr: "10.0.2.0/24", except: [`${ipOf("y/c")}/32`] } }],
    }],
  }));
  assert.equal(allowed(model, "y/a", "x/a"), true);
  assert.equal(allowed(model, "y/c", "x/a"), false);
  assert.equal(allowed(model, "z/a", "x/a"), false);
});

Deno.test("evaluate() reads an upstream-style ipBlock with host bits set as its network", () => {
  // Older upstream e2e cases write `${podIP}/4` and except `${otherPodIP}/32`.
  const model = cluster(policyObj("x/egress-cidr", {
    podSelector: { matchLabels: { pod: "a" } },
    policyTypes: ["Egress"],
    egress: [{ to: [{ ipBlock: { cidr: `${ipOf("x/a")}/4`, except: [`${ipOf("x/b")}/32`] } }] }],
  }));
  assert.equal(allowed(model, "x/a", "y/c"), true);
  assert.equal(allowed(model, "x/a", "x/b"), false);
});

Deno.test("evaluate() matches an egress ipBlock against the destination's addresses", () => {
  const model = cluster(policyObj("x/to-block", {
    podSelector: {},
    policyTypes: ["Egress"],
    egress: [{ to: [{ ipBlock: { cidr: "203.0.113.0/24", except: ["203.0.113.128/25"] } }] }],
  }));
  assert.equal(allowed(model, "x/a", "203.0.113.10"), true);
  assert.equal(allowed(model, "x/a", "203.0.113.200"), false);
  assert.equal(allowed(model, "x/a", "198.51.100.1"), false);
  assert.equal(allowed(model, "x/a", "y/a"), false);
});

Deno.test("evaluate() never matches an IPv6 ipBlock", () => {
  const model = cluster(policyObj("x/v6", {
    podSelector: {},
    ingress: [{ from: [{ ipBlock: { cidr: "::/0" } }] }],
  }));
  assert.equal(allowed(model, "y/a", "x/a"), false);
  assert.equal(allowed(model, "0.0.0.0", "x/a"), false);
});

Deno.test("evaluate() treats an address that is a pod's IP as that pod", () => {
  const model = cluster(
    policyObj("x/from-b", {
      podSelector: {},
      ingress: [{ from: [{ podSelector: { matchLabels: { pod: "b" } } }] }],
    }),
    policyObj("x/no-egress", {
      podSelector: { matchLabels: { pod: "c" } },
      policyTypes: ["Egress"],
    }),
  );
  assert.equal(allowed(model, ipOf("x/b"), "x/a"), true);
  const d = evaluate(model, flow(ipOf("x/c"), "y/a"));
  assert.equal(d.egress.applies, true);
  assert.deepEqual(d.egress.isolatedBy, ["x/no-egress"]);
  assert.equal(d.allowed, false);
  // The destination as an address is the pod too: its ingress is judged.
  assert.equal(evaluate(model, flow("y/a", ipOf("x/a"))).ingress.applies, true);
});

Deno.test("evaluate() matches only ipBlocks for an address that is no pod's", () => {
  const model = cluster(policyObj("x/any-pod", {
    podSelector: {},
    ingress: [{ from: [{ podSelector: {}, namespaceSelector: {} }, { namespaceSelector: {} }] }],
  }));
  assert.equal(allowed(model, "y/a", "x/a"), true);
  const d = evaluate(model, flow("203.0.113.7", "x/a"));
  assert.equal(d.allowed, false);
  assert.deepEqual(d.egress, { applies: false, isolatedBy: [], allowedBy: [], allowed: true });
});

Deno.test("evaluate() requires the protocol to match", () => {
  const model = cluster(policyObj("x/udp", {
    podSelector: {},
    ingress: [{ ports: [{ protocol: "UDP", port: 80 }] }],
  }));
  assert.equal(allowed(model, "y/a", "x/a", 80, "UDP"), true);
  assert.equal(allowed(model, "y/a", "x/a", 80, "TCP"), false);
});

Deno.test("evaluate() matches numeric ports and endPort ranges inclusively", () => {
  const model = cluster(policyObj("x/ports", {
    podSelector: {},
    ingress: [{ ports: [{ port: 81 }, { port: 1000, endPort: 1010 }] }],
  }));
  assert.equal(allowed(model, "y/a", "x/a", 80), false);
  assert.equal(allowed(model, "y/a", "x/a", 81), true);
  assert.equal(allowed(model, "y/a", "x/a", 999), false);
  assert.equal(allowed(model, "y/a", "x/a", 1000), true);
  assert.equal(allowed(model, "y/a", "x/a", 1010), true);
  assert.equal(allowed(model, "y/a", "x/a", 1011), false);
});

Deno.test("evaluate() matches every port of the protocol when a port spec has no port", () => {
  const model = cluster(policyObj("x/all-udp", {
    podSelector: {},
    ingress: [{ ports: [{ protocol: "UDP" }] }],
  }));
  assert.equal(allowed(model, "y/a", "x/a", 53, "UDP"), true);
  assert.equal(allowed(model, "y/a", "x/a", 65535, "UDP"), true);
  assert.equal(allowed(model, "y/a", "x/a", 53, "TCP"), false);
});

Deno.test("evaluate() allows a named port only where the destination pod defines it", () => {
  const model = modelOf(
    podObj("x/a", {}, { ip: "10.0.1.1", ports: [{ name: "web", containerPort: 8080 }] }),
    podObj("x/b", {}, { ip: "10.0.1.2", ports: [{ name: "web", containerPort: 9090 }] }),
    podObj("x/c", {}, { ip: "10.0.1.3" }),
    podObj("y/src", {}, { ip: "10.0.2.1" }),
    policyObj("x/web", { podSelector: {}, ingress: [{ ports: [{ port: "web" }] }] }),
  );
  // The same name is a different number on each pod.
  assert.equal(allowed(model, "y/src", "x/a", 8080), true);
  assert.equal(allowed(model, "y/src", "x/a", 9090), false);
  assert.equal(allowed(model, "y/src", "x/b", 9090), true);
  assert.equal(allowed(model, "y/src", "x/b", 8080), false);
  // A pod without the name: nothing.
  assert.equal(allowed(model, "y/src", "x/c", 8080), false);
});

Deno.test("evaluate() requires a named port's protocol to match the flow's", () => {
  const model = cluster(policyObj("x/named", {
    podSelector: {},
    ingress: [{ ports: [{ port: "serve-81-udp" }] }],
  }));
  // The port spec's protocol defaults to TCP; serve-81-udp is UDP on the pods.
  assert.equal(allowed(model, "y/a", "x/a", 81, "TCP"), false);
  assert.equal(allowed(model, "y/a", "x/a", 81, "UDP"), false);
  const udp = cluster(policyObj("x/named", {
    podSelector: {},
    ingress: [{ ports: [{ port: "serve-81-udp", protocol: "UDP" }] }],
  }));
  assert.equal(allowed(udp, "y/a", "x/a", 81, "UDP"), true);
  assert.equal(allowed(udp, "y/a", "x/a", 80, "UDP"), false);
});

Deno.test("evaluate() resolves an egress named port on the destination pod", () => {
  const model = cluster(policyObj("x/egress-named", {
    podSelector: {},
    policyTypes: ["Egress"],
    egress: [{ ports: [{ port: "serve-81-tcp" }] }],
  }));
  assert.equal(allowed(model, "x/a", "y/b", 81), true);
  assert.equal(allowed(model, "x/a", "y/b", 80), false);
});

Deno.test("evaluate() gives an ip or node destination no named ports", () => {
  const model = cluster(policyObj("x/egress-named", {
    podSelector: {},
    policyTypes: ["Egress"],
    egress: [{ ports: [{ port: "serve-80-tcp" }] }, { ports: [{ port: 443 }] }],
  }));
  assert.equal(allowed(model, "x/a", "203.0.113.1", 80), false);
  assert.equal(allowed(model, "x/a", "node", 80), false);
  assert.equal(allowed(model, "x/a", "203.0.113.1", 443), true);
});

Deno.test("evaluate() always allows ingress from the pod's own node, citing no rule", () => {
  const model = cluster(
    denyAllIngress,
    policyObj("x/allow-80", {
      podSelector: {},
      ingress: [{ ports: [{ port: 80 }] }],
    }),
  );
  const d = evaluate(model, flow("node", "x/a", 80));
  assert.deepEqual(d, {
    allowed: true,
    egress: { applies: false, isolatedBy: [], allowedBy: [], allowed: true },
    ingress: {
      applies: true,
      isolatedBy: ["x/allow-80", "x/deny-all"],
      allowedBy: [],
      allowed: true,
    },
  });
});

Deno.test("evaluate() lets only peerless rules allow egress to the node", () => {
  const selectors = cluster(policyObj("x/to-pods", {
    podSelector: {},
    policyTypes: ["Egress"],
    egress: [{ to: [{ namespaceSelector: {} }, { ipBlock: { cidr: "0.0.0.0/0" } }] }],
  }));
  assert.equal(allowed(selectors, "x/a", "node"), false);
  const any = cluster(policyObj("x/to-80", {
    podSelector: {},
    policyTypes: ["Egress"],
    egress: [{ ports: [{ port: 80 }] }],
  }));
  assert.equal(allowed(any, "x/a", "node", 80), true);
});

Deno.test("evaluate() does not apply policies to hostNetwork pods", () => {
  const model = cluster(
    podObj("x/host", { pod: "host" }, { ip: "192.168.0.10", hostNetwork: true }),
    denyAllIngress,
    policyObj("x/deny-egress", { podSelector: {}, policyTypes: ["Egress"] }),
  );
  const d = evaluate(model, flow("x/host", "y/a"));
  assert.equal(d.egress.applies, false);
  assert.equal(d.allowed, true);
  const back = evaluate(model, flow("y/a", "x/host"));
  assert.equal(back.ingress.applies, false);
  assert.equal(back.allowed, true);
});

Deno.test("evaluate() matches a hostNetwork peer by ipBlock only, never by selectors", () => {
  const model = cluster(
    podObj("y/host", { pod: "host" }, { ip: "192.168.0.10", hostNetwork: true }),
    policyObj("x/selectors", {
      podSelector: { matchLabels: { pod: "a" } },
      ingress: [{
        from: [{ namespaceSelector: {} }, { podSelector: {}, namespaceSelector: {} }],
      }],
    }),
    policyObj("x/block", {
      podSelector: { matchLabels: { pod: "b" } },
      ingress: [{ from: [{ ipBlock: { cidr: "192.168.0.0/24" } }] }],
    }),
  );
  assert.equal(allowed(model, "y/host", "x/a"), false);
  assert.equal(allowed(model, "y/a", "x/a"), true);
  assert.equal(allowed(model, "y/host", "x/b"), true);
  // Its address alone is the node's, not the pod's.
  assert.equal(allowed(model, "192.168.0.10", "x/a"), false);
  assert.equal(evaluate(model, flow("192.168.0.10", "x/b")).egress.applies, false);
});

Deno.test("evaluate() gives a hostNetwork destination pod its named ports", () => {
  const model = cluster(
    podObj("y/host", {}, {
      ip: "192.168.0.10",
      hostNetwork: true,
      ports: [{ name: "metrics", containerPort: 9100 }],
    }),
    policyObj("x/egress", {
      podSelector: {},
      policyTypes: ["Egress"],
      egress: [{ ports: [{ port: "metrics" }] }],
    }),
  );
  assert.equal(allowed(model, "x/a", "y/host", 9100), true);
  assert.equal(allowed(model, "x/a", "192.168.0.10", 9100), false);
});

Deno.test("evaluate() picks the pod with the smaller key for an address two pods report", () => {
  const model = modelOf(
    podObj("y/late", { pod: "y" }, { ip: "10.0.0.5" }),
    podObj("x/early", { pod: "x" }, { ip: "10.0.0.5" }),
    podObj("x/dst", {}, { ip: "10.0.0.6" }),
    policyObj("x/from-x", {
      podSelector: {},
      ingress: [{ from: [{ podSelector: { matchLabels: { pod: "x" } } }] }],
    }),
  );
  assert.equal(allowed(model, "10.0.0.5", "x/dst"), true);
});

Deno.test("evaluate() lets a pod without IPs match selectors but no ipBlock", () => {
  const model = modelOf(
    podObj("x/a", { pod: "a" }),
    podObj("x/dst", {}, { ip: "10.0.0.6" }),
    policyObj("x/p", {
      podSelector: {},
      ingress: [{ from: [{ ipBlock: { cidr: "0.0.0.0/0" } }] }, { from: [{ podSelector: {} }] }],
    }),
  );
  assert.deepEqual(evaluate(model, flow("x/a", "x/dst")).ingress.allowedBy, [
    { policy: "x/p", direction: "ingress", rule: 1 },
  ]);
});

Deno.test("evaluate() throws FlowError for a pod the model does not hold", () => {
  assert.throws(
    () => evaluate(cluster(), flow("x/a", "q/nope")),
    (err: unknown) =>
      err instanceof FlowError && err.message === `Pod "q/nope" is not in the model`,
  );
});

Deno.test("evaluate() sees a model's updates only in the new model", () => {
  const before = cluster();
  const after = cluster(denyAllIngress);
  assert.equal(allowed(before, "y/a", "x/a"), true);
  assert.equal(allowed(after, "y/a", "x/a"), false);
  assert.equal(allowed(before, "y/a", "x/a"), true);
});

Deno.test("inBlock() and portMatches() hold the ipBlock and port rules", () => {
  const block = {
    family: 4 as const,
    cidr: parseCidr("10.0.0.0/8"),
    except: [parseCidr("10.1.0.0/16")],
    text: "",
  };
  assert.equal(inBlock(block, parseIpv4("10.2.0.1")), true);
  assert.equal(inBlock(block, parseIpv4("10.1.0.1")), false);
  assert.equal(inBlock({ family: 6, text: "::/0" }, 0), false);
  const f = flow("x/a", "x/b", 80);
  assert.equal(portMatches({ protocol: "TCP" }, f, []), true);
  assert.equal(
    portMatches({ protocol: "TCP", port: "http" }, f, [{
      name: "http",
      port: 80,
      protocol: "TCP",
    }]),
    true,
  );
  assert.equal(
    portMatches({ protocol: "TCP", port: "http" }, f, [{
      name: "http",
      port: 80,
      protocol: "UDP",
    }]),
    false,
  );
});
