// The kernel and libbpf ABI the FFI layer writes by hand, checked against the C headers: a
// small C program built with clang prints offsetof()/sizeof() of every field ffi/bpf.ts,
// ffi/libbpf.ts and src/net/messages.ts use, and each must equal the TypeScript constant.
import assert from "node:assert/strict";
import { ATTR, INFO } from "../ffi/bpf.ts";
import { OPEN_OPTS } from "../ffi/libbpf.ts";

/** [C expression, TypeScript value] */
const CHECKS: [string, number][] = [
  ["sizeof(((union bpf_attr *)0)->map_fd) + 0", 4],
  ["offsetof(union bpf_attr, map_fd)", ATTR.elem.map_fd],
  ["offsetof(union bpf_attr, key)", ATTR.elem.key],
  ["offsetof(union bpf_attr, value)", ATTR.elem.value],
  ["offsetof(union bpf_attr, next_key)", ATTR.elem.value],
  ["offsetof(union bpf_attr, flags)", ATTR.elem.flags],
  ["offsetof(union bpf_attr, pathname)", ATTR.obj.pathname],
  ["offsetof(union bpf_attr, bpf_fd)", ATTR.obj.bpf_fd],
  ["offsetof(union bpf_attr, file_flags)", ATTR.obj.file_flags],
  ["offsetof(union bpf_attr, test.prog_fd)", ATTR.test.prog_fd],
  ["offsetof(union bpf_attr, test.retval)", ATTR.test.retval],
  ["offsetof(union bpf_attr, test.data_size_in)", ATTR.test.data_size_in],
  ["offsetof(union bpf_attr, test.data_size_out)", ATTR.test.data_size_out],
  ["offsetof(union bpf_attr, test.data_in)", ATTR.test.data_in],
  ["offsetof(union bpf_attr, test.data_out)", ATTR.test.data_out],
  ["offsetof(union bpf_attr, test.repeat)", ATTR.test.repeat],
  ["offsetof(union bpf_attr, test.duration)", ATTR.test.duration],
  ["offsetof(union bpf_attr, test.batch_size) + 4 <= 80", 1],
  ["offsetof(union bpf_attr, prog_id)", ATTR.getId.id],
  ["offsetof(union bpf_attr, map_id)", ATTR.getId.id],
  ["offsetof(union bpf_attr, next_id)", ATTR.getId.next_id],
  ["offsetof(union bpf_attr, open_flags)", ATTR.getId.open_flags],
  ["offsetof(union bpf_attr, info.bpf_fd)", ATTR.info.bpf_fd],
  ["offsetof(union bpf_attr, info.info_len)", ATTR.info.info_len],
  ["offsetof(union bpf_attr, info.info)", ATTR.info.info],
  ["offsetof(union bpf_attr, batch.in_batch)", ATTR.batch.in_batch],
  ["offsetof(union bpf_attr, batch.out_batch)", ATTR.batch.out_batch],
  ["offsetof(union bpf_attr, batch.keys)", ATTR.batch.keys],
  ["offsetof(union bpf_attr, batch.values)", ATTR.batch.values],
  ["offsetof(union bpf_attr, batch.count)", ATTR.batch.count],
  ["offsetof(union bpf_attr, batch.map_fd)", ATTR.batch.map_fd],
  ["offsetof(union bpf_attr, batch.elem_flags)", ATTR.batch.elem_flags],
  ["offsetof(union bpf_attr, batch.flags)", ATTR.batch.flags],
  ["sizeof(((union bpf_attr *)0)->batch)", ATTR.batch.size],
  ["offsetof(struct bpf_map_info, type)", INFO.map.type],
  ["offsetof(struct bpf_map_info, id)", INFO.map.id],
  ["offsetof(struct bpf_map_info, key_size)", INFO.map.key_size],
  ["offsetof(struct bpf_map_info, value_size)", INFO.map.value_size],
  ["offsetof(struct bpf_map_info, max_entries)", INFO.map.max_entries],
  ["offsetof(struct bpf_map_info, map_flags)", INFO.map.map_flags],
  ["offsetof(struct bpf_map_info, name)", INFO.map.name],
  ["sizeof(struct bpf_map_info) >= 88", 1],
  ["offsetof(struct bpf_prog_info, type)", INFO.prog.type],
  ["offsetof(struct bpf_prog_info, id)", INFO.prog.id],
  ["offsetof(struct bpf_prog_info, tag)", INFO.prog.tag],
  ["offsetof(struct bpf_prog_info, nr_map_ids)", INFO.prog.nr_map_ids],
  ["offsetof(struct bpf_prog_info, map_ids)", INFO.prog.map_ids],
  ["offsetof(struct bpf_prog_info, name)", INFO.prog.name],
  ["offsetof(struct bpf_prog_info, run_time_ns)", INFO.prog.run_time_ns],
  ["offsetof(struct bpf_prog_info, run_cnt)", INFO.prog.run_cnt],
  ["offsetof(struct bpf_object_open_opts, sz)", OPEN_OPTS.sz],
  ["offsetof(struct bpf_object_open_opts, object_name)", OPEN_OPTS.object_name],
  ["offsetof(struct bpf_object_open_opts, kernel_log_buf)", OPEN_OPTS.kernel_log_buf],
  ["offsetof(struct bpf_object_open_opts, kernel_log_size)", OPEN_OPTS.kernel_log_size],
  ["sizeof(struct bpf_object_open_opts) >= 80", 1],
  // src/net/messages.ts and src/net/wire.ts
  ["sizeof(struct nlmsghdr)", 16],
  ["sizeof(struct nlattr)", 4],
  ["sizeof(struct ifinfomsg)", 16],
  ["offsetof(struct ifinfomsg, ifi_index)", 4],
  ["offsetof(struct ifinfomsg, ifi_flags)", 8],
  ["offsetof(struct ifinfomsg, ifi_change)", 12],
  ["sizeof(struct ifaddrmsg)", 8],
  ["offsetof(struct ifaddrmsg, ifa_index)", 4],
  ["sizeof(struct rtmsg)", 12],
  ["offsetof(struct rtmsg, rtm_table)", 4],
  ["offsetof(struct rtmsg, rtm_scope)", 6],
  ["sizeof(struct tcmsg)", 20],
  ["offsetof(struct tcmsg, tcm_ifindex)", 4],
  ["offsetof(struct tcmsg, tcm_handle)", 8],
  ["offsetof(struct tcmsg, tcm_parent)", 12],
  ["offsetof(struct tcmsg, tcm_info)", 16],
  ["sizeof(struct nlmsgerr)", 20],
];

Deno.test("every hand-written struct offset matches the C headers", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ebpfcni-abi-" });
  try {
    const src = `#include <stddef.h>
#include <stdio.h>
#include <linux/bpf.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <bpf/libbpf.h>
int main(void) {
${CHECKS.map(([expr]) => `  printf("%ld\\n", (long)(${expr}));`).join("\n")}
  return 0;
}
`;
    await Deno.writeTextFile(`${dir}/abi.c`, src);
    const cc = await new Deno.Command("clang", {
      args: ["-o", `${dir}/abi`, `${dir}/abi.c`],
      stderr: "piped",
    }).output();
    assert.equal(cc.code, 0, new TextDecoder().decode(cc.stderr));
    const out = await new Deno.Command(`${dir}/abi`, { stdout: "piped" }).output();
    const values = new TextDecoder().decode(out.stdout).trim().split("\n").map(Number);
    const wrong = CHECKS.filter(([, want], i) => values[i] !== want)
      .map(([expr, want]) =>
        `${expr} is ${values[CHECKS.findIndex((c) => c[0] === expr)]}, not ${want}`
      );
    assert.deepEqual(wrong, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
