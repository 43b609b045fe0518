// Golden bytes for the rtnetlink reply parsers: link, address and route messages laid out as
// linux/rtnetlink.h and linux/if_link.h define them.
import assert from "node:assert/strict";
import { parseAddr, parseLink, parseNeigh, parseRoute } from "./rtnl_parse.ts";
import { unhex } from "./_test_util.ts";

Deno.test("parseLink() reads index, flags, name, mtu, master, mac and kind", () => {
  const payload = unhex(
    "00000100" + "03000000" + "43100100" + "00000000" + // ifinfomsg: ARPHRD_ETHER, index 3
      "0a000300" + "7665746830000000" + // IFLA_IFNAME "veth0"
      "08000400" + "dc050000" + // IFLA_MTU 1500
      "08000a00" + "02000000" + // IFLA_MASTER 2
      "0a000100" + "02aabbccddee0000" + // IFLA_ADDRESS
      "10001280" + "09000100" + "7665746800000000", // IFLA_LINKINFO { IFLA_INFO_KIND "veth" }
  );
  assert.deepEqual(parseLink(payload), {
    index: 3,
    flags: 0x11043,
    name: "veth0",
    mtu: 1500,
    master: 2,
    mac: "02:aa:bb:cc:dd:ee",
    kind: "veth",
  });
});

Deno.test("parseAddr() prefers IFA_LOCAL and skips families other than IPv4", () => {
  const v4 = unhex(
    "02180080" + "07000000" + // ifaddrmsg: AF_INET, /24, flags, scope, index 7
      "08000100" + "0a0d0063" + // IFA_ADDRESS 10.13.0.99 (the peer on point-to-point)
      "08000200" + "0a0d0002", // IFA_LOCAL 10.13.0.2
  );
  assert.deepEqual(parseAddr(v4), { index: 7, prefixlen: 24, ip: 0x0a0d0002 });
  assert.equal(parseAddr(unhex("0a400000" + "07000000")), undefined); // AF_INET6
});

Deno.test("parseRoute() reads destination, gateway, oif, the table attribute and the owner's protocol", () => {
  const payload = unhex(
    "02180000" + "fe030001" + "00000000" + // rtmsg: AF_INET, /24, table main
      "08000100" + "0a0d0000" + // RTA_DST
      "08000500" + "0a0d0001" + // RTA_GATEWAY
      "08000400" + "04000000" + // RTA_OIF 4
      "08000f00" + "e8030000", // RTA_TABLE 1000
  );
  assert.deepEqual(parseRoute(payload), {
    dst: 0x0a0d0000,
    dstLen: 24,
    gw: 0x0a0d0001,
    oif: 4,
    table: 1000,
    protocol: 3, // RTPROT_BOOT
    flags: 0,
    type: 1, // RTN_UNICAST
  });
});

Deno.test("parseNeigh() reads a vxlan forwarding entry's family, device, state, MAC and endpoint", () => {
  const payload = unhex(
    "07000000" + "05000000" + "80000200" + // ndmsg: AF_BRIDGE, ifindex 5, PERMANENT, NTF_SELF
      "0a000200" + "0eeb0a000002" + "0000" + // NDA_LLADDR
      "08000100" + "0a000002", // NDA_DST 10.0.0.2
  );
  assert.deepEqual(parseNeigh(payload), {
    family: 7,
    ifindex: 5,
    state: 0x80,
    flags: 2,
    dst: 0x0a000002,
    mac: "0e:eb:0a:00:00:02",
  });
});
