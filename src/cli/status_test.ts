// Unit tests for the text form of `ebpfcni status` (collecting it needs the kernel: see
// test/cli_status_test.ts).
import assert from "node:assert/strict";
import { renderStatus, type Status } from "./status_view.ts";

const HEALTHY: Status = {
  version: "1.2.3",
  pinDir: "/sys/fs/bpf/tc/globals",
  pinDirExists: true,
  bpffs: { mounted: true, mountPoint: "/sys/fs/bpf", fsType: "bpf" },
  mode: { policyMode: "identity", conntrack: false, serviceCIDRs: [] },
  maps: [
    { name: "endpoint_map", pinned: true, id: 11, entries: 4096, maxEntries: 16384 },
    { name: "policy_map", pinned: true, id: 12, entries: 3, maxEntries: 65536 },
    { name: "stats_map", pinned: true, id: 13, entries: 6, maxEntries: 6 },
  ],
  program: {
    pinned: true,
    id: 40,
    tag: "edffbcedf17217da",
    thisBuild: false,
    usesPinnedMaps: true,
  },
  egressProgram: { pinned: false },
  counters: { allow: 10, drop_policy: 2 },
  attached: [
    { name: "veth1", ifindex: 7, kind: "veth", hook: "ingress", programId: 40, pinned: true },
  ],
};

Deno.test("renderStatus() shows each section aligned", () => {
  assert.equal(
    renderStatus(HEALTHY),
    `version         1.2.3
pin directory   /sys/fs/bpf/tc/globals
bpffs           mounted at /sys/fs/bpf
mode            identity, conntrack off
program         id 40, tag edffbcedf17217da, from another build (the next CNI ADD replaces it)
egress program  not pinned

MAP           ID  ENTRIES    MAX    FILL
endpoint_map  11     4096  16384   25.0%
policy_map    12        3  65536    0.0%
stats_map     13        6      6  100.0%

COUNTER      PACKETS
allow             10
drop_policy        2

ATTACHED  IFINDEX  KIND  HOOK     PROGRAM
veth1           7  veth  ingress  40 (pinned)
`,
  );
});

Deno.test("renderStatus() says what is missing and where bpffs is not", () => {
  const out = renderStatus({
    ...HEALTHY,
    pinDir: "/run/x",
    pinDirExists: false,
    bpffs: { mounted: false, mountPoint: "/run", fsType: "tmpfs" },
    maps: HEALTHY.maps.map((m) => ({ name: m.name, pinned: false, maxEntries: m.maxEntries })),
    program: { pinned: false },
    counters: null,
    attached: [],
  });
  assert.match(out, /^pin directory +\/run\/x \(does not exist\)$/m);
  assert.match(
    out,
    /^bpffs +NOT mounted: its nearest existing parent is on tmpfs at \/run \(mount -t bpf bpf \/sys\/fs\/bpf\)$/m,
  );
  assert.match(out, /^program +not pinned$/m);
  assert.match(out, /^policy_map +- +- +65536 +not pinned$/m);
  assert.match(out, /^\(stats_map not pinned\)$/m);
  assert.match(out, /^\(no link has the program attached\)$/m);
});
