// IPv4 forwarding in the agent's network namespace (/proc/sys/net is per namespace: the file
// opened is the opener's namespace's), as the reference bridge plugin enables it with
// isGateway: without it no pod packet leaves its node.
const IP_FORWARD = "/proc/sys/net/ipv4/ip_forward";

/** Turns forwarding on; true when it was off. */
export function enableForwarding(path = IP_FORWARD): boolean {
  if (Deno.readTextFileSync(path).trim() === "1") return false;
  Deno.writeTextFileSync(path, "1");
  return true;
}
