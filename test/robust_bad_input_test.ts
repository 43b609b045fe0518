// Bad input corpus: hundreds of malformed configs and environments, each from a generator
// that knows which error code(s) the plugin may answer with. Every case must produce the
// spec's error JSON on stdout (integer code, string msg; no stack trace) and a non-zero exit,
// and the whole corpus must leave the host as it found it: links, netns, pins, leases, state,
// endpoint_map, and the directories a path traversal would reach.
//
// Cases run with the working directory deep inside the network's temp dir, so a relative path
// that slipped through ("../../etc") lands where the snapshot sees it instead of in /etc.
// CNI_COMMAND unset is not in the corpus: without it the binary is the operator CLI, by design.
import assert from "node:assert/strict";
import type { TestNetwork } from "./_cni.ts";
import { DEFAULT_BRIDGE, DEFAULT_PIN_DIR, DEFAULT_STATE_DIR } from "../src/cni/net_conf.ts";
import { DEFAULT_DATA_DIR } from "../src/ipam/ipam_conf.ts";
import {
  endpointIps,
  exists,
  hostLinks,
  hostVethName,
  listDir,
  netnsLinks,
  netnsList,
  pinnedProgId,
  pool,
  type RawCniCall,
  resultIp,
  runPluginIn,
  tcAttachments,
  tree,
  withCheckedNetwork,
} from "./_robust.ts";

const E = {
  version: 1,
  unsupported: 2,
  env: 4,
  io: 5,
  decode: 6,
  config: 7,
  unavailable: 101,
} as const;

type Obj = Record<string, unknown>;

interface Case {
  gen: string;
  label: string;
  /** Command, env and stdin; env entries are merged over the defaults of the command. */
  command: string;
  env?: Record<string, string | undefined>;
  stdin: Obj | string | Uint8Array;
  codes: readonly number[];
}

const LIVE = "corpus-live";
const MB = 1 << 20;
/** Long enough to be absurd, short enough for one environment string (MAX_ARG_STRLEN). */
const ENV_HUGE = 100_000;

/** A deep copy of `o` with the value at `path` (dot/bracket-free list of keys) replaced;
 * `undefined` deletes it. Missing intermediate objects are created. */
function setPath(o: Obj, path: (string | number)[], value: unknown): Obj {
  const copy = structuredClone(o);
  let cur: Record<string | number, unknown> = copy;
  for (const key of path.slice(0, -1)) {
    if (typeof cur[key] !== "object" || cur[key] === null) cur[key] = {};
    cur = cur[key] as Record<string | number, unknown>;
  }
  const last = path[path.length - 1]!;
  if (value === undefined) delete cur[last];
  else cur[last] = value;
  return copy;
}

type Kind = "string" | "number" | "boolean" | "array" | "object";
const SAMPLES: [Kind, unknown][] = [
  ["string", "x"],
  ["number", 42],
  ["number", -1.5],
  ["boolean", true],
  ["array", []],
  ["object", { a: 1 }],
];

/** A valid config with every optional section present, so that a wrong type can be put
 * anywhere; the test checks that it is accepted as it is. */
function fullConfig(net: TestNetwork): Obj {
  const prefix = net.subnet.replace(/\.0\/24$/, "");
  return net.config(
    {
      mtu: 1400,
      isGateway: true,
      isDefaultGateway: false,
      hairpinMode: false,
      promiscMode: false,
      args: { cni: { ips: [`${prefix}.200`], identity: 77, labels: { app: "web" } } },
      runtimeConfig: { ips: [`${prefix}.200`], ipRanges: [[{ subnet: "10.99.0.0/24" }]] },
      dns: { nameservers: ["10.0.0.10"], domain: "cluster.local", search: ["a"], options: ["x"] },
      prevResult: {
        cniVersion: "1.1.0",
        interfaces: [{ name: "eth0" }],
        ips: [{ address: `${prefix}.200/24` }],
        routes: [{ dst: "0.0.0.0/0" }],
        dns: {},
      },
    },
    {
      rangeStart: `${prefix}.10`,
      rangeEnd: `${prefix}.250`,
      gateway: `${prefix}.1`,
      resolvConf: "/etc/resolv.conf",
      ranges: [[{ subnet: "10.98.0.0/24" }]],
    },
  );
}

