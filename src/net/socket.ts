// Request/reply exchanges over one netlink socket (so, one network namespace): requests are
// serialised by wire.ts, replies matched by sequence number and port, and a refusal becomes a
// NetlinkError with the errno and extended ack message of its nlmsgerr.
import { MnlSocket, NETLINK_ROUTE } from "../../ffi/libmnl.ts";
import { Errno, NetlinkError } from "../../ffi/errors.ts";
import {
  decodeMessages,
  encodeRequest,
  NLM_F_DUMP,
  NLM_F_DUMP_INTR,
  type NlMessage,
  NLMSG_DONE,
  NLMSG_ERROR,
  nlmsgerr,
  type NlRequest,
} from "./wire.ts";

/** Receive buffer: dumps arrive in chunks of up to a page or so per message batch. */
const BUF_SIZE = 32768;

export class NetlinkSocket {
  readonly #sock: MnlSocket;
  #seq = Math.floor(Date.now() / 1000) & 0x7fffffff;
  readonly #rx = new Uint8Array(BUF_SIZE);

  constructor(bus = NETLINK_ROUTE) {
    this.#sock = new MnlSocket(bus);
  }

  /** Sends `req` and collects reply messages until the ack or NLMSG_DONE. */
  #exchange(req: NlRequest, extraFlags: number): NlMessage[] {
    const seq = ++this.#seq;
    this.#sock.send(encodeRequest(req, seq, extraFlags), req.op);
    const out: NlMessage[] = [];
    let interrupted = false;
    for (;;) {
      const n = this.#sock.receive(this.#rx, req.op);
      for (const m of decodeMessages(this.#rx, n)) {
        // Another request's late reply (or a broadcast) is not ours.
        if (m.seq !== seq || (m.portid !== 0 && m.portid !== this.#sock.portid)) continue;
        // The kernel marks a dump it could not keep consistent (links came or went).
        if (m.flags & NLM_F_DUMP_INTR) interrupted = true;
        if (m.type === NLMSG_ERROR) {
          const { errno, message } = nlmsgerr(m);
          if (errno !== 0) throw new NetlinkError(req.op, errno, message);
          return out;
        }
        if (m.type === NLMSG_DONE) {
          if (interrupted) throw new NetlinkError(req.op, Errno.EINTR, "dump interrupted");
          return out;
        }
        out.push(m);
      }
    }
  }

  /** Sends one request and waits for its ack; throws NetlinkError when refused. */
  request(req: NlRequest): void {
    this.#exchange(req, 0);
  }

  /** Sends a get request (not a dump) and returns its reply messages. */
  get(req: NlRequest): NlMessage[] {
    return this.#exchange(req, 0);
  }

  /** Sends a dump request and returns every reply message; a dump the kernel reports as
   * interrupted (the table changed meanwhile) is retried a few times. */
  dump(req: NlRequest): NlMessage[] {
    for (let attempt = 1;; attempt++) {
      try {
        return this.#exchange(req, NLM_F_DUMP);
      } catch (err) {
        if (!(err instanceof NetlinkError && err.errno === Errno.EINTR) || attempt >= 5) throw err;
      }
    }
  }

  close(): void {
    this.#sock.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
