// Pods for real-traffic tests: each a network namespace attached with the plugin's ADD (as
// a runtime would), with the identity given in CNI_ARGS.
import { containerId, type TestNetwork } from "./_cni.ts";
import { ebpfcni } from "./_cli.ts";

export interface Pod {
  id: string;
  /** The namespace path, e.g. /var/run/netns/tns-x. */
  netns: string;
  /** The `ip netns` name. */
  name: string;
  ip: string;
  identity: number;
  result: Record<string, unknown>;
}

export async function addPod(
  net: TestNetwork,
  identity: number,
  more: { args?: string; config?: Record<string, unknown> } = {},
): Promise<Pod> {
  const id = containerId("pod");
  const netns = await net.netns();
  const args = [`EBPFCNI_IDENTITY=${identity}`, more.args].filter(Boolean).join(";");
  const opts = more.config ? { args, config: more.config } : { args };
  const result = await net.add(id, netns, opts);
  const ips = result.ips as { address: string }[];
  return {
    id,
    netns,
    name: netns.split("/").pop()!,
    ip: ips[0]!.address.split("/")[0]!,
    identity,
    result,
  };
}

/** `ebpfcni ARGS --pin-dir <net's>`; throws unless it exits 0. */
export async function cli(net: TestNetwork, ...args: string[]): Promise<string> {
  const r = await ebpfcni([...args, "--pin-dir", net.pinDir]);
  if (r.code !== 0) throw new Error(`ebpfcni ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** Counters of the network's datapath (from `ebpfcni status --json`). */
export async function counters(net: TestNetwork): Promise<Record<string, number>> {
  const r = await ebpfcni(["status", "--json", "--pin-dir", net.pinDir]);
  return JSON.parse(r.stdout).counters ?? {};
}
