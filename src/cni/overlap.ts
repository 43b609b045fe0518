// Networks sharing a pin directory share its endpoint_map (and ipcache_map): if their pods'
// addresses can coincide, one network's ADD overwrites the other's entry and its DEL removes
// it. Which network has pods where is read from the records under stateDir (each carries its
// pin directory; its directory names its network): they are written before ADD registers
// anything and removed last by DEL, so a crash never hides a live pod from this check.
import { CniError, ErrCode } from "../spec/cni.ts";
import { type Cidr, cidrContains, formatCidr, tryParseIpv4 } from "../spec/ipv4.ts";
import { quote } from "../spec/text.ts";
import { StateStore } from "../node/attachment_store.ts";

/**
 * Refuses (code 7, naming the other network) an ADD of `network` on `pinDir` when a pod of
 * another network on that pin directory has an address in one of `subnets` or among `ips`.
 * Run before any change, with the configured subnets, and again once the address is leased
 * and recorded: of two networks racing, the second to record sees the first.
 */
export function refuseSharedAddresses(
  stateDir: string,
  network: string,
  pinDir: string,
  subnets: readonly Cidr[],
  ips: readonly string[] = [],
): void {
  // Only other networks' records are read: a node with one network reads none.
  for (const { network: other, record } of StateStore.allByNetwork(stateDir, network)) {
    if (record.pinDir !== pinDir) continue;
    for (const text of record.ips) {
      const ip = tryParseIpv4(text);
      if (ip === undefined) continue;
      const subnet = subnets.find((s) => cidrContains(s, ip));
      if (subnet === undefined && !ips.includes(text)) continue;
      const where = subnet === undefined ? `at ${text}` : `in ${formatCidr(subnet)} (${text})`;
      throw new CniError(
        ErrCode.InvalidConfig,
        `Network ${quote(other)} has a pod on pin directory ${quote(pinDir)} ${where}, ` +
          `an address of network ${quote(network)}: networks sharing a pin directory need ` +
          "subnets that do not overlap (or a pinDir of their own)",
      );
    }
  }
}
