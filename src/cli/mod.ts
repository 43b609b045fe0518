// Operator CLI (placeholder until the CLI lands).
import { VERSION } from "../version.ts";

export function runCli(args: string[], _env: Record<string, string>): Promise<number> {
  if (args[0] === "version" || args[0] === "--version") {
    console.log(`ebpfcni ${VERSION}`);
    return Promise.resolve(0);
  }
  console.error("ebpfcni: CLI not implemented yet");
  return Promise.resolve(2);
}
