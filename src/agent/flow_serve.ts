// The agent's side of flows: its flow log (drop verdicts, --flow-log) and the monitors that
// stream verdicts over its socket, both fed by one reader of the `events` ring buffer
// (flow_tap.ts) and named by the agent (pods, deciding policies).
import { EVENTS_MAP } from "../spec/bpf_layout.ts";
import { EventReader, wallClock } from "../datapath/events.ts";
import { monotonicNs } from "../../ffi/libc.ts";
import type { Datapath } from "../datapath/loader.ts";
import { ifnameCache } from "../net/link.ts";
import type { MonitorRequest } from "../spec/agent_wire.ts";
import type { Agent } from "./agent_core.ts";
import { FlowLog, type FlowLogStats } from "./flow_log.ts";
import { flowJson, flowRecord } from "./flow_record.ts";
import { FlowTap } from "./flow_tap.ts";
import type { AgentLog } from "../log.ts";
import { StreamReply } from "./server.ts";

export class FlowService {
  readonly #tap: FlowTap;
  readonly #eventsMapId: number;
  readonly #flowLog: FlowLog | undefined;
  #removeFlowLog: (() => Promise<void>) | undefined;

  private constructor(tap: FlowTap, eventsMapId: number, flowLog: FlowLog | undefined) {
    this.#tap = tap;
    this.#eventsMapId = eventsMapId;
    this.#flowLog = flowLog;
  }

  /** Starts writing `flowLog` (opened by the caller) at once, when given. */
  static async start(
    dp: Datapath,
    agent: Agent,
    flowLog: FlowLog | undefined,
    log: AgentLog,
  ): Promise<FlowService> {
    const fd = dp.fd(EVENTS_MAP);
    const clock = wallClock();
    const ifname = ifnameCache();
    const tap = new FlowTap(
      { open: (onEvent) => new EventReader(fd, onEvent), now: monotonicNs },
      (e) => flowRecord(e, clock.wallMs, ifname, agent.flowNames(e)),
      log,
    );
    const service = new FlowService(tap, dp.mapId(EVENTS_MAP), flowLog);
    if (flowLog !== undefined) {
      service.#removeFlowLog = await tap.add({
        verdict: "drop",
        push: (_e, record) => flowLog.write(flowJson(record())),
      });
    }
    return service;
  }

  /** A monitor's stream, or why the agent does not serve it. */
  monitor(req: MonitorRequest): StreamReply | { declined: string } {
    if (req.eventsMapId !== this.#eventsMapId) {
      return { declined: "the agent serves another pin directory" };
    }
    const first = { monitor: { eventsMapId: this.#eventsMapId } };
    return new StreamReply((signal) => this.#tap.stream(first, req.verdict, signal));
  }

  /** The flow log's counters (and why the ring buffer is not read, when it failed), for
   * `agent status`. */
  status(): { flowLog?: FlowLogStats } {
    if (this.#flowLog === undefined) return {};
    const error = this.#tap.error;
    return { flowLog: { ...this.#flowLog.stats, ...(error === undefined ? {} : { error }) } };
  }

  async close(): Promise<void> {
    await this.#removeFlowLog?.();
    await this.#tap.close();
    await this.#flowLog?.close();
  }
}
