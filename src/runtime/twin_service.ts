/**
 * What the gateway needs from the twins, wherever they live: the single node's
 * {@linkcode TwinHost}, or the cluster's router that forwards to a shard's owner.
 * @module
 */
import type { TwinRecord, TwinState } from "../../actors/twin.ts";
import type { JsonObject } from "../../actors/json.ts";
import type { Alarm } from "../../actors/rules/alarm.ts";
import type { RuleStatus } from "../../actors/rules/state.ts";
import type { AlarmService } from "../rules/service.ts";
import type { Command } from "../../actors/commands.ts";
import type { Quarantine, TwinRefusal } from "./quarantine.ts";

/** What the node hosting a twin knows about it (see `GET /v1/twins/{id}/diagnostics`). */
export interface HostDiagnostics {
  /** The node hosting the twin. */
  node: string;
  version: number;
  connectivity: TwinState["connectivity"];
  traffic: TwinRecord["traffic"] | null;
  actor: {
    resident: boolean;
    mailboxDepth: number;
    /** Last message handled (ms), while resident. */
    lastActive: number | null;
    /** When its rules or commands next need a tick (ms), if armed. */
    timerAt: number | null;
  };
  snapshot: {
    /** Version in the snapshot store. */
    persistedVersion: number | null;
    /** Changes not yet committed. */
    unpersisted: number;
    /** Last commit of its snapshot by this node (ms), while resident. */
    savedAt: number | null;
  };
  commands: Command[];
  alarms: Alarm[];
  rules: RuleStatus[];
  /** The twin's last quarantine on this node (`active` while it lasts), or null. */
  quarantine: (Quarantine & { active: boolean }) | null;
  /** Device messages the twin refused lately (size limit, quarantine), oldest first. */
  refused: TwinRefusal[];
}

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