/** The corpus, built around the network's own config. */
function corpus(net: TestNetwork): Case[] {
  const prefix = net.subnet.replace(/\.0\/24$/, "");
  const base = fullConfig(net);
  const minimal = net.config();
  const cases: Case[] = [];
  let n = 0;
  const add = (
    gen: string,
    label: string,
    stdin: Case["stdin"],
    codes: readonly number[],
    command = "ADD",
    env?: Case["env"],
  ) => {
    cases.push({ gen, label: `${label} #${n++}`, command, stdin, codes, ...(env ? { env } : {}) });
  };
  const commands = ["ADD", "DEL", "CHECK", "GC", "STATUS"];

  // --- truncated JSON: every 2nd byte offset of the compact config, every 17th of a pretty one,
  // and a config with multi-byte characters cut inside them (invalid UTF-8 or invalid JSON).
  const compact = new TextEncoder().encode(JSON.stringify(minimal));
  for (let i = 0; i < compact.length; i += 2) {
    add("truncated", `compact[0:${i}]`, compact.slice(0, i), [E.decode], commands[i % 5]);
  }
  const pretty = new TextEncoder().encode(JSON.stringify(base, null, 2));
  for (let i = 1; i < pretty.length; i += 17) {
    add("truncated", `pretty[0:${i}]`, pretty.slice(0, i), [E.decode], commands[i % 5]);
  }
  const wide = new TextEncoder().encode(
    JSON.stringify({ ...minimal, dns: { domain: "ドメイン.例え" } }),
  );
  const dnsAt = new TextDecoder().decode(wide).indexOf("ドメイン");
  const wideStart = new TextEncoder().encode(new TextDecoder().decode(wide).slice(0, dnsAt)).length;
  for (let i = wideStart; i < wide.length; i++) {
    add("truncated", `multibyte[0:${i}]`, wide.slice(0, i), [E.decode]);
  }

  // --- not a JSON object, or not JSON at all.
  const notObject: [string, string | Uint8Array][] = [
    ["empty", ""],
    ["whitespace", " \n\t "],
    ["null", "null"],
    ["true", "true"],
    ["number", "1"],
    ["negative zero", "-0"],
    ["string", '"{}"'],
    ["array", "[]"],
    ["array of config", JSON.stringify([minimal])],
    ["single quotes", "{'cniVersion':'1.1.0'}"],
    ["NaN", "NaN"],
    ["trailing garbage", JSON.stringify(minimal) + "x"],
    ["two objects", JSON.stringify(minimal) + JSON.stringify(minimal)],
    ["trailing comma", JSON.stringify(minimal).slice(0, -1) + ",}"],
    ["comment", "// config\n" + JSON.stringify(minimal)],
    ["NUL byte", JSON.stringify(minimal).replace(":", "\0:")],
    ["invalid UTF-8", new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])],
    ["overlong UTF-8", new Uint8Array([0x7b, 0x22, 0xc0, 0xaf, 0x22, 0x7d])],
    ["UTF-16", new Uint8Array([...JSON.stringify(minimal)].flatMap((c) => [c.charCodeAt(0), 0]))],
    ["lone surrogate bytes", new Uint8Array([0x7b, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x7d])],
    ["deep nesting", "[".repeat(100_000) + "]".repeat(100_000)],
    ["1 MB garbage", "#".repeat(MB)],
    ["1 MB whitespace", " ".repeat(MB)],
    ["unterminated string", '{"cniVersion":"1.1.0'],
  ];
  for (const [label, stdin] of notObject) {
    add("not-an-object", label, stdin, [E.decode], "ADD");
    add("not-an-object", label, stdin, [E.decode], "DEL");
  }
  add("not-an-object", "empty object", "{}", [E.config]);

  // --- wrong types for every field. Unsupported reference-plugin options given a non-default
  // value of the wrong type are refused as unsupported (2) or invalid (7).
  const fields: [string, (string | number)[], Kind | Kind[], readonly number[]][] = [
    ["cniVersion", ["cniVersion"], "string", [E.config]],
    ["name", ["name"], "string", [E.config]],
    ["type", ["type"], "string", [E.config]],
    ["bridge", ["bridge"], "string", [E.config]],
    ["mtu", ["mtu"], "number", [E.config]],
    ["isGateway", ["isGateway"], "boolean", [E.config]],
    ["isDefaultGateway", ["isDefaultGateway"], "boolean", [E.config]],
    ["hairpinMode", ["hairpinMode"], "boolean", [E.config]],
    ["promiscMode", ["promiscMode"], "boolean", [E.config]],
    ["pinDir", ["pinDir"], "string", [E.config]],
    ["stateDir", ["stateDir"], "string", [E.config]],
    ["ipam", ["ipam"], "object", [E.config]],
    ["args", ["args"], "object", [E.config]],
    ["args.cni", ["args", "cni"], "object", [E.config]],
    ["args.cni.ips", ["args", "cni", "ips"], "array", [E.config]],
    ["args.cni.ips[0]", ["args", "cni", "ips", 0], "string", [E.config]],
    ["args.cni.identity", ["args", "cni", "identity"], "number", [E.config]],
    // Labels may also be the CONVENTIONS.md list of {key, value} objects.
    ["args.cni.labels", ["args", "cni", "labels"], ["object", "array"], [E.config]],
    ["args.cni.labels.app", ["args", "cni", "labels", "app"], "string", [E.config]],
    ["runtimeConfig", ["runtimeConfig"], "object", [E.config]],
    ["runtimeConfig.ips", ["runtimeConfig", "ips"], "array", [E.config]],
    ["runtimeConfig.ips[0]", ["runtimeConfig", "ips", 0], "string", [E.config]],
    ["runtimeConfig.ipRanges", ["runtimeConfig", "ipRanges"], "array", [E.config]],
    ["runtimeConfig.ipRanges[0]", ["runtimeConfig", "ipRanges", 0], "array", [E.config]],
    ["dns", ["dns"], "object", [E.config]],
    ["dns.nameservers", ["dns", "nameservers"], "array", [E.config]],
    ["dns.domain", ["dns", "domain"], "string", [E.config]],
    ["dns.search", ["dns", "search"], "array", [E.config]],
    ["dns.options", ["dns", "options"], "array", [E.config]],
    ["prevResult", ["prevResult"], "object", [E.config]],
    ["prevResult.interfaces", ["prevResult", "interfaces"], "array", [E.config]],
    ["prevResult.ips", ["prevResult", "ips"], "array", [E.config]],
    ["prevResult.ips[0]", ["prevResult", "ips", 0], "object", [E.config]],
    ["prevResult.routes", ["prevResult", "routes"], "array", [E.config]],
    ["ipam.type", ["ipam", "type"], "string", [E.config]],
    ["ipam.subnet", ["ipam", "subnet"], "string", [E.config]],
    ["ipam.rangeStart", ["ipam", "rangeStart"], "string", [E.config]],
    ["ipam.rangeEnd", ["ipam", "rangeEnd"], "string", [E.config]],
    ["ipam.gateway", ["ipam", "gateway"], "string", [E.config]],
    ["ipam.dataDir", ["ipam", "dataDir"], "string", [E.config]],
    ["ipam.resolvConf", ["ipam", "resolvConf"], "string", [E.config]],
    ["ipam.routes", ["ipam", "routes"], "array", [E.config]],
    ["ipam.routes[0]", ["ipam", "routes", 0], "object", [E.config]],
    ["ipam.routes[0].dst", ["ipam", "routes", 0, "dst"], "string", [E.config]],
    ["ipam.routes[0].gw", ["ipam", "routes", 0, "gw"], "string", [E.config]],
    ["ipam.routes[0].mtu", ["ipam", "routes", 0, "mtu"], "number", [E.config]],
    ["ipam.ranges", ["ipam", "ranges"], "array", [E.config]],
    ["ipam.ranges[0]", ["ipam", "ranges", 0], "array", [E.config]],
    ["ipam.ranges[0][0]", ["ipam", "ranges", 0, 0], "object", [E.config]],
    ["ipam.ranges[0][0].subnet", ["ipam", "ranges", 0, 0, "subnet"], "string", [E.config]],
    ["ipMasq", ["ipMasq"], "boolean", [E.config]],
    ["vlan", ["vlan"], "number", [E.unsupported, E.config]],
    ["vlanTrunk", ["vlanTrunk"], "array", [E.unsupported, E.config]],
    ["macspoofchk", ["macspoofchk"], "boolean", [E.unsupported, E.config]],
    ["forceAddress", ["forceAddress"], "boolean", [E.unsupported, E.config]],
  ];
  for (const [label, path, kind, codes] of fields) {
    for (const [k, value] of SAMPLES) {
      if (k === kind || (Array.isArray(kind) && kind.includes(k))) continue;
      add("wrong-type", `${label} = ${JSON.stringify(value)}`, setPath(base, path, value), codes);
    }
  }
  // The fields DEL, GC and STATUS read must be type-checked by them too.
  for (const command of ["DEL", "GC", "STATUS"]) {
    for (
      const path of [["name"], ["cniVersion"], ["ipam"], ["ipam", "dataDir"], ["ipam", "type"]]
    ) {
      add("wrong-type", `${command} ${path.join(".")} = 42`, setPath(minimal, path, 42), [
        E.config,
      ], command);
    }
  }
  add(
    "wrong-type",
    "GC valid-attachments string",
    {
      ...minimal,
      "cni.dev/valid-attachments": "x",
    },
    [E.config],
    "GC",
  );
  for (
    const entry of [5, "x", null, {}, { containerID: 1, ifname: "eth0" }, { containerID: "a" }]
  ) {
    add(
      "wrong-type",
      `GC valid-attachments [${JSON.stringify(entry)}]`,
      {
        ...minimal,
        "cni.dev/valid-attachments": [entry],
      },
      [E.config],
      "GC",
    );
  }

  // --- required fields missing.
  for (const path of [["cniVersion"], ["name"], ["type"], ["ipam"], ["ipam", "type"]]) {
    for (const command of ["ADD", "DEL", "GC"]) {
      add(
        "missing-field",
        `${command} without ${path.join(".")}`,
        setPath(minimal, path, undefined),
        [
          E.config,
        ],
        command,
      );
    }
  }
  add(
    "missing-field",
    "ipam without subnet or ranges",
    setPath(minimal, ["ipam", "subnet"], undefined),
    [
      E.config,
    ],
  );

  // --- huge strings (1 MB in the config; environment strings are capped by the kernel).
  const huge = (c: string) => c.repeat(MB);
  const hugeConfig: [string, (string | number)[], readonly number[]][] = [
    ["name", ["name"], [E.config]],
    ["cniVersion", ["cniVersion"], [E.version]],
    ["bridge", ["bridge"], [E.config]],
    ["pinDir", ["pinDir"], [E.config]],
    ["stateDir", ["stateDir"], [E.config]],
    ["ipam.dataDir", ["ipam", "dataDir"], [E.config]],
    ["ipam.type", ["ipam", "type"], [E.config]],
    ["ipam.subnet", ["ipam", "subnet"], [E.config]],
    ["ipam.gateway", ["ipam", "gateway"], [E.config]],
    ["args.cni.ips[0]", ["args", "cni", "ips", 0], [E.config]],
  ];
  for (const [label, path, codes] of hugeConfig) {
    const v = label.endsWith("Dir") ? `/${huge("d")}` : huge("a");
    add("huge", `1 MB ${label}`, setPath(minimal, path, v), codes);
    if (label === "name") add("huge", `DEL 1 MB ${label}`, setPath(minimal, path, v), codes, "DEL");
  }
  add("huge", "1 MB resolvConf path", setPath(minimal, ["ipam", "resolvConf"], `/${huge("r")}`), [
    E.io,
    E.config,
  ]);
  add("huge", "path component of 300 bytes in pinDir", {
    ...minimal,
    pinDir: `/sys/fs/bpf/${"p".repeat(300)}`,
  }, [E.config]);
  add("huge", "name of 256 characters", { ...minimal, name: "n".repeat(256) }, [E.config]);
  add(
    "huge",
    "DEL name of 256 characters",
    { ...minimal, name: "n".repeat(256) },
    [E.config],
    "DEL",
  );
  const hugeEnv: [string, string, readonly number[]][] = [
    ["CNI_CONTAINERID", "c".repeat(ENV_HUGE), [E.env]],
    ["CNI_CONTAINERID", "c".repeat(300), [E.env]],
    ["CNI_IFNAME", "i".repeat(ENV_HUGE), [E.env]],
    ["CNI_NETNS", `/${"n".repeat(ENV_HUGE)}`, [E.env]],
    ["CNI_ARGS", `IP=${"1".repeat(ENV_HUGE)}`, [E.env]],
    ["CNI_ARGS", `EBPFCNI_IDENTITY=${"9".repeat(ENV_HUGE)}`, [E.env]],
    ["CNI_COMMAND", "A".repeat(ENV_HUGE), [E.env]],
  ];
  for (const [name, value, codes] of hugeEnv) {
    add("huge", `${name} of ${value.length} bytes`, minimal, codes, "ADD", { [name]: value });
    if (name === "CNI_CONTAINERID") {
      add("huge", `DEL ${name} of ${value.length} bytes`, minimal, codes, "DEL", { [name]: value });
    }
  }

  // --- unicode where names must be plain.
  for (const name of ["网络", "tn-é", "tn\u202e", "tn\u200b", "tn\ud800", "ｔｎ", "tn-😀"]) {
    add("unicode", `name ${JSON.stringify(name)}`, { ...minimal, name }, [E.config]);
  }
  for (const id of ["容器", "c\u200b1", "c\u00a01", "ctr\u202e", "😀"]) {
    add("unicode", `CNI_CONTAINERID ${JSON.stringify(id)}`, minimal, [E.env], "ADD", {
      CNI_CONTAINERID: id,
    });
    add("unicode", `DEL CNI_CONTAINERID ${JSON.stringify(id)}`, minimal, [E.env], "DEL", {
      CNI_CONTAINERID: id,
    });
  }
  for (const ifname of ["eth\u00a00", "eth0\u2028", "ééééééééx", "😀😀😀😀", "eth\u30000"]) {
    add("unicode", `CNI_IFNAME ${JSON.stringify(ifname)}`, minimal, [E.env], "ADD", {
      CNI_IFNAME: ifname,
    });
  }
  for (const bridge of ["brücke-brücke-x", "br\u3000x", "br\u00a0x", "😀😀😀😀"]) {
    add("unicode", `bridge ${JSON.stringify(bridge)}`, { ...minimal, bridge }, [E.config]);
  }
  add("unicode", "CNI_COMMAND with zero-width space", minimal, [E.env], "ADD", {
    CNI_COMMAND: "ADD\u200b",
  });
  add("unicode", "fullwidth cniVersion", { ...minimal, cniVersion: "１.１.０" }, [E.version]);
  add("unicode", "unicode subnet digits", setPath(minimal, ["ipam", "subnet"], "١٠.0.0.0/24"), [
    E.config,
  ]);

  // --- path traversal in names and directories.
  const up = "../../etc";
  for (
    const id of [up, "..", ".", "a/../../etc", "/etc/passwd", "a/b", "ctr\\..\\..\\etc", ".hidden"]
  ) {
    add("traversal", `CNI_CONTAINERID ${id}`, minimal, [E.env], "ADD", { CNI_CONTAINERID: id });
    add("traversal", `DEL CNI_CONTAINERID ${id}`, minimal, [E.env], "DEL", { CNI_CONTAINERID: id });
  }
  for (const ifname of [up, "..", ".", "a/b", "/etc", "eth0/..", "eth:0"]) {
    add("traversal", `CNI_IFNAME ${ifname}`, minimal, [E.env], "ADD", { CNI_IFNAME: ifname });
    add("traversal", `DEL CNI_IFNAME ${ifname}`, minimal, [E.env], "DEL", { CNI_IFNAME: ifname });
  }
  for (const name of [up, "..", ".", "a/b", "a/../b", "-net", "net%2f..", "net\\.."]) {
    for (const command of ["ADD", "DEL", "GC", "STATUS"]) {
      add("traversal", `${command} name ${name}`, { ...minimal, name }, [E.config], command);
    }
  }
  const dirs = [
    up,
    "etc",
    "./state",
    "/tmp/../etc",
    `${net.dir}/../../../../../etc`,
    "/sys/fs/bpf/../../etc",
    "",
  ];
  for (const dir of dirs) {
    for (const command of ["ADD", "DEL", "GC", "STATUS"]) {
      add("traversal", `${command} pinDir ${JSON.stringify(dir)}`, { ...minimal, pinDir: dir }, [
        E.config,
      ], command);
      add(
        "traversal",
        `${command} stateDir ${JSON.stringify(dir)}`,
        {
          ...minimal,
          stateDir: dir,
        },
        [E.config],
        command,
      );
      if (dir !== "") { // an empty dataDir means the default, as in host-local
        add(
          "traversal",
          `${command} dataDir ${JSON.stringify(dir)}`,
          setPath(minimal, [
            "ipam",
            "dataDir",
          ], dir),
          [E.config],
          command,
        );
      }
    }
  }
  for (const type of [up, "/bin/sh", "..", ".", "a/b"]) {
    add("traversal", `ipam.type ${type}`, setPath(minimal, ["ipam", "type"], type), [E.config]);
    add("traversal", `DEL ipam.type ${type}`, setPath(minimal, ["ipam", "type"], type), [
      E.config,
    ], "DEL");
  }
  for (
    const netns of [
      up,
      "netns",
      `/var/run/netns/${up}`,
      "/etc/passwd",
      "/dev/null",
      "/",
      "/nonexistent/ns",
    ]
  ) {
    add("traversal", `CNI_NETNS ${netns}`, minimal, [E.env], "ADD", { CNI_NETNS: netns });
  }
  add("traversal", "CNI_ARGS IP=../../etc", minimal, [E.env], "ADD", { CNI_ARGS: `IP=${up}` });
  add(
    "traversal",
    "resolvConf ../../etc/passwd",
    setPath(minimal, ["ipam", "resolvConf"], `${up}/passwd`),
    [
      E.io,
      E.config,
    ],
  );

  // --- MTU out of range or not an integer.
  for (const mtu of [-1, -1500, 0, 67, 65536, 2 ** 31, 2 ** 53, 1e300, 1500.5, -0.5]) {
    add("mtu", `mtu ${mtu}`, { ...minimal, mtu }, [E.config]);
  }

  // --- overlapping and inverted ranges.
  const sub = net.subnet;
  const overlapping: [string, Obj][] = [
    ["same subnet twice", { subnet: undefined, ranges: [[{ subnet: sub }], [{ subnet: sub }]] }],
    ["overlap in one set", { subnet: undefined, ranges: [[{ subnet: sub }, { subnet: sub }]] }],
    ["subnet and range set overlap", { ranges: [[{ subnet: sub }]] }],
    ["nested subnets", {
      subnet: undefined,
      ranges: [[{ subnet: "10.97.0.0/16" }], [{ subnet: "10.97.3.0/24" }]],
    }],
    ["partial range overlap", {
      subnet: undefined,
      ranges: [[
        { subnet: sub, rangeStart: `${prefix}.10`, rangeEnd: `${prefix}.100` },
        { subnet: sub, rangeStart: `${prefix}.50`, rangeEnd: `${prefix}.150` },
      ]],
    }],
    ["rangeStart after rangeEnd", { rangeStart: `${prefix}.100`, rangeEnd: `${prefix}.10` }],
    ["rangeStart outside subnet", { rangeStart: "10.1.1.1" }],
    ["rangeEnd outside subnet", { rangeEnd: "10.1.1.1" }],
    ["gateway outside subnet", { gateway: "10.1.1.1" }],
    ["empty range set", { subnet: undefined, ranges: [[]] }],
    ["no ranges", { subnet: undefined, ranges: [] }],
    ["range without subnet", { subnet: undefined, ranges: [[{ rangeStart: `${prefix}.10` }]] }],
    ["rangeStart without subnet", { subnet: undefined, rangeStart: `${prefix}.10` }],
  ];
  for (const [label, ipam] of overlapping) {
    const conf = net.config({}, ipam);
    for (const [k, v] of Object.entries(ipam)) {
      if (v === undefined) delete (conf.ipam as Obj)[k];
    }
    add("ranges", label, conf, [E.config]);
  }
  add("ranges", "runtime ipRanges overlapping the subnet", {
    ...minimal,
    runtimeConfig: { ipRanges: [[{ subnet: sub }]] },
  }, [E.config]);

  // --- bad subnets, and requests outside them.
  const subnets = [
    "10.0.0.0/33",
    "10.0.0.0",
    "300.0.0.0/24",
    "10.0.0.0/-1",
    "10.0.0/24",
    "10.0.0.0.0/24",
    "10.0.0.0/31",
    "10.0.0.0/32",
    " 10.0.0.0/24",
    "10.0.0.0/24 ",
    "abc",
    "0x0a000000/24",
    "010.0.0.0/24",
    "10.0.0.0/24/24",
    "/24",
    "10.0.0.0/",
    "10.0.0.0/0x18",
  ];
  for (const subnet of subnets) {
    add(
      "subnet",
      `subnet ${JSON.stringify(subnet)}`,
      setPath(minimal, ["ipam", "subnet"], subnet),
      [
        E.config,
      ],
    );
    const podcidr: Obj = { ...minimal, podcidr: subnet };
    delete podcidr.ipam;
    add("subnet", `podcidr ${JSON.stringify(subnet)}`, podcidr, [E.config]);
  }
  add("subnet", "requested IP outside the subnet", minimal, [E.unavailable], "ADD", {
    CNI_ARGS: "IP=192.0.2.1",
  });
  add("subnet", "requested IP is the gateway", minimal, [E.unavailable], "ADD", {
    CNI_ARGS: `IP=${net.gateway}`,
  });
  add("subnet", "requested IP is the network address", minimal, [E.unavailable], "ADD", {
    CNI_ARGS: `IP=${prefix}.0`,
  });

  // --- IPv6 (the maps are IPv4-only).
  for (const subnet of ["fd00::/64", "::/0", "2001:db8::/32", "::ffff:10.0.0.0/120"]) {
    add("ipv6", `subnet ${subnet}`, setPath(minimal, ["ipam", "subnet"], subnet), [E.config]);
    const podcidr: Obj = { ...minimal, podcidr: subnet };
    delete podcidr.ipam;
    add("ipv6", `podcidr ${subnet}`, podcidr, [E.config]);
  }
  add("ipv6", "ranges v6", setPath(minimal, ["ipam", "ranges"], [[{ subnet: "fd00::/64" }]]), [
    E.config,
  ]);
  add("ipv6", "route ::/0", setPath(minimal, ["ipam", "routes"], [{ dst: "::/0" }]), [E.config]);
  add("ipv6", "args.cni.ips v6", { ...minimal, args: { cni: { ips: ["fd00::2"] } } }, [E.config]);
  add("ipv6", "runtimeConfig.ips v6", { ...minimal, runtimeConfig: { ips: ["fd00::2"] } }, [
    E.config,
  ]);
  add("ipv6", "CNI_ARGS IP v6", minimal, [E.env], "ADD", { CNI_ARGS: "IP=fd00::2" });

  // --- versions and commands.
  for (const v of ["9.9.9", "0.1.0", "0.2.0", "1.1", "2", "", "v1.1.0", "1.1.0-rc1", "1.1.0.0"]) {
    add("version", `cniVersion ${JSON.stringify(v)}`, { ...minimal, cniVersion: v }, [E.version]);
  }
  add("version", "CHECK on 0.3.1", { ...minimal, cniVersion: "0.3.1" }, [E.version], "CHECK");
  add("version", "GC on 1.0.0", { ...minimal, cniVersion: "1.0.0" }, [E.version], "GC");
  add("version", "STATUS on 0.4.0", { ...minimal, cniVersion: "0.4.0" }, [E.version], "STATUS");
  add("unsupported", "vlan 5", { ...minimal, vlan: 5 }, [E.unsupported]);
  add("unsupported", "vlanTrunk", { ...minimal, vlanTrunk: [{ id: 5 }] }, [E.unsupported]);
  add("unsupported", "macspoofchk", { ...minimal, macspoofchk: true }, [E.unsupported]);
  add("unsupported", "portIsolation", { ...minimal, portIsolation: true }, [E.unsupported]);
  add("values", "identity 0", { ...minimal, args: { cni: { identity: 0 } } }, [E.config]);
  add("values", "identity 2^32", { ...minimal, args: { cni: { identity: 2 ** 32 } } }, [E.config]);
  add("values", "identity 1.5", { ...minimal, args: { cni: { identity: 1.5 } } }, [E.config]);
  add("values", "ipam type unknown plugin", setPath(minimal, ["ipam", "type"], "no-such-ipam"), [
    E.config,
  ]);
  add("values", "bridge empty", { ...minimal, bridge: "" }, [E.config]);
  add("values", "name empty", { ...minimal, name: "" }, [E.config]);
  add("values", "type empty", { ...minimal, type: "" }, [E.config]);
  for (
    const args of ["garbage", "=x", "IP", ";=;", "IP=999.1.1.1", "IP=10.0.0.1/40", "IP=10.0.0.01"]
  ) {
    add("values", `CNI_ARGS ${args}`, minimal, [E.env], "ADD", { CNI_ARGS: args });
  }
  for (const id of ["0", "-1", "99999999999", "1e3", "0x10", " 5", "abc"]) {
    add("values", `EBPFCNI_IDENTITY ${id}`, minimal, [E.env], "ADD", {
      CNI_ARGS: `EBPFCNI_IDENTITY=${id}`,
    });
  }
  for (const command of ["add", "DELETE", "ADD ", "VERSIONS", "check", "Gc", "VERSION\t"]) {
    add("values", `CNI_COMMAND ${JSON.stringify(command)}`, minimal, [E.env], "ADD", {
      CNI_COMMAND: command,
    });
  }

  // --- environment variables missing (unset or empty) in every combination.
  const vars = ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"];
  const required: Record<string, string[]> = {
    ADD: vars,
    CHECK: vars,
    DEL: ["CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"],
  };
  for (const command of ["ADD", "CHECK", "DEL"]) {
    for (let mask = 1; mask < 16; mask++) {
      const gone = vars.filter((_, i) => mask & (1 << i));
      if (!gone.some((v) => required[command]!.includes(v))) continue;
      for (const how of ["unset", "empty"]) {
        const env = Object.fromEntries(gone.map((v) => [v, how === "unset" ? undefined : ""]));
        add("env-missing", `${command} ${how} ${gone.join("+")}`, minimal, [E.env], command, env);
      }
    }
  }
  add("env-missing", "CNI_COMMAND empty", minimal, [E.env], "ADD", { CNI_COMMAND: "" });
  add("env-missing", "everything empty", minimal, [E.env], "ADD", {
    CNI_COMMAND: "",
    CNI_CONTAINERID: "",
    CNI_NETNS: "",
    CNI_IFNAME: "",
    CNI_PATH: "",
  });

  return cases;
}

