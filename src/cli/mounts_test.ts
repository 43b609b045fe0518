// Unit tests for finding the filesystem that holds the pin directory.
import assert from "node:assert/strict";
import { mountOf, parseMountInfo } from "./mounts.ts";

const MOUNTINFO = `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
25 22 0:22 / /sys rw,nosuid shared:7 - sysfs sysfs rw
33 25 0:30 / /sys/fs/bpf rw,nosuid shared:12 - bpf bpf rw,mode=700
40 22 0:35 / /mnt/with\\040space rw shared:20 master:3 - tmpfs tmpfs rw
41 33 0:36 / /sys/fs/bpf rw - tmpfs none rw
`;

Deno.test("parseMountInfo() reads mount points (unescaped) and filesystem types", () => {
  assert.deepEqual(parseMountInfo(MOUNTINFO), [
    { mountPoint: "/", fsType: "ext4" },
    { mountPoint: "/sys", fsType: "sysfs" },
    { mountPoint: "/sys/fs/bpf", fsType: "bpf" },
    { mountPoint: "/mnt/with space", fsType: "tmpfs" },
    { mountPoint: "/sys/fs/bpf", fsType: "tmpfs" },
  ]);
});

Deno.test("mountOf() picks the longest mount point, the last one stacked on it", () => {
  const all = parseMountInfo(MOUNTINFO);
  const first = all.slice(0, 4);
  assert.deepEqual(mountOf("/sys/fs/bpf/tc/globals", first), {
    mountPoint: "/sys/fs/bpf",
    fsType: "bpf",
  });
  assert.deepEqual(mountOf("/sys/fs/bpf", first), { mountPoint: "/sys/fs/bpf", fsType: "bpf" });
  assert.deepEqual(mountOf("/sys/fs/bpfx", first), { mountPoint: "/sys", fsType: "sysfs" });
  assert.deepEqual(mountOf("/var/run", first), { mountPoint: "/", fsType: "ext4" });
  // A tmpfs mounted over /sys/fs/bpf hides the bpffs below it.
  assert.deepEqual(mountOf("/sys/fs/bpf/tc", all), { mountPoint: "/sys/fs/bpf", fsType: "tmpfs" });
  assert.equal(mountOf("/x", []), undefined);
});
