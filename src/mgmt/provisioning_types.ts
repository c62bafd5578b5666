/**
 * Provisioning's vocabulary: limits, keys as asked for and as stored, requests and answers,
 * its errors, and the ports it needs (twins, credentials, audit).
 * @module
 */
import type { JsonObject } from "../../actors/json.ts";
import type { TwinState } from "../../actors/twin.ts";
import { TwinmillError } from "../errors.ts";
import type { AuditInput } from "../security/audit_entry.ts";
import type { IssuedCredential } from "../security/device_auth.ts";

/** Limits of provisioning keys and requests. */
export const PROVISIONING_LIMITS = {
  /** Most keys stored at once (expired ones count until deleted). */
  maxKeys: 1000,
  defaultQuota: 100,
  maxQuota: 100_000,
  /** Default lifetime of a key. */
  defaultTtlMs: 30 * 86_400_000,
  /** Longest lifetime of a key. */
  maxTtlMs: 365 * 86_400_000,
  /** Most allow or deny patterns of a key. */
  maxPatterns: 100,
  /** Most attributes a device or template may send. */
  maxAttributes: 64,
  /** Longest attribute string value. */
  maxValueLength: 1024,
  /** How long a claim on a new twin id holds (a crashed request's claim then lapses). */
  claimMs: 60_000,
} as const;

/** Attribute values: scalars, as in `PUT /v1/twins/{id}`. */
export type AttributeValue = string | number | boolean;

/** What every device provisioned with a key gets. */
export interface ProvisioningTemplate {
  type?: string;
  site?: string;
  profile?: string;
  attributes?: Record<string, AttributeValue>;
}

/** A key as an admin asks for it. */
export interface KeySpec {
  name: string;
  template?: ProvisioningTemplate;
  /** Twin ids or globs with `*` (anchored); absent or empty: any id. */
  allow?: string[];
  /** Twin ids or globs with `*`; deny wins over allow. */
  deny?: string[];
  /** Most devices it may provision. Default 100. */
  quota?: number;
  /** ms since the epoch; default 30 days from now, at most 365 days. */
  expiresAt?: number;
  /** May it provision an id whose twin already exists (replacing its attributes)? */
  reprovision?: boolean;
}

/** A key as stored (the secret only as its SHA-256). */
export interface ProvisioningKey {
  id: string;
  name: string;
  /** SHA-256 of the whole key, hex. */
  hash: string;
  template: ProvisioningTemplate;
  allow: string[];
  deny: string[];
  quota: number;
  used: number;
  expiresAt: number;
  createdAt: number;
  reprovision: boolean;
  lastUsedAt: number | null;
}

/** A key as listed: everything but its hash. */
export type KeyView = Omit<ProvisioningKey, "hash">;

/** A device's provisioning request. */
export interface ProvisionRequest {
  id?: unknown;
  attributes?: unknown;
}

/** A successful provisioning answer (HTTP 201 body; MQTT response payload). */
export interface ProvisionAnswer {
  status: "ok";
  id: string;
  credentials: { type: "token"; username: string; token: string };
  /** Device attributes that the key's template sets instead (type, site, profile, ...). */
  ignoredAttributes: string[];
  mqtt: {
    username: string;
    topics: Record<"telemetry" | "reported" | "status" | "desired" | "commands", string>;
  };
}

/** A refused or failed request, as MQTT devices get it. */
export interface ProvisionRefusal {
  status: "error";
  error: { code: string; message: string };
}

/** Why a provisioning request was refused; `code` is stable, `status` the HTTP status. */
export class ProvisioningError extends TwinmillError {
  override name = "ProvisioningError";
  constructor(code: string, status: number, message: string) {
    super(code, status, message);
  }
}

/** The refusal of a key that is unknown, revoked or not shaped like one. */
export const invalidKey = () =>
  new ProvisioningError("provisioning_key_invalid", 401, "Unknown or revoked provisioning key");

/** No key with this id. */
export class ProvisioningKeyNotFoundError extends TwinmillError {
  override name = "ProvisioningKeyNotFoundError";
  constructor(id: string) {
    super("provisioning_key_not_found", 404, `Provisioning key "${id}" not found`);
  }
}

/** Where audit entries go (an `AuditLog` or `JetStreamAudit`). */
export interface AuditSink {
  record(e: AuditInput): void;
}

/** What provisioning needs of the twins (the wrapped twin service of the node). */
export type ProvisionTwins = {
  get(id: string): Promise<TwinState | null>;
  putAttributes(id: string, attributes: JsonObject): Promise<TwinState>;
};

/** What provisioning needs to issue a device token (`DeviceAuth`). */
export interface CredentialIssuer {
  create(twin: string): Promise<IssuedCredential>;
}