/** Default env of a command; DEL targets the live pod so a DEL that acted would show. */
function callOf(c: Case, i: number, ns: string): RawCniCall {
  const attachment = c.command === "DEL"
    ? { containerId: LIVE, netns: ns, ifname: "eth0" }
    : { containerId: `bad-${i}`, netns: ns, ifname: "eth0" };
  return { command: c.command, ...attachment, env: c.env ?? {}, config: c.stdin };
}

/**
 * Every name the corpus could make the plugin create: links (bridges named in the configs, the
 * default bridge, the host veth of every container ID / ifname pair, the ifnames themselves in
 * case a container end landed on the host) and bpffs entries (the first component below
 * /sys/fs/bpf of every pinDir, the default's included). Other tests, demos and benchmarks run
 * on this host at the same time, so names outside these sets are not compared.
 */
function candidates(net: TestNetwork, cases: Case[]): { links: Set<string>; pins: Set<string> } {
  const links = new Set([net.bridge, DEFAULT_BRIDGE, hostVethName(LIVE, "eth0"), "eth0"]);
  const pins = new Set([net.pinDir, DEFAULT_PIN_DIR].map((p) => p.split("/")[4]!));
  cases.forEach((c, i) => {
    const cid = c.env?.CNI_CONTAINERID ?? (c.command === "DEL" ? LIVE : `bad-${i}`);
    const ifname = c.env?.CNI_IFNAME ?? "eth0";
    links.add(hostVethName(cid, ifname)).add(ifname);
    const conf = c.stdin instanceof Uint8Array || typeof c.stdin === "string" ? {} : c.stdin;
    if (typeof conf.bridge === "string") links.add(conf.bridge);
    if (typeof conf.pinDir === "string" && conf.pinDir.startsWith("/sys/fs/bpf/")) {
      pins.add(conf.pinDir.split("/")[4]!);
    }
  });
  return { links, pins };
}

