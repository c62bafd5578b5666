/**
 * The bridge's PUBACKs to the plant's broker, for one connection: one per QoS 1 PUBLISH, sent
 * in the order the PUBLISH packets came (MQTT 3.1.1 §4.6), each only once its message is
 * durable (or rejected: acknowledged so that the broker does not redeliver it forever). A
 * message that cannot be made durable is never acknowledged: the connection is dropped, and
 * the broker redelivers it and every later unacknowledged one to the session.
 *
 * The queue holds at most what the broker has in flight to us (its receive maximum for MQTT 5,
 * `max_inflight_messages` for 3.1.1); past {@linkcode MAX_WAITING_ACKS} the connection fails.
 * @module
 */

/** Acknowledgements waiting at most; more means the broker ignores flow control. */
export const MAX_WAITING_ACKS = 65_535;

interface Waiting {
  messageId: number;
  /** 0: waiting for durability, 1: ready to send, 2: not durable. */
  state: 0 | 1 | 2;
}

/** What an {@linkcode AckQueue} sends with. */
export interface AckSink {
  /** Send the PUBACK of `messageId` on the connection. */
  puback(messageId: number): void;
  /** A message cannot be acknowledged (not durable, or too many waiting): drop the connection. */
  fail(reason: string, err?: unknown): void;
}

/** The ordered PUBACKs of one connection. */
export class AckQueue {
  readonly #waiting: Waiting[] = [];
  #head = 0;
  #closed = false;
  /** Waits for fewer than `below` acknowledgements waiting (see `onRoom`). */
  #room: { below: number; fn: () => void } | undefined;

  constructor(readonly sink: AckSink) {}

  /** Acknowledgements not sent yet. */
  get size(): number {
    return this.#waiting.length - this.#head;
  }

  /**
   * A QoS 1 PUBLISH came: its PUBACK goes out once `durable` resolves and every earlier one
   * went out (at once, in order, when `durable` is null: a rejected message).
   */
  push(messageId: number, durable: Promise<void> | null): void {
    if (this.#closed) return;
    if (this.size >= MAX_WAITING_ACKS) {
      this.close();
      return this.sink.fail("too many unacknowledged messages from the broker");
    }
    const w: Waiting = { messageId, state: durable ? 0 : 1 };
    this.#waiting.push(w);
    if (!durable) return this.#drain();
    durable.then(
      () => {
        w.state = 1;
        this.#drain();
      },
      (err) => {
        w.state = 2;
        if (this.#closed) return;
        this.close();
        this.sink.fail("a message could not be made durable", err);
      },
    );
  }

  /**
   * Call `fn` once fewer than `below` acknowledgements wait (at once if so); one waiter at a
   * time. Never called once the queue is closed (the connection is gone).
   */
  onRoom(below: number, fn: () => void): void {
    if (this.size < below) return fn();
    this.#room = { below, fn };
  }

  /** The connection is gone: nothing more is sent (the broker redelivers what is waiting). */
  close(): void {
    this.#closed = true;
    this.#room = undefined;
  }

  #drain(): void {
    const q = this.#waiting;
    while (!this.#closed && this.#head < q.length && q[this.#head].state === 1) {
      this.sink.puback(q[this.#head++].messageId);
    }
    if (this.#head === q.length) {
      q.length = 0;
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > q.length) {
      q.splice(0, this.#head);
      this.#head = 0;
    }
    const room = this.#room;
    if (room && !this.#closed && this.size < room.below) {
      this.#room = undefined;
      room.fn();
    }
  }
}
