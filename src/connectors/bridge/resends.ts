/**
 * The plant broker's messages this node made durable lately, by their key (`messageKey`: the
 * bridge's client id, packet id, topic and payload), so that one the broker sends again (DUP)
 * is acknowledged without being taken twice. A broker restarted with its persistence
 * redelivers what it had not seen acknowledged — hundreds at once under a burst (mosquitto
 * 2.0.11 reads PUBACKs late), more than the 128 keys a twin remembers.
 *
 * In memory: a node restart forgets them (the twin's last keys decide then). Bounded by count,
 * the oldest forgotten first: the last {@linkcode MAX_DURABLE_KEYS}, well under the 65,535
 * packet ids a broker cycles through per session, so a later message with the same packet id,
 * topic and payload is never taken for an earlier one.
 * @module
 */

/** Keys remembered at most. */
export const MAX_DURABLE_KEYS = 10_000;

/** The keys of the last messages made durable, oldest first. */
export class DurableKeys {
  readonly #keys = new Set<number>();

  constructor(readonly max: number = MAX_DURABLE_KEYS) {}

  /** A message with `key` is durable. */
  add(key: number): void {
    if (this.#keys.has(key)) return;
    if (this.#keys.size >= this.max) this.#keys.delete(this.#keys.values().next().value!);
    this.#keys.add(key);
  }

  /** True when a message with `key` was made durable lately. */
  has(key: number): boolean {
    return this.#keys.has(key);
  }

  /** Keys remembered. */
  get size(): number {
    return this.#keys.size;
  }
}