/** Where an absolute traversal ("/tmp/../etc") or a default directory would put the
 * network's lease or state directory. */
function strays(net: TestNetwork): string[] {
  return ["", "/etc", "/tmp", DEFAULT_DATA_DIR, DEFAULT_STATE_DIR].map((d) => `${d}/${net.name}`);
}

async function snapshot(
  net: TestNetwork,
  netnses: string[],
  ours: { links: Set<string>; pins: Set<string> },
) {
  const prog = await pinnedProgId(net);
  return {
    links: (await hostLinks()).filter((l) => ours.links.has(l)),
    ports: (await net.bridgePorts()).sort(),
    netns: (await netnsList()).filter((n) => net.netnses.includes(n)),
    netnsLinks: await Promise.all(netnses.map(netnsLinks)),
    bpffs: listDir("/sys/fs/bpf").filter((p) => ours.pins.has(p)),
    pins: listDir(net.pinDir),
    prog,
    tc: (await tcAttachments()).filter((t) => t.id === prog || ours.links.has(t.devname)),
    endpoints: [...(await endpointIps(net))].sort(),
    files: tree(net.dir),
    strays: strays(net).filter(exists),
  };
}

function describe(c: Case, reply: { code: number; stdout: string; stderr: string }): string {
  const cut = (s: string) => (s.length > 400 ? `${s.slice(0, 400)}...` : s);
  return `[${c.gen}] ${c.label} (${c.command}): exit ${reply.code}, expected code ${
    c.codes.join("|")
  }\n  stdout: ${cut(reply.stdout.trim())}\n  stderr: ${cut(reply.stderr.trim())}`;
}

