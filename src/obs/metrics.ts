/**
 * Prometheus metrics of one node, on its own registry (several nodes may share a process in
 * tests). Names follow Prometheus conventions: `_total` counters, `_seconds` durations.
 * Labels never carry device ids or other unbounded values.
 * @module
 */
import client from "prom-client";
import { NODE_DENIAL_LIMIT } from "../security/audit_gate.ts";

/** Create the node's metric set on a fresh registry. */
export function createMetrics() {
  const registry = new client.Registry();
  const r = [registry];
  /** Read at scrape time; the node sets them once its parts exist. */
  const sources: {
    devicesConnected?: () => number;
    mailboxDepth?: () => number;
    campaignsByState?: () => Record<string, number>;
    campaignDevicesByState?: () => Record<string, number>;
  } = {};
  /** A gauge per state, read at scrape time from `sources[source]` (once the node set it). */
  const byState = (
    name: string,
    help: string,
    source: "campaignsByState" | "campaignDevicesByState",
  ) =>
    new client.Gauge({
      name,
      help,
      labelNames: ["state"] as const,
      registers: r,
      collect() {
        for (const [state, n] of Object.entries(sources[source]?.() ?? {})) this.set({ state }, n);
      },
    });
  const m = {
    registry,
    sources,
    devicesConnected: new client.Gauge({
      name: "twinmill_devices_connected",
      help: "Devices with an MQTT session on this node (clients that spoke for a twin)",
      registers: r,
      collect() {
        if (sources.devicesConnected) this.set(sources.devicesConnected());
      },
    }),
    mailboxDepth: new client.Gauge({
      name: "twinmill_actor_mailbox_depth",
      help: "Messages waiting in twin mailboxes on this node",
      registers: r,
      collect() {
        if (sources.mailboxDepth) this.set(sources.mailboxDepth());
      },
    }),
    auditSuppressed: new client.Counter({
      name: "twinmill_audit_entries_suppressed_total",
      help: `Audit entries of refusals left out: more than ${NODE_DENIAL_LIMIT.perSecond}/s ` +
        `(burst ${NODE_DENIAL_LIMIT.burst}) on this node`,
      registers: r,
    }),
    campaigns: byState(
      "twinmill_campaigns",
      "Unfinished FOTA campaigns driven by this node, by state",
      "campaignsByState",
    ),
    campaignDevices: byState(
      "twinmill_campaign_devices",
      "Devices in the unfinished FOTA campaigns driven by this node, by their campaign state",
      "campaignDevicesByState",
    ),
    eventLoopLag: new client.Histogram({
      name: "twinmill_event_loop_lag_seconds",
      help: "How late a 100 ms timer fires (event-loop lag), sampled every 100 ms",
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: r,
    }),
    mqttConnections: new client.Gauge({
      name: "twinmill_mqtt_connections",
      help: "MQTT clients connected to this node",
      registers: r,
    }),
    messagesIn: new client.Counter({
      name: "twinmill_mqtt_messages_received_total",
      help: "Valid device messages accepted, by message kind",
      labelNames: ["kind"] as const,
      registers: r,
    }),
    messagesRejected: new client.Counter({
      name: "twinmill_mqtt_messages_rejected_total",
      help: "Device messages rejected before reaching a twin, by reason",
      labelNames: ["reason"] as const,
      registers: r,
    }),
    messagesAcked: new client.Counter({
      name: "twinmill_mqtt_messages_acked_total",
      help: "Device messages made durable and released to the broker (PUBACK for QoS 1)",
      registers: r,
    }),
    ackLatency: new client.Histogram({
      name: "twinmill_mqtt_ack_latency_seconds",
      help: "Time from a message's arrival to its durable commit",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: r,
    }),
    ingestBackpressure: new client.Counter({
      name: "twinmill_ingest_backpressure_total",
      help: "Times ingest held back acknowledgements because too many messages were unretired",
      registers: r,
    }),
    inboundPending: new client.Gauge({
      name: "twinmill_inbound_log_pending",
      help: "Durable inbound messages not yet retired (twin persisted and point written)",
      registers: r,
    }),
    twinsActive: new client.Gauge({
      name: "twinmill_twins_active",
      help: "Twin actors resident in memory",
      registers: r,
    }),
    activations: new client.Counter({
      name: "twinmill_twin_activations_total",
      help: "Twin actor activations",
      registers: r,
    }),
    passivations: new client.Counter({
      name: "twinmill_twin_passivations_total",
      help: "Twin actor passivations after idle time",
      registers: r,
    }),
    handlerFailures: new client.Counter({
      name: "twinmill_actor_handler_failures_total",
      help: "Actor message handlers that threw; the actor restarted from persisted state",
      registers: r,
    }),
    effectFailures: new client.Counter({
      name: "twinmill_effect_failures_total",
      help: "Effects of a twin change (downlink, event, point, webhook, ...) that threw; the " +
        "change stands, the node goes on",
      labelNames: ["type"] as const,
      registers: r,
    }),
    twinsQuarantined: new client.Counter({
      name: "twinmill_twins_quarantined_total",
      help: "Twins quarantined because their snapshot could not be stored (their unsaved " +
        "changes were dropped)",
      registers: r,
    }),
    mailboxFull: new client.Counter({
      name: "twinmill_actor_mailbox_full_total",
      help: "Messages refused because an actor mailbox was full",
      registers: r,
    }),
    snapshotsWritten: new client.Counter({
      name: "twinmill_snapshots_written_total",
      help: "Twin snapshots persisted",
      registers: r,
    }),
    influxWritten: new client.Counter({
      name: "twinmill_influx_points_written_total",
      help: "Points written to InfluxDB",
      registers: r,
    }),
    influxBuffered: new client.Gauge({
      name: "twinmill_influx_points_buffered",
      help: "Points waiting to be written to InfluxDB",
      registers: r,
    }),
    influxRetries: new client.Counter({
      name: "twinmill_influx_write_retries_total",
      help: "InfluxDB write attempts that failed and will be retried",
      registers: r,
    }),
    influxFailed: new client.Counter({
      name: "twinmill_influx_points_failed_total",
      help: "Points InfluxDB refused (4xx); counted and logged, not retried",
      labelNames: ["reason"] as const,
      registers: r,
    }),
    influxOverflow: new client.Counter({
      name: "twinmill_influx_buffer_overflow_total",
      help: "Times the InfluxDB buffer was full and ingest was held back",
      registers: r,
    }),
    influxLatency: new client.Histogram({
      name: "twinmill_influx_write_duration_seconds",
      help: "Duration of InfluxDB write requests",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: r,
    }),
    httpRequests: new client.Counter({
      name: "twinmill_http_requests_total",
      help: "HTTP requests by route pattern, method and status",
      labelNames: ["route", "method", "status"] as const,
      registers: r,
    }),
    httpDuration: new client.Histogram({
      name: "twinmill_http_request_duration_seconds",
      help: "HTTP request duration by route pattern",
      labelNames: ["route", "method"] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: r,
    }),
    wsClients: new client.Gauge({
      name: "twinmill_ws_clients",
      help: "WebSocket stream clients connected",
      registers: r,
    }),
    wsDropped: new client.Counter({
      name: "twinmill_ws_clients_dropped_total",
      help: "WebSocket clients disconnected because they could not keep up",
      registers: r,
    }),
    wsEventsSent: new client.Counter({
      name: "twinmill_ws_events_sent_total",
      help: "Events sent to WebSocket clients",
      registers: r,
    }),
    shardsOwned: new client.Gauge({
      name: "twinmill_cluster_shards_owned",
      help: "Shards this node owns (cluster mode)",
      registers: r,
    }),
    handoffs: new client.Counter({
      name: "twinmill_cluster_handoffs_total",
      help: "Shard handoffs this node started (join rebalance or leave)",
      registers: r,
    }),
    leaseRenewals: new client.Counter({
      name: "twinmill_cluster_lease_renewals_total",
      help: "Successful shard lease renewals",
      registers: r,
    }),
    leaseLosses: new client.Counter({
      name: "twinmill_cluster_lease_losses_total",
      help: "Shard leases lost (renewal failed or expired): the shard was fenced",
      registers: r,
    }),
    snapshotsFenced: new client.Counter({
      name: "twinmill_cluster_snapshot_writes_fenced_total",
      help: "Snapshot writes or loads that found a newer owner's snapshot: refused, shard fenced",
      registers: r,
    }),
    staleSnapshotsOverwritten: new client.Counter({
      name: "twinmill_cluster_stale_snapshots_overwritten_total",
      help: "Snapshots of an older owner, landed after this owner's load, overwritten by it",
      registers: r,
    }),
    consumerLag: new client.Gauge({
      name: "twinmill_cluster_consumer_lag_messages",
      help: "Inbound messages not yet acknowledged on the shards this node owns",
      registers: r,
    }),
    authFailures: new client.Counter({
      name: "twinmill_mqtt_auth_failures_total",
      help: "MQTT connects refused by device authentication, by reason",
      labelNames: ["reason"] as const,
      registers: r,
    }),
    authThrottled: new client.Counter({
      name: "twinmill_mqtt_auth_throttled_total",
      help:
        "MQTT connects refused unchecked after too many authentication failures, by source or identity",
      labelNames: ["by"] as const,
      registers: r,
    }),
    aclDenials: new client.Counter({
      name: "twinmill_mqtt_acl_denials_total",
      help: "Device publishes and subscriptions refused by the ACL (another twin's topics)",
      labelNames: ["action"] as const,
      registers: r,
    }),
    rateLimited: new client.Counter({
      name: "twinmill_rate_limited_total",
      help: "Requests, messages and connections refused by a rate or connection limit",
      labelNames: ["what"] as const,
      registers: r,
    }),
    httpConnectionsClosed: new client.Counter({
      name: "twinmill_http_connections_closed_total",
      help: "HTTP connections the node closed: header_timeout (no complete request head in " +
        "time), idle_timeout (no request in progress), too_many_connections",
      labelNames: ["reason"] as const,
      registers: r,
    }),
    authDenied: new client.Counter({
      name: "twinmill_http_auth_denied_total",
      help: "HTTP requests refused: 401 unauthenticated, 403 role or site scope, 429 rate",
      labelNames: ["status"] as const,
      registers: r,
    }),
    alarmTransitions: new client.Counter({
      name: "twinmill_alarm_transitions_total",
      help: "Alarm changes from profile rules, by change (raised, updated, cleared, acknowledged)",
      labelNames: ["change", "severity"] as const,
      registers: r,
    }),
    ruleFaults: new client.Counter({
      name: "twinmill_rule_faults_total",
      help: "Rule evaluations that failed (the rule is marked faulted; the twin carries on)",
      registers: r,
    }),
    ruleActions: new client.Counter({
      name: "twinmill_rule_actions_total",
      help: "Rule actions due, by type (desired, command, webhook)",
      labelNames: ["type"] as const,
      registers: r,
    }),
    commands: new client.Counter({
      name: "twinmill_commands_total",
      help: "Device commands by outcome (queued, delivered, succeeded, failed, expired, timeout)",
      labelNames: ["status"] as const,
      registers: r,
    }),
    ruleTicks: new client.Counter({
      name: "twinmill_rule_ticks_total",
      help: "Time-driven rule evaluations (forSeconds, stale, window close)",
      registers: r,
    }),
    fieldsSuppressed: new client.Counter({
      name: "twinmill_telemetry_fields_suppressed_total",
      help: "Telemetry fields not written or streamed because of a deadband rule",
      registers: r,
    }),
    webhooks: new client.Counter({
      name: "twinmill_webhooks_total",
      help: "Webhook calls of rule actions, by outcome (sent, failed, dropped)",
      labelNames: ["outcome"] as const,
      registers: r,
    }),
    profilesLoaded: new client.Gauge({
      name: "twinmill_profiles",
      help: "Device profiles loaded on this node",
      registers: r,
    }),
    // the bridge from the plant's broker (TWINMILL_MQTT_URL, src/connectors/bridge/)
    bridgeConnected: new client.Gauge({
      name: "twinmill_bridge_connected",
      help: "1 while this node's bridge is connected to the plant's broker, else 0",
      registers: r,
    }),
    bridgeConnects: new client.Counter({
      name: "twinmill_bridge_connects_total",
      help: "Connections of the bridge to the plant's broker (the first and each reconnect)",
      registers: r,
    }),
    bridgeReceived: new client.Counter({
      name: "twinmill_bridge_messages_received_total",
      help: "PUBLISH packets the bridge got from the plant's broker, by redelivered (DUP set)",
      labelNames: ["redelivered"] as const,
      registers: r,
    }),
    bridgeAcks: new client.Counter({
      name: "twinmill_bridge_acks_total",
      help: "PUBACKs the bridge sent to the plant's broker (each once its message was durable " +
        "or rejected)",
      registers: r,
    }),
    bridgePublished: new client.Counter({
      name: "twinmill_bridge_messages_published_total",
      help: "Messages the bridge published to the plant's broker, by kind (desired, command)",
      labelNames: ["kind"] as const,
      registers: r,
    }),
  };
  client.collectDefaultMetrics({ register: registry, prefix: "twinmill_" });
  for (const name of NOT_PROMTOOL_CLEAN) registry.removeSingleMetric(name);
  return m;
}

/**
 * prom-client's default gauges whose names end in `_total`, which Prometheus reserves for
 * counters (`promtool check metrics` warns). collectDefaultMetrics cannot skip them, so they
 * are removed right after; each is the sum of its per-type family, which stays
 * (`sum(twinmill_nodejs_active_handles)`).
 */
const NOT_PROMTOOL_CLEAN = [
  "twinmill_nodejs_active_handles_total",
  "twinmill_nodejs_active_requests_total",
  "twinmill_nodejs_active_resources_total",
];

/**
 * Sample event-loop lag into `twinmill_event_loop_lag_seconds`: a 100 ms timer measures how
 * late it fires. Returns the stop function.
 */
export function monitorEventLoop(m: { eventLoopLag: { observe(v: number): void } }): () => void {
  const every = 100;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    m.eventLoopLag.observe(Math.max(0, now - last - every) / 1000);
    last = now;
  }, every);
  Deno.unrefTimer(timer);
  return () => clearInterval(timer);
}

/** The node's metric set. */
export type Metrics = ReturnType<typeof createMetrics>;
