/**
 * The quota of provisioning keys and the claims on new twin ids, kept consistent across the
 * nodes of a cluster: a key's quota changes by compare-and-set on its document (serialised
 * per key on this node, retried on another node's concurrent change); a short claim document
 * per twin id keeps two requests for the same new twin from both creating it.
 * @module
 */
import { TwinmillError } from "../errors.ts";
import type { DocStore } from "../persistence/doc_store.ts";
import {
  invalidKey,
  PROVISIONING_LIMITS,
  ProvisioningError,
  type ProvisioningKey,
} from "./provisioning_types.ts";

/** The refusal of a key whose quota is used up. */
export function exhausted(key: ProvisioningKey): ProvisioningError {
  return new ProvisioningError(
    "provisioning_quota_exhausted",
    403,
    `Provisioning key "${key.id}" has provisioned its ${key.quota} devices`,
  );
}

/** Quota changes of the stored keys and claims on new twin ids. */
export class KeyQuota {
  readonly #keys: DocStore<ProvisioningKey>;
  readonly #claims: DocStore<{ at: number }>;
  /** Per-key chains: quota changes of one key run one at a time on this node. */
  readonly #chains = new Map<string, Promise<unknown>>();

  constructor(keys: DocStore<ProvisioningKey>, claims: DocStore<{ at: number }>) {
    this.#keys = keys;
    this.#claims = claims;
  }

  /** Claim a new twin id for this request (create-only document; a stale one is taken over). */
  async claim(id: string, now: number): Promise<void> {
    const busy = () =>
      new ProvisioningError(
        "provisioning_in_progress",
        409,
        `Twin "${id}" is being provisioned by another request; retry in a moment`,
      );
    const cur = await this.#claims.get(id);
    if (cur && cur.value.at + PROVISIONING_LIMITS.claimMs > now) throw busy();
    if (!(await this.#claims.put(id, { at: now }, cur ? cur.version : null))) throw busy();
  }

  /** Drop the claim on twin id `id`. */
  async unclaim(id: string): Promise<void> {
    await this.#claims.delete(id);
  }

  /** Run `f` after every earlier change of key `id` on this node. */
  #serial<T>(id: string, f: () => Promise<T>): Promise<T> {
    const prev = this.#chains.get(id) ?? Promise.resolve();
    const run = prev.then(f, f);
    const tail = run.catch(() => {});
    this.#chains.set(id, tail);
    tail.then(() => {
      if (this.#chains.get(id) === tail) this.#chains.delete(id);
    });
    return run;
  }

  /** Take one device of the key's quota (compare-and-set; retried on a concurrent change). */
  consume(id: string, now: number): Promise<void> {
    return this.#serial(id, async () => {
      for (let attempt = 0; attempt < 20; attempt++) {
        const d = await this.#keys.get(id);
        if (!d) throw invalidKey();
        if (d.value.used >= d.value.quota) throw exhausted(d.value);
        const next = { ...d.value, used: d.value.used + 1, lastUsedAt: now };
        if (await this.#keys.put(id, next, d.version)) return;
      }
      throw new TwinmillError(
        "provisioning_busy",
        503,
        `Provisioning key "${id}" is changed by too many requests at once; retry`,
      );
    });
  }

  /** Give back one device of the quota (the provisioning failed after taking it). */
  release(id: string): Promise<void> {
    return this.#serial(id, async () => {
      for (let attempt = 0; attempt < 20; attempt++) {
        const d = await this.#keys.get(id);
        if (!d || d.value.used === 0) return;
        if (await this.#keys.put(id, { ...d.value, used: d.value.used - 1 }, d.version)) return;
      }
    });
  }
}