/** Every way the reply can fall short of a spec error; [] when it is one. */
function problems(c: Case, r: { code: number; stdout: string; stderr: string }): string[] {
  const out: string[] = [];
  if (r.code === 0) out.push("exit status 0");
  if (/^\s+at |\bat .*:\d+:\d+\)?$|Uncaught|panicked/m.test(r.stdout)) {
    out.push("stack trace on stdout");
  }
  if (/Uncaught|panicked|RUST_BACKTRACE/.test(r.stderr)) out.push("crash on stderr");
  const lines = r.stdout.split("\n").filter((l) => l.trim() !== "");
  if (lines.length !== 1) out.push(`${lines.length} lines on stdout`);
  let json: unknown;
  try {
    json = JSON.parse(r.stdout);
  } catch {
    out.push("stdout is not JSON");
    return out;
  }
  const o = json as Obj;
  if (typeof o !== "object" || o === null || Array.isArray(o)) return [...out, "not an object"];
  if (!Number.isInteger(o.code)) out.push("code is not an integer");
  else if (!c.codes.includes(o.code as number)) out.push(`code ${o.code}`);
  if (typeof o.msg !== "string" || o.msg === "") out.push("msg is not a non-empty string");
  if (typeof o.cniVersion !== "string") out.push("no cniVersion");
  if (o.details !== undefined && typeof o.details !== "string") out.push("details not a string");
  if ("ips" in o || "interfaces" in o) out.push("looks like a result");
  return out;
}

