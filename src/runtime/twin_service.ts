/**
 * What the gateway needs from the twins, wherever they live: the single node's
 * {@linkcode TwinHost}, or the cluster's router that forwards to a shard's owner.
 * @module
 */
import type { TwinState } from "../../actors/twin.ts";
import type { JsonObject } from "../../actors/json.ts";
import type { AlarmService } from "../rules/service.ts";
import type { Command } from "../../actors/commands.ts";
import type { HostDiagnostics } from "./twin_host.ts";

/** Twin reads and changes, and the alarms of the twins' profile rules. */
export interface TwinService extends AlarmService {
  /** The twin, or null if it does not exist. */
  get(id: string): Promise<TwinState | null>;
  /** Create or replace attributes; durable on return. */
  putAttributes(id: string, attributes: JsonObject): Promise<TwinState>;
  /** Merge-patch desired state (only at version `ifMatch` if given); durable on return. */
  patchDesired(id: string, patch: JsonObject, ifMatch?: number): Promise<TwinState>;
  /**
   * Queue a command for the twin's device, delivered at once when it listens; durable on
   * return. Throws `twin_not_found` (404) or `command_queue_full` (409).
   */
  sendCommand(id: string, command: Command): Promise<Command>;
  /** The twin's open and recent commands, oldest first; null if the twin does not exist. */
  commands(id: string): Promise<Command[] | null>;
  /** The twin's device subscribed to its commands: deliver what is queued for it. */
  commandsListening(id: string): Promise<void>;
  /** What the node hosting the twin knows about it; null if the twin does not exist. */
  diagnostics(id: string): Promise<HostDiagnostics | null>;
  /** A page of twins in id order whose attributes match `filter`. */
  list(
    after: string | undefined,
    limit: number,
    filter: Record<string, string>,
  ): Promise<{ items: TwinState[]; next?: string }>;
}
