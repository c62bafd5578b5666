/**
 * One simulated device's MQTT connection (`npm:mqtt`, clean session, client id = twin id, will
 * `offline` on `twins/{id}/status`) and the accounting the verification needs: how many
 * changes its twin must have received.
 * @module
 */
import mqtt from "mqtt";
import type { DeviceSim, Mode } from "./plant.ts";
import type { MessageKind, Tally } from "./tally.ts";

/** Connection state of a simulated device. */
export type DeviceState = "new" | "connecting" | "up" | "draining" | "down" | "closed";

/** How a device connects. */
export interface ConnectOptions {
  url: string;
  qos: 0 | 1;
  /** Device token (username = twin id) when the node wants device authentication. */
  token?: string;
  /** How long the first connection may take (ms). */
  timeoutMs: number;
}

/**
 * A device on the wire. `applied` counts the acknowledged messages that change its twin
 * (telemetry, reported, status); `wills` the `offline` wills the broker publishes for it;
 * `tolerance` the messages that may have been applied twice (in flight when the connection was
 * lost unexpectedly and resent after the reconnect).
 */
export class SimDevice {
  readonly sim: DeviceSim;
  readonly id: string;
  state: DeviceState = "new";
  inflight = 0;
  /** Version of the twin after provisioning. */
  baseline = 0;
  applied = 0;
  wills = 0;
  tolerance = 0;
  /** When a dropped device comes back (s into the run). */
  reconnectAt = 0;
  /** The device has not yet sent its identity (`reported` after its first connect). */
  needIdentity = true;
  lastMode: Mode | undefined;
  /** Credential id of the token issued for this run (revoked at the end). */
  credId: string | undefined;
  readonly #o: ConnectOptions;
  readonly #tally: Tally;
  #client: mqtt.MqttClient | undefined;
  #waiters: Array<() => void> = [];
  #connections = 0;

  constructor(sim: DeviceSim, o: ConnectOptions, tally: Tally) {
    this.sim = sim;
    this.id = sim.spec.id;
    this.#o = o;
    this.#tally = tally;
  }

  /** Set the token (after it was issued over HTTP). */
  set token(token: string) {
    this.#o.token = token;
  }

  /** Open a new connection; resolves on its first CONNACK, rejects on its first error. */
  connect(): Promise<void> {
    this.state = "connecting";
    const id = this.id;
    const status = `twins/${id}/status`;
    const c = mqtt.connect(this.#o.url, {
      clientId: id,
      clean: true,
      keepalive: 30,
      reconnectPeriod: 1000,
      connectTimeout: this.#o.timeoutMs,
      resubscribe: false,
      ...(this.#o.token ? { username: id, password: this.#o.token } : {}),
      will: { topic: status, payload: Buffer.from("offline"), qos: this.#o.qos, retain: false },
    });
    this.#client = c;
    return new Promise((resolve, reject) => {
      let settled = false;
      c.on("connect", () => {
        if (c !== this.#client) return;
        if (this.#connections++ > 0) this.#tally.reconnects++;
        this.state = "up";
        settled = true;
        resolve();
        this.publish("status", status, "online");
      });
      c.on("error", (err) => {
        if (settled || c !== this.#client) return; // mqtt.js retries by itself
        settled = true;
        this.state = "closed";
        c.end(true);
        reject(new Error(`Cannot connect device "${id}" to ${this.#o.url}: ${err.message}`));
      });
      c.on("close", () => {
        if (c !== this.#client || (this.state !== "up" && this.state !== "draining")) return;
        // lost without us: the broker publishes the will; mqtt.js reconnects and resends
        this.#tally.unexpected++;
        this.wills++;
        this.tolerance += this.inflight;
        this.state = "connecting";
      });
    });
  }

  /** Publish one message; counts it and its acknowledgement. */
  publish(kind: MessageKind, topic: string, payload: string): void {
    const c = this.#client!;
    const t = this.#tally;
    const qos = this.#o.qos;
    t.sent++;
    t.byKind[kind]++;
    if (qos === 1) this.inflight++;
    const started = performance.now();
    c.publish(topic, payload, { qos }, (err) => {
      if (qos === 1) this.inflight--;
      if (err) {
        t.failed++;
      } else {
        if (qos === 1) {
          t.acked++;
          const ms = performance.now() - started;
          t.latency.record(ms);
          t.window.record(ms);
        }
        if (kind !== "malformed") this.applied++;
      }
      if (this.inflight === 0 && this.#waiters.length > 0) {
        for (const w of this.#waiters.splice(0)) w();
      }
    });
  }

  /** Resolves when nothing is in flight, or false after `ms`. */
  drained(ms: number): Promise<boolean> {
    if (this.inflight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        resolve(ok);
      };
      const waiter = () => done(true);
      const timer = setTimeout(() => done(false), ms);
      this.#waiters.push(waiter);
    });
  }

  /**
   * Drop the connection the way a network failure does — no DISCONNECT, so the broker
   * publishes the `offline` will — once every message in flight is acknowledged (so nothing
   * is resent and counted twice). The device sends nothing meanwhile.
   */
  drop(): void {
    this.state = "draining";
    const c = this.#client!;
    const go = () => {
      if (this.state !== "draining" || c !== this.#client) return;
      this.state = "down";
      this.wills++;
      this.#tally.wills++;
      c.end(true);
    };
    if (this.inflight === 0) go();
    else this.#waiters.push(go);
  }

  /**
   * End the run for this device: a connected one says `offline` and disconnects cleanly (no
   * will); a dropped one stays down; one still connecting, or whose acknowledgements do not
   * come within `timeoutMs`, is cut off (its will and its unacknowledged messages may or may
   * not reach the twin: counted in `tolerance`).
   */
  async close(timeoutMs: number): Promise<void> {
    const c = this.#client;
    if (!c) return;
    if (this.state === "draining") await this.drained(timeoutMs);
    if (this.state === "up") {
      this.publish("status", `twins/${this.id}/status`, "offline");
      if (await this.drained(timeoutMs)) {
        this.state = "closed";
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([
          new Promise<void>((resolve) => c.end(false, {}, () => resolve())),
          new Promise<void>((resolve) => timer = setTimeout(resolve, timeoutMs)),
        ]);
        clearTimeout(timer);
        c.end(true);
        return;
      }
    }
    if (this.state !== "down" && this.state !== "closed") {
      this.tolerance += 1 + (this.state === "connecting" ? 0 : this.inflight);
    }
    this.state = "closed";
    c.end(true);
  }
}