Deno.test("bad input corpus: every case is a spec error and the host is unchanged", async () => {
  await withCheckedNetwork(async (net) => {
    const ns = await net.netns();
    const liveNs = await net.netns();
    const cwd = `${net.dir}/cwd/a/b`;
    Deno.mkdirSync(cwd, { recursive: true });

    // A node in use: datapath loaded, bridge up, one live pod that must survive every case.
    const live = await net.run({
      command: "ADD",
      containerId: LIVE,
      netns: liveNs,
      ifname: "eth0",
    });
    assert.equal(live.code, 0, `ADD of the live pod failed: ${live.stdout}${live.stderr}`);
    const liveIp = resultIp(live.json);

    // The config the wrong-type cases start from is valid as it is: each case fails only
    // for the field it breaks.
    const full = { containerId: "corpus-full", netns: ns, ifname: "eth0", config: fullConfig(net) };
    const ok = await net.run({ command: "ADD", ...full });
    assert.equal(ok.code, 0, `the full config is refused: ${ok.stdout}${ok.stderr}`);
    assert.equal((ok.json?.ips as unknown[]).length, 3);
    assert.equal((await net.run({ command: "DEL", ...full })).code, 0);

    // The corpus's DELs target the live pod with its real netns.
    const cases = corpus(net);
    assert.ok(cases.length >= 500, `only ${cases.length} cases`);

    const ours = candidates(net, cases);
    const before = await snapshot(net, [ns, liveNs], ours);
    assert.ok(before.prog !== undefined && before.endpoints.length === 1);

    const failures: string[] = [];
    const byGen = new Map<string, number>();
    let after: typeof before;
    try {
      await pool(cases, 4, async (c, i) => {
        byGen.set(c.gen, (byGen.get(c.gen) ?? 0) + 1);
        const call = callOf(c, i, c.command === "DEL" ? liveNs : ns);
        try {
          const r = await runPluginIn(cwd, call, net.config());
          const p = problems(c, r);
          if (p.length) failures.push(`${p.join(", ")}: ${describe(c, r)}`);
        } catch (err) {
          failures.push(`[${c.gen}] ${c.label}: could not run: ${err}`);
        }
      });
    } finally {
      // Should a traversal have got through, do not leave its directory behind (the assertion
      // below reports it; the name is this network's random one, so nothing else is removed).
      after = await snapshot(net, [ns, liveNs], ours);
      for (const p of after.strays) Deno.removeSync(p, { recursive: true });
    }
    console.log(
      `${cases.length} cases: ${
        [...byGen].map(([g, k]) => `${g} ${k}`).join(", ")
      }; ${failures.length} failed`,
    );
    // One assertion, so that a run shows both the failed cases and what changed on the host.
    assert.deepEqual(
      { failures, host: after },
      { failures: [], host: before },
      `${failures.length} of ${cases.length} cases failed`,
    );
    assert.deepEqual(net.leases(), [liveIp]);

    const d = await net.run({ command: "DEL", containerId: LIVE, netns: liveNs, ifname: "eth0" });
    assert.equal(d.code, 0);
    assert.deepEqual(net.leases(), []);
    assert.deepEqual(await netnsLinks(liveNs), ["lo"]);
  });
});
