// Golden bytes for the netlink wire format: what encodeRequest() writes and what the decoders
// read back, byte for byte as linux/netlink.h lays them out. test/netlink_wire_test.ts checks
// the same requests against libmnl's own builders.
import assert from "node:assert/strict";
import { Errno } from "../../ffi/errors.ts";
import {
  decodeAttrs,
  decodeMessages,
  encodeRequest,
  MAX_REQUEST,
  NetlinkEncodeError,
  NLM_F_ACK_TLVS,
  NLMSG_ERROR,
  nlmsgerr,
} from "./wire.ts";
import * as M from "./messages.ts";
import { hex, unhex } from "./_test_util.ts";

Deno.test("encodeRequest() writes the header, the family header and a NUL-padded string", () => {
  assert.equal(
    hex(encodeRequest(M.getLink("cni0"), 7)),
    // nlmsghdr: len 44, RTM_GETLINK, REQUEST|ACK, seq 7, pid 0
    "2c000000" + "1200" + "0500" + "07000000" + "00000000" +
      // ifinfomsg (16 zero bytes)
      "00000000000000000000000000000000" +
      // IFLA_IFNAME "cni0\0", length 9, padded to 12
      "09000300" + "636e6930" + "00000000",
  );
});

Deno.test("encodeRequest() writes nests with NLA_F_NESTED and a nest's leading struct", () => {
  assert.equal(
    hex(encodeRequest(M.newVeth("vethabc", "eth0", 9, 1500), 9)),
    "78000000" + "1000" + "0506" + "09000000" + "00000000" + // RTM_NEWLINK, CREATE|EXCL
      "00000000000000000000000000000000" +
      "0c000300" + "7665746861626300" + // IFLA_IFNAME "vethabc"
      "08000400" + "dc050000" + // IFLA_MTU 1500
      "44001280" + // IFLA_LINKINFO, nested
      "09000100" + "7665746800000000" + // IFLA_INFO_KIND "veth"
      "34000280" + // IFLA_INFO_DATA, nested
      "30000180" + // VETH_INFO_PEER, nested, starting with an ifinfomsg
      "00000000000000000000000000000000" +
      "09000300" + "6574683000000000" + // IFLA_IFNAME "eth0"
      "08000400" + "dc050000" + // IFLA_MTU
      "08001c00" + "09000000", // IFLA_NET_NS_FD 9
  );
});

Deno.test("encodeRequest() writes addresses in network order and u32 attributes little-endian", () => {
  assert.equal(
    hex(encodeRequest(M.newAddr(5, 0x0a0d0002, 24, "eth0"), 8)),
    "30000000" + "1400" + "0506" + "08000000" + "00000000" + // RTM_NEWADDR
      "02180000" + "05000000" + // ifaddrmsg: AF_INET, /24, index 5
      "08000200" + "0a0d0002" + // IFA_LOCAL
      "08000100" + "0a0d0002" + // IFA_ADDRESS
      "08000400" + "0a0d00ff", // IFA_BROADCAST
  );
  assert.equal(
    hex(
      encodeRequest(M.newRoute({ dst: 0, dstLen: 0, gw: 0x0a0d0001, oif: 3, mtu: 1400 }, "e"), 10),
    ),
    "38000000" + "1800" + "050c" + "0a000000" + "00000000" + // RTM_NEWROUTE, CREATE|APPEND
      "020000" + "00" + "fe" + "03" + "00" + "01" + "00000000" + // rtmsg: main, boot, universe
      "08000400" + "03000000" + // RTA_OIF 3
      "08000500" + "0a0d0001" + // RTA_GATEWAY
      "0c000880" + "08000200" + "78050000", // RTA_METRICS { RTAX_MTU 1400 }
  );
});

Deno.test("encodeRequest() refuses a request larger than MAX_REQUEST before writing it", () => {
  const big = { ...M.getLink("x"), attrs: [{ type: 1, bytes: new Uint8Array(MAX_REQUEST) }] };
  assert.throws(() => encodeRequest(big, 1), NetlinkEncodeError);
});

Deno.test("decodeMessages() splits a datagram and drops a truncated tail", () => {
  const one = "14000000" + "0300" + "0200" + "07000000" + "39300000" + "00000000";
  const msgs = decodeMessages(unhex(one + one.slice(0, 20)));
  assert.equal(msgs.length, 1);
  assert.deepEqual(
    { ...msgs[0], payload: hex(msgs[0]!.payload) },
    { type: 3, flags: 2, seq: 7, portid: 12345, payload: "00000000" },
  );
});

Deno.test("nlmsgerr() reads errno and the extended ack message after the original request", () => {
  const payload = "efffffff" + // error -17 (EEXIST)
    "20000000" + "1000" + "0506" + "09000000" + "00000000" + // the request's header, 32 bytes
    "00".repeat(16) + // and its body
    "10000100" + "46696c65206578697374730" + "0"; // NLMSGERR_ATTR_MSG "File exists\0"
  const msg = {
    type: NLMSG_ERROR,
    flags: NLM_F_ACK_TLVS,
    seq: 9,
    portid: 0,
    payload: unhex(payload),
  };
  assert.deepEqual(nlmsgerr(msg), { errno: Errno.EEXIST, message: "File exists" });
  // An ack: errno 0, capped.
  assert.deepEqual(
    nlmsgerr({ ...msg, flags: 0x100, payload: unhex("00000000" + "10000000".repeat(4)) }),
    { errno: 0, message: "" },
  );
});

Deno.test("decodeAttrs() reads TLVs, strips the nested flag and stops at a bad length", () => {
  const a = decodeAttrs(unhex("08000180" + "01020304" + "02000300"));
  assert.deepEqual(a.map((x) => ({ type: x.type, data: hex(x.data) })), [
    { type: 1, data: "01020304" },
  ]);
});

Deno.test("newVxlan() puts the port in network byte order and turns learning off", () => {
  const bytes = encodeRequest(
    M.newVxlan({
      name: "ebpfcni.vxlan",
      vni: 1,
      port: 8472,
      local: 0x0a000001,
      link: 2,
      mtu: 1450,
      mac: "0e:eb:0a:00:00:01",
    }),
    1,
  );
  const text = hex(bytes);
  assert.ok(text.includes("06000f00" + "2118"), "IFLA_VXLAN_PORT 8472 big-endian");
  assert.ok(text.includes("05000700" + "00"), "IFLA_VXLAN_LEARNING 0");
  assert.ok(text.includes("08000400" + "0a000001"), "IFLA_VXLAN_LOCAL 10.0.0.1");
  assert.ok(text.includes("0a000100" + "0eeb0a000001"), "IFLA_ADDRESS");
});

Deno.test("replaceRoute() marks the route with its owner's protocol and onlink", () => {
  const bytes = encodeRequest(
    M.replaceRoute({
      dst: 0x0af40200,
      dstLen: 24,
      gw: 0x0af40200,
      oif: 5,
      onlink: true,
      protocol: 235,
    }),
    1,
  );
  // rtmsg after the 16-byte header: AF_INET, /24, 0, 0, main, 235, universe, unicast, flags
  assert.equal(hex(bytes.subarray(16, 28)), "02180000" + "feeb0001" + "04000000");
});
