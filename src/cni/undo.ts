// An undo stack for ADD: each step registers how to revert itself; on failure the steps
// are reverted in reverse order, best effort, and what could not be reverted is logged.
import { log } from "../log.ts";
import { causeChain } from "../spec/cni.ts";

export class Undo {
  #steps: { what: string; fn: () => unknown }[] = [];

  push(what: string, fn: () => unknown): void {
    this.#steps.push({ what, fn });
  }

  async run(): Promise<void> {
    for (const { what, fn } of this.#steps.reverse()) {
      try {
        await fn();
      } catch (err) {
        log.error(`rollback: cannot ${what}: ${causeChain(err)}`);
      }
    }
    this.#steps = [];
  }
}
