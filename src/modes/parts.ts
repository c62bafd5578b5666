/**
 * What a mode builds: {@linkcode NodeParts}, the same shape for a single node (Deno KV,
 * in-process transport) and for cluster mode (NATS and JetStream), so the node and its
 * features are composed without knowing which mode runs.
 * @module
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Config } from "../config/config.ts";
import type { Logger } from "../obs/log.ts";
import type { Metrics } from "../obs/metrics.ts";
import type { TwinHost } from "../runtime/twin_host.ts";
import type { PointSink } from "../ports/point_sink.ts";
import type { TwinService } from "../runtime/twin_service.ts";
import type { Transport } from "../transport/port.ts";
import type { IngestPort } from "../bridges/ingest.ts";
import type { Placement } from "../ports/placement.ts";
import type { DocStores } from "../persistence/doc_store.ts";
import type { AuditLog } from "../security/audit.ts";
import type { JetStreamAudit } from "../security/jetstream_audit.ts";
import type { BlobStore } from "../mgmt/firmware_blobs.ts";
import type { DeviceAuth } from "../security/device_auth.ts";
import type { Profiles } from "../rules/profiles.ts";
import type { WebhookSender } from "../rules/webhook.ts";
import type { Readiness } from "../../routes/health.ts";
import type { Waiting } from "../cluster/startup.ts";

/** Where audit entries go: a file under the data dir, or a JetStream stream all nodes read. */
export type AuditStore = AuditLog | JetStreamAudit;

/** What either mode needs from the node. */
export interface ModeOptions {
  cfg: Config;
  log: Logger;
  metrics: Metrics;
  /** Where telemetry points go (the InfluxDB writer), if anywhere. */
  points?: PointSink;
  webhooks: WebhookSender;
  /** Disconnect this node's devices of a revoked credential. */
  disconnect(twin: string, credential: string): void;
  /** Disconnect this node's devices of a revoked client certificate. */
  disconnectCert(serial: string): void;
  /** Start-up waits for a service (cluster mode: NATS): what for, shown by `/readyz`. */
  onWaiting(w: Waiting): void;
}

/** The parts of a running node, built by a mode (`src/modes/single.ts`, `cluster.ts`). */
export interface NodeParts {
  /** This node's twin host: the twins it hosts. */
  host: TwinHost;
  /** Every twin, whichever node hosts it (requests for others go to their owner). */
  twins: TwinService;
  /** Events, downlink, commands and session queries between the node's parts and nodes. */
  transport: Transport;
  /** Where device messages go: durable before they are acknowledged. */
  ingest: IngestPort;
  /** Which twins (and campaigns) this node owns. */
  placement: Placement;
  /** Small documents of device management (configs, provisioning keys, firmware, campaigns). */
  docs: DocStores;
  audit: AuditStore;
  /** Where firmware image bytes go. */
  firmwareBlobs: BlobStore;
  deviceAuth: DeviceAuth;
  profiles: Profiles;
  /** Routes only this mode serves, by mount path (cluster mode: `/v1/cluster`). */
  routes: Record<string, OpenAPIHono>;
  /** The ids of the nodes of the cluster (a single node: its own). */
  nodes(): Promise<string[]>;
  /** The log line of a graceful stop. */
  leaving: string;
  ready(): Readiness;
  /** The node serves at these addresses now (cluster mode: announced to the other nodes). */
  serving(at: { http: string; mqtt: string | null }): Promise<void>;
  /** Re-read the mode's own certificates (SIGHUP; cluster mode: NATS TLS files). */
  reload?(): Promise<void>;
  /** Graceful stop (cluster mode: hand off every shard first), then close. */
  leave(): Promise<void>;
  /** Stop taking messages, persist what is held, close every store. */
  close(): Promise<void>;
}
