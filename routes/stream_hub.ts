/**
 * The fan-out behind `/v1/stream`: one transport subscription per event subject, shared by
 * every WebSocket client that asked for it, and each event serialised once however many
 * clients get it.
 *
 * Per delivery the hub does only what a client needs: its site-scope filter (scoped clients
 * only), a send-buffer check and `socket.send`. The buffer check reads `bufferedAmount` (a
 * call into the runtime) only when the bytes sent since the last reading could have pushed
 * the buffer past the limit, so a client is dropped exactly when the previous per-client
 * code dropped it: when its buffer is over the limit at a send.
 * @module
 */
import type { Subscription, Transport } from "../src/transport/port.ts";
import type { Metrics } from "../src/obs/metrics.ts";
import type { Logger } from "../src/obs/log.ts";

/** One WebSocket client of the stream, as the hub sees it. */
export interface StreamClient {
  /** False once the client is closed or dropped: nothing more is sent. */
  open: boolean;
  readonly socket: WebSocket;
  /** Scoped clients: whether an event is for them; undefined = every event. */
  readonly visible: ((event: unknown) => boolean) | undefined;
  /** Upper bound of the bytes buffered for the client: the last reading plus sends since. */
  buffered: number;
  /** Ends the client's subscriptions (called when the hub drops it). */
  release(): void;
}

/** Options of {@linkcode StreamHub}. */
export interface StreamHubOptions {
  transport: Transport;
  metrics: Metrics;
  logger: Logger;
  /** Bytes a client may lag behind before it is dropped. */
  maxBufferedBytes: number;
}

/** The clients of one subject and the transport subscription that feeds them. */
interface Channel {
  /** Copy on write: a delivery iterates the list as it was. One entry per subscription. */
  clients: StreamClient[];
  readonly sub: Subscription;
}

/** Shares event subscriptions among stream clients; see the module doc. */
export class StreamHub {
  readonly #o: StreamHubOptions;
  readonly #channels = new Map<string, Channel>();
  /** The JSON of the last event sent (the same event can come through several channels). */
  #lastEvent: unknown;
  #lastJson = "";

  constructor(o: StreamHubOptions) {
    this.#o = o;
  }

  /** Sends `client` the events on `subject` until the returned disposable is disposed. */
  subscribe(subject: string, client: StreamClient): Disposable {
    let ch = this.#channels.get(subject);
    if (!ch) {
      const clients: StreamClient[] = [];
      const sub = this.#o.transport.subscribe(subject, (m) => this.#deliver(channel, m.data));
      const channel: Channel = { clients, sub };
      this.#channels.set(subject, ch = channel);
    }
    const channel = ch;
    channel.clients = [...channel.clients, client];
    let done = false;
    return {
      [Symbol.dispose]: () => {
        if (done) return;
        done = true;
        const i = channel.clients.indexOf(client);
        if (i >= 0) channel.clients = channel.clients.toSpliced(i, 1);
        if (channel.clients.length === 0 && this.#channels.get(subject) === channel) {
          this.#channels.delete(subject);
          channel.sub.unsubscribe();
        }
      },
    };
  }

  /** Subjects with at least one client (for tests). */
  get subjects(): number {
    return this.#channels.size;
  }

  #deliver(channel: Channel, event: unknown): void {
    const clients = channel.clients;
    let json: string | undefined;
    let sent = 0;
    for (let i = 0; i < clients.length; i++) {
      const c = clients[i];
      if (!c.open || (c.visible !== undefined && !c.visible(event))) continue;
      json ??= this.#serialize(event);
      if (this.#send(c, json)) sent++;
    }
    if (sent > 0) this.#o.metrics.wsEventsSent.inc(sent);
  }

  #serialize(event: unknown): string {
    if (event !== this.#lastEvent) {
      this.#lastJson = JSON.stringify(event);
      this.#lastEvent = event;
    }
    return this.#lastJson;
  }

  /** Sends or drops (1013) one client; true when sent. */
  #send(c: StreamClient, json: string): boolean {
    const limit = this.#o.maxBufferedBytes;
    if (c.buffered > limit) { // maybe over: read the real figure
      c.buffered = c.socket.bufferedAmount;
      if (c.buffered > limit) {
        this.#drop(c);
        return false;
      }
    }
    try {
      c.socket.send(json);
    } catch (err) { // the socket closed under us: its close event ends the client
      c.open = false;
      this.#o.logger.debug("WebSocket send failed", { error: String(err) });
      return false;
    }
    c.buffered += 3 * json.length; // a UTF-16 code unit is at most 3 bytes of UTF-8
    return true;
  }

  #drop(c: StreamClient): void {
    c.open = false;
    this.#o.metrics.wsDropped.inc();
    this.#o.logger.warn("WebSocket client too slow; disconnected", { buffered: c.buffered });
    c.socket.close(1013, "slow consumer: too far behind");
    c.release();
  }
}
