/**
 * What the gateway needs from the twins, wherever they live: the single node's
 * {@linkcode TwinHost}, or the cluster's router that forwards to a shard's owner.
 * @module
 */
import type { TwinState } from "../../actors/twin.ts";
import type { JsonObject } from "../../actors/json.ts";
import type { AlarmService } from "../rules/service.ts";

/** Twin reads and changes, and the alarms of the twins' profile rules. */
export interface TwinService extends AlarmService {
  /** The twin, or null if it does not exist. */
  get(id: string): Promise<TwinState | null>;
  /** Create or replace attributes; durable on return. */
  putAttributes(id: string, attributes: JsonObject): Promise<TwinState>;
  /** Merge-patch desired state (only at version `ifMatch` if given); durable on return. */
  patchDesired(id: string, patch: JsonObject, ifMatch?: number): Promise<TwinState>;
  /** A page of twins in id order whose attributes match `filter`. */
  list(
    after: string | undefined,
    limit: number,
    filter: Record<string, string>,
  ): Promise<{ items: TwinState[]; next?: string }>;
}
