/**
 * What the gateway needs for device profiles and alarms, and the port profiles are stored
 * behind. The single node implements them over Deno KV; the cluster over JetStream KV and
 * request/reply to twin owners.
 * @module
 */
import type { Alarm } from "../../actors/rules/alarm.ts";
import type { Profile } from "../../actors/rules/profile_schema.ts";
import type { RuleStatus } from "../../actors/rules/state.ts";

/** A stored profile: its name, the validated document (defaults filled in), last change. */
export interface StoredProfile {
  name: string;
  profile: Profile;
  /** ms since the epoch. */
  updatedAt: number;
}

/** Where profiles are kept. Names are 1–64 of `A-Z a-z 0-9 _ - .`. */
export interface ProfileStore extends AsyncDisposable {
  /** Every profile, in name order. */
  all(): Promise<StoredProfile[]>;
  get(name: string): Promise<StoredProfile | null>;
  put(p: StoredProfile): Promise<void>;
  /** True if it existed. */
  delete(name: string): Promise<boolean>;
}

/** Faults of one rule seen on this node since the profile was last changed. */
export interface RuleFaultStatus {
  rule: string;
  /** Evaluations that failed. */
  faults: number;
  lastFault: string;
  /** ms since the epoch. */
  at: number;
}

/** A profile as the API shows it. */
export interface ProfileView extends StoredProfile {
  /** Fingerprint of the profile (changes with every edit). */
  hash: string;
  /** Rules that faulted on this node (a faulted rule never breaks its twin). */
  status: { rules: RuleFaultStatus[] };
}

/** Profiles over HTTP. */
export interface ProfileService {
  list(): Promise<ProfileView[]>;
  get(name: string): Promise<ProfileView | null>;
  /**
   * Validate, store and apply to live twins. Throws `BadRequestError` (code
   * `profile_invalid`) whose message names the first bad field, e.g. `rules[2].op: ...`.
   */
  put(name: string, body: unknown): Promise<{ created: boolean; profile: ProfileView }>;
  /** True if it existed. Twins using it clear their alarms. */
  delete(name: string): Promise<boolean>;
}

/** Filters of `GET /v1/alarms`. */
export interface AlarmQuery {
  state?: Alarm["state"];
  twin?: string;
  severity?: Alarm["severity"];
  /** Only twins whose `site` attribute is this. */
  site?: string;
  limit: number;
  /** Opaque: the `next` of the previous page. */
  cursor?: string;
}

/** Alarms over HTTP. */
export interface AlarmService {
  /** Alarms in (twin, raise) order; `next` when there may be more. */
  listAlarms(q: AlarmQuery): Promise<{ items: Alarm[]; next?: string }>;
  /** Acknowledge; throws `TwinmillError` `alarm_not_found` (404) for an unknown id. */
  ackAlarm(id: string, comment?: string): Promise<Alarm>;
  /** The rules' status of one twin (faults, pending timers), or null if it does not exist. */
  ruleStatus(twin: string): Promise<RuleStatus[] | null>;
}
