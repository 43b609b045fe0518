// `ebpfcni status`, `version` and the read-only guarantees, through the built binary.
import assert from "node:assert/strict";
import { objGet, objPin } from "../ffi/bpf.ts";
import { closeFd } from "../ffi/libc.ts";
import { NetlinkSocket } from "../src/net/socket.ts";
import { ifNameToIndex } from "../ffi/libc.ts";
import { attach, attachedProgramId } from "../src/datapath/tc.ts";
import { VERSION } from "../src/version.ts";
import { STAT_NAMES } from "../src/spec/bpf_layout.ts";
import { exists, ip4, ipv4Frame, sendFrames, withVeth } from "./_kernel.ts";
import { assertFails, ebpfcni, ok, withEmptyPinDir, withMaps } from "./_cli.ts";

interface Program {
  pinned: boolean;
  id?: number;
  tag?: string;
  thisBuild?: boolean;
  usesPinnedMaps?: boolean;
}

interface Status {
  version: string;
  pinDir: string;
  pinDirExists: boolean;
  bpffs: { mounted: boolean; mountPoint: string | null; fsType: string | null };
  mode: { policyMode: string; conntrack: boolean; serviceCIDRs: string[] } | null;
  maps: { name: string; pinned: boolean; id?: number; entries?: number; maxEntries: number }[];
  program: Program;
  egressProgram: Program;
  counters: Record<string, number> | null;
  attached: {
    name: string;
    ifindex: number;
    kind: string;
    hook: string;
    programId: number;
    pinned: boolean;
  }[];
}

async function status(pinDir: string): Promise<Status> {
  return JSON.parse(await ok(["status", "--json", "--pin-dir", pinDir]));
}

Deno.test("list and status without pinned maps fail clearly and create nothing", async () => {
  await withEmptyPinDir(async (pinDir) => {
    const missing = `No maps pinned under "${pinDir}": run a CNI ADD first or ` +
      `"ebpfcni status --init --pin-dir ${pinDir}"`;

    const text = await ebpfcni(["status", "--pin-dir", pinDir]);
    assertFails(text, 1, missing);
    assert.match(text.stdout, new RegExp(`^pin directory +${pinDir} \\(does not exist\\)$`, "m"));
    assert.match(text.stdout, /^bpffs +mounted at \/sys\/fs\/bpf$/m);
    assert.match(text.stdout, /^endpoint_map +- +- +16384 +not pinned$/m);

    const json = await ebpfcni(["status", "--json", "--pin-dir", pinDir]);
    assertFails(json, 1, missing);
    const s: Status = JSON.parse(json.stdout);
    assert.equal(s.pinDirExists, false);
    assert.equal(s.program.pinned, false);
    assert.equal(s.counters, null);
    assert.deepEqual(
      s.maps.map((m) => [m.name, m.pinned]),
      [
        "endpoint_map",
        "policy_map",
        "stats_map",
        "config_map",
        "veth_map",
        "host_map",
        "ipcache_map",
        "cidr_map",
        "rule_map",
        "isolation_map",
        "ct_map",
        "frag_map",
        "pair_stats_map",
        "events",
        "rate_map",
        "ct_est_map",
        "ct_quota_map",
      ].map((name) => [name, false]),
    );

    assertFails(
      await ebpfcni(["endpoint", "list", "--pin-dir", pinDir]),
      1,
      `No endpoint_map pinned under "${pinDir}": run a CNI ADD first or "ebpfcni status --init --pin-dir ${pinDir}"`,
    );
    assertFails(
      await ebpfcni(["policy", "list", "--json"], undefined, { EBPFCNI_PIN_DIR: pinDir }),
      1,
      `No policy_map pinned under "${pinDir}": run a CNI ADD first or "ebpfcni status --init --pin-dir ${pinDir}"`,
    );
    assert.equal(exists(pinDir), false);
  });
});

Deno.test("status --init pins the datapath once; status reports maps, program and version", async () => {
  await withEmptyPinDir(async (pinDir) => {
    const init = await ebpfcni(["status", "--init", "--pin-dir", pinDir]);
    assert.equal(init.code, 0, init.stderr);
    assert.equal(init.stderr, `ebpfcni: loaded the datapath and pinned it under "${pinDir}"\n`);
    for (const pin of ["endpoint_map", "policy_map", "stats_map", "tc_prog", "tc_prog_egress"]) {
      assert.ok(exists(`${pinDir}/${pin}`), pin);
    }
    const first = await status(pinDir);
    // A second --init reuses the pins.
    const again = await ebpfcni(["status", "--init", "--json", "--pin-dir", pinDir]);
    assert.equal(again.code, 0);
    assert.equal(again.stderr, "");
    assert.equal(JSON.parse(again.stdout).program.id, first.program.id);

    await ok(["endpoint", "add", "--ip", "10.13.0.2", "--identity", "1001", "--pin-dir", pinDir]);
    await ok([
      "policy",
      "allow",
      "--src",
      "1001",
      "--dst",
      "1002",
      "--symmetric",
      "--pin-dir",
      pinDir,
    ]);
    const s = await status(pinDir);
    assert.equal(s.version, VERSION);
    assert.equal(s.pinDir, pinDir);
    assert.equal(s.pinDirExists, true);
    assert.deepEqual(s.bpffs, { mounted: true, mountPoint: "/sys/fs/bpf", fsType: "bpf" });
    assert.deepEqual(s.maps.map((m) => [m.name, m.entries, m.maxEntries]), [
      ["endpoint_map", 1, 16384],
      ["policy_map", 2, 65536],
      ["stats_map", 18, 18],
      ["config_map", 1, 1],
      ["veth_map", 0, 4096],
      ["host_map", 0, 256],
      ["ipcache_map", 0, 65536],
      ["cidr_map", 0, 16384],
      ["rule_map", 0, 131072],
      ["isolation_map", 0, 65536],
      ["ct_map", 0, 262144],
      ["frag_map", 0, 8192],
      ["pair_stats_map", 0, 16384],
      ["events", 262144, 262144],
      ["rate_map", 1, 1],
      ["ct_est_map", 0, 131072],
      ["ct_quota_map", 0, 65536],
    ]);
    assert.deepEqual(s.mode, { policyMode: "identity", conntrack: false, serviceCIDRs: [] });
    assert.ok(s.maps.every((m) => m.pinned && typeof m.id === "number"));
    assert.equal(s.program.pinned, true);
    assert.match(s.program.tag ?? "", /^[0-9a-f]{16}$/);
    assert.equal(s.program.thisBuild, true);
    assert.equal(s.program.usesPinnedMaps, true);
    assert.deepEqual(Object.keys(s.counters ?? {}), [...STAT_NAMES]);
    assert.equal(s.egressProgram.thisBuild, true);

    const text = await ok(["status", "--pin-dir", pinDir]);
    assert.match(text, new RegExp(`^version +${VERSION.replaceAll(".", "\\.")}$`, "m"));
    assert.match(
      text,
      new RegExp(`^program +id ${s.program.id}, tag ${s.program.tag}, this build$`, "m"),
    );
    assert.match(text, /^MAP +ID +ENTRIES +MAX +FILL$/m);
    assert.match(text, /^endpoint_map +\d+ +1 +16384 +0\.0%$/m);
    assert.match(text, /^policy_map +\d+ +2 +65536 +0\.0%$/m);
    assert.match(text, /^drop_policy +0$/m);
  });
});

