// Stand-in for `ebpfcni policy allow|import` used only when the real CLI fails (it was being
// written while the benchmark suite was). Does the minimum the CLI must do, through the same
// product modules: open the pinned policy_map, write, exit. Results measured with it are
// labelled "fallback" in the report.
//   _policy_cli.ts allow SRC DST PIN_DIR
//   _policy_cli.ts import FILE PIN_DIR
import { openPinnedMaps } from "../src/datapath/loader.ts";
import { PolicyMap } from "../src/datapath/maps.ts";
import { parsePolicyFile } from "../src/identity_mode/import_plan.ts";

const [cmd, ...rest] = Deno.args;
const pinDir = rest[rest.length - 1]!;
const dp = openPinnedMaps(pinDir);
if (!dp) {
  console.error(`no datapath pinned under ${pinDir}`);
  Deno.exit(1);
}
try {
  const map = new PolicyMap(dp.policyFd);
  if (cmd === "allow") {
    map.allow(Number(rest[0]), Number(rest[1]));
  } else if (cmd === "import") {
    const { entries } = parsePolicyFile(Deno.readTextFileSync(rest[0]!));
    for (let at = 0; at < entries.length; at += 16384) map.allowMany(entries.slice(at, at + 16384));
    console.log(`imported ${entries.length}`);
  } else {
    throw new Error(`unknown command ${cmd}`);
  }
} finally {
  dp.close();
}
