// `ebpfcni masquerade cleanup`: removes the nftables tables of ebpfcni's masquerade from the
// node's network namespace (the one this command runs in), for an uninstall or after
// switching the agent to --no-masquerade.
import { errorMessage } from "../spec/text.ts";
import { AGENT_TABLE, deleteTable, FAMILY, IPMASQ_TABLE } from "../masq/ruleset.ts";
import type { Command } from "./command.ts";
import { CommandError, EXIT_OK } from "./errors.ts";

const cleanup: Command = {
  synopsis: "masquerade cleanup",
  summary: "remove ebpfcni's nftables masquerade tables",
  help: `Removes the nftables tables of ebpfcni's masquerade from this network namespace:
"${FAMILY} ${AGENT_TABLE}" (the agent's --masquerade) and "${FAMILY} ${IPMASQ_TABLE}" (the
network config's "ipMasq"). Pods then leave the node with their own addresses. Stop the
agent first, or run it with --no-masquerade: a running agent writes its table again at its
next resync. A table that is not there is no error.`,
  flags: {},
  async run(ctx) {
    const { NftContext } = await import("../../ffi/libnftables.ts");
    using nft = new NftContext();
    for (const table of [AGENT_TABLE, IPMASQ_TABLE]) {
      try {
        nft.run(deleteTable(table), `delete table ${FAMILY} ${table}`);
      } catch (err) {
        throw new CommandError(errorMessage(err), { cause: err });
      }
      ctx.io.out(`removed table ${FAMILY} ${table}\n`);
    }
    return EXIT_OK;
  },
};

export const masqueradeCommands: Record<string, Command> = { cleanup };