Deno.test("status lists links with the pinned program and counts their verdicts", async () => {
  await withMaps(async (pinDir) => {
    await withVeth(async (veth) => {
      const fd = objGet(`${pinDir}/tc_prog`);
      let progId: number;
      try {
        using nl = new NetlinkSocket();
        attach(nl, ifNameToIndex(veth.host), "ingress", fd, "process_tc");
        progId = attachedProgramId(nl, ifNameToIndex(veth.host), "ingress");
      } finally {
        closeFd(fd);
      }
      // From a veth no pod is registered for: dropped and counted as such.
      await sendFrames(veth.netns, veth.peer, [ipv4Frame(ip4("10.99.0.1"), ip4("10.99.0.2"))]);

      const s = await status(pinDir);
      assert.equal(s.program.id, progId);
      const mine = s.attached.find((a) => a.name === veth.host);
      assert.deepEqual(mine, {
        name: veth.host,
        ifindex: ifNameToIndex(veth.host),
        kind: "veth",
        hook: "ingress",
        programId: progId,
        pinned: true,
      });
      assert.ok((s.counters?.drop_no_veth ?? 0) >= 1, JSON.stringify(s.counters));
      const text = await ok(["status", "--pin-dir", pinDir]);
      assert.match(
        text,
        new RegExp(`^${veth.host} +\\d+ +veth +ingress +${progId} \\(pinned\\)$`, "m"),
      );
    });
  });
});

Deno.test("a pin that is not ebpfcni's map is reported and never written to", async () => {
  await withMaps(async (source) => {
    await withEmptyPinDir(async (pinDir) => {
      // The policy map pinned under the endpoint map's name: wrong key and value sizes.
      Deno.mkdirSync(pinDir);
      const fd = objGet(`${source}/policy_map`);
      try {
        objPin(fd, `${pinDir}/endpoint_map`);
      } finally {
        closeFd(fd);
      }
      const wrong = `"${pinDir}/endpoint_map" is not ebpfcni's endpoint_map: key size 8, ` +
        "expected 4, value size 1, expected 4, max entries 65536, expected 16384";
      assertFails(
        await ebpfcni([
          "endpoint",
          "add",
          "--ip",
          "10.0.0.1",
          "--identity",
          "1",
          "--pin-dir",
          pinDir,
        ]),
        1,
        wrong,
      );
      const r = await ebpfcni(["status", "--json", "--pin-dir", pinDir]);
      assertFails(r, 1, wrong);
      assert.deepEqual(JSON.parse(r.stdout).maps[0], {
        name: "endpoint_map",
        pinned: true,
        maxEntries: 16384,
        problem: wrong,
      });
      assert.deepEqual(JSON.parse(await ok(["policy", "list", "--json", "--pin-dir", source])), []);
    });
  });
});

Deno.test("status --init off bpffs fails on one line and pins nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ebpfcni-cli-" });
  try {
    const r = await ebpfcni(["status", "--init", "--pin-dir", `${dir}/pins`]);
    assertFails(
      r,
      1,
      new RegExp(
        `^ebpfcni: Cannot pin under "${dir}/pins": it is on \\w+, not bpffs ` +
          "\\(mount -t bpf bpf /sys/fs/bpf, or choose a --pin-dir on bpffs\\)$",
      ),
    );
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("version, --version and --help exit 0 on stdout", async () => {
  assert.equal(await ok(["version"]), `ebpfcni ${VERSION}\n`);
  assert.equal(await ok(["--version"]), `ebpfcni ${VERSION}\n`);
  assert.match(await ok(["--help"]), /^Usage: ebpfcni \[--pin-dir DIR\] COMMAND \[FLAGS\]$/m);
  assert.match(await ok(["policy", "import", "-h"]), /^Usage: ebpfcni policy import FILE$/m);
  assertFails(await ebpfcni([]), 2, "Missing command (see ebpfcni --help)");
});
