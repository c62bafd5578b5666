/**
 * What a cluster node does on NATS, written as NATS permissions: the core subjects it
 * publishes and subscribes to, the JetStream streams, KV and object buckets it uses, and the
 * JetStream API calls it makes on them. One list serves the start-up check (`permissions.ts`)
 * and the server side: `scripts/nats_auth.ts` renders it as the `TWINMILL` account of
 * `infra/nats-auth.conf`, with a `node` user limited to it and a read-only `tools` user.
 *
 * Stream and bucket names are the defaults of the modules that create them
 * (`inbound.ts`, `jetstream_audit.ts`, `jetstream_kv.ts`, `kv_leases.ts`, `credentials.ts`,
 * `jetstream_profile_store.ts`, `doc_store.ts` kinds, `firmware_blobs_object.ts`).
 * @module
 */
import { INBOUND_STREAM } from "./inbound.ts";

/** The audit stream (`src/security/jetstream_audit.ts`). */
const AUDIT_STREAM = "TM_AUDIT";

/** KV buckets of a node: snapshots, profiles, credentials, leases, members, documents. */
export const KV_BUCKETS: readonly string[] = [
  "tm_twins",
  "tm_profiles",
  "tm_credentials",
  "tm_leases",
  "tm_epochs",
  "tm_nodes",
  // documents (doc_store.ts: `tm_{kind}`)
  "tm_configs",
  "tm_provisioning_keys",
  "tm_provisioning_claims",
  "tm_campaigns",
  "tm_campaign_devices",
  "tm_firmware",
];

/** Object store buckets (firmware images). */
export const OBJECT_BUCKETS: readonly string[] = ["tm_firmware"];

/** Every JetStream stream of a node: its own two, then those behind the buckets. */
export const STREAMS: readonly string[] = [
  INBOUND_STREAM,
  AUDIT_STREAM,
  ...KV_BUCKETS.map((b) => `KV_${b}`),
  ...OBJECT_BUCKETS.map((b) => `OBJ_${b}`),
];

/** Publish and subscribe allow lists of one NATS user. */
export interface Permissions {
  publish: string[];
  subscribe: string[];
}

/**
 * The `node` user: twinmill's core subjects (`tm.>`, replies on `_INBOX.>`), and on its own
 * streams only: create, update and read them, read messages, manage and pull its consumers,
 * ack, flow control; writes to its buckets. No stream deletion, no other stream.
 */
export function nodePermissions(): Permissions {
  const publish = ["tm.>", "_INBOX.>", "$JS.API.INFO"];
  for (const s of STREAMS) {
    publish.push(
      `$JS.API.STREAM.INFO.${s}`,
      `$JS.API.STREAM.CREATE.${s}`,
      `$JS.API.STREAM.UPDATE.${s}`,
      `$JS.API.STREAM.MSG.GET.${s}`,
      `$JS.API.DIRECT.GET.${s}`,
      `$JS.API.DIRECT.GET.${s}.>`,
      // CREATE.S (ephemeral), NAMES.S, LIST.S; CREATE/INFO/DELETE.S.name[.filter];
      // DURABLE.CREATE.S.name and MSG.NEXT.S.name
      `$JS.API.CONSUMER.*.${s}`,
      `$JS.API.CONSUMER.*.${s}.>`,
      `$JS.API.CONSUMER.*.*.${s}.*`,
      `$JS.ACK.${s}.>`,
      `$JS.FC.${s}.>`,
    );
  }
  for (const b of OBJECT_BUCKETS) publish.push(`$JS.API.STREAM.PURGE.OBJ_${b}`);
  for (const b of KV_BUCKETS) publish.push(`$KV.${b}.>`);
  for (const b of OBJECT_BUCKETS) publish.push(`$O.${b}.>`);
  return { publish, subscribe: ["tm.>", "_INBOX.>"] };
}

/**
 * The read-only `tools` user (the `nats` CLI, backups): stream and consumer information,
 * messages by sequence or subject, ephemeral consumers to read with (not on `TM_IN`, whose
 * shard consumers a pull would take messages from), stream snapshots. It cannot publish into
 * any twinmill subject or bucket, ack, purge, delete, or create a named consumer.
 */
export function toolsPermissions(): Permissions {
  const publish = ["$JS.API.INFO", "$JS.API.STREAM.NAMES", "$JS.API.STREAM.LIST"];
  for (const s of STREAMS) {
    publish.push(
      `$JS.API.STREAM.INFO.${s}`,
      `$JS.API.STREAM.MSG.GET.${s}`,
      `$JS.API.DIRECT.GET.${s}`,
      `$JS.API.DIRECT.GET.${s}.>`,
      `$JS.API.CONSUMER.NAMES.${s}`,
      `$JS.API.CONSUMER.LIST.${s}`,
      `$JS.API.CONSUMER.INFO.${s}.*`,
      `$JS.API.STREAM.SNAPSHOT.${s}`,
      `$JS.SNAPSHOT.ACK.${s}.>`,
    );
    if (s === INBOUND_STREAM) continue;
    publish.push(
      `$JS.API.CONSUMER.CREATE.${s}`,
      `$JS.API.CONSUMER.MSG.NEXT.${s}.*`,
      `$JS.FC.${s}.>`,
    );
  }
  return { publish, subscribe: ["_INBOX.>"] };
}

/** The families of `tm.>`, one pattern each (tests take one away). */
export const TM_FAMILIES: readonly string[] = [
  "tm.evt.>",
  "tm.in.>",
  "tm.shard.>",
  "tm.node.>",
  "tm.down.>",
  "tm.cmd.>",
  "tm.diag.>",
  "tm.fleet",
  "tm.profiles",
  "tm.creds.>",
  "tm.interest",
  "tm.interest.>",
  "tm.alive.>",
  "tm.audit.>",
];

/** One user of the account. */
export interface AuthUser {
  name: string;
  /** As it appears in the file: `$NATS_NODE_PASSWORD` (a variable) or `"secret"`. */
  password: string;
  permissions: Permissions;
}

/** Options of {@linkcode renderAuthConf}. */
export interface AuthConfOptions {
  /** The node user's password (default: the variable `$NATS_NODE_PASSWORD`). */
  nodePassword?: string;
  /** The tools user's password (default: the variable `$NATS_TOOLS_PASSWORD`). */
  toolsPassword?: string;
  /** More users of the account (tests: a node user lacking one permission). */
  extraUsers?: AuthUser[];
}

const list = (items: string[], indent: string) =>
  `[\n${items.map((i) => `${indent}  "${i}"`).join("\n")}\n${indent}]`;

function renderUser(u: AuthUser): string {
  return [
    "      {",
    `        user: ${u.name}`,
    `        password: ${u.password}`,
    "        permissions: {",
    `          publish: { allow: ${list(u.permissions.publish, "          ")} }`,
    `          subscribe: { allow: ${list(u.permissions.subscribe, "          ")} }`,
    "        }",
    "      }",
  ].join("\n");
}

/**
 * The server side as nats-server configuration: account `TWINMILL` (JetStream enabled) with
 * users `node` and `tools`. Passwords are environment variables by default
 * (`$NATS_NODE_PASSWORD`, `$NATS_TOOLS_PASSWORD`: nats-server refuses to start without them),
 * quoted strings when given.
 */
export function renderAuthConf(o: AuthConfOptions = {}): string {
  const quoted = (v: string | undefined, env: string) => v === undefined ? `$${env}` : `"${v}"`;
  const users: AuthUser[] = [
    {
      name: "node",
      password: quoted(o.nodePassword, "NATS_NODE_PASSWORD"),
      permissions: nodePermissions(),
    },
    {
      name: "tools",
      password: quoted(o.toolsPassword, "NATS_TOOLS_PASSWORD"),
      permissions: toolsPermissions(),
    },
    ...o.extraUsers ?? [],
  ];
  return [
    "# Generated by scripts/nats_auth.ts from src/cluster/permission_list.ts: do not edit by",
    "# hand (tests/infra/nats_auth_test.ts checks it). One account, two users:",
    "#   node:  what a twinmill node uses and nothing else (its subjects tm.>, replies on",
    "#          _INBOX.>, its streams, consumers and KV/object buckets through the JetStream API)",
    "#   tools: read-only (nats CLI, backups): stream/KV reads and snapshots, no publish into",
    "#          tm.>, no KV or object writes, no acks, purges or deletions",
    "# Passwords come from the environment: NATS_NODE_PASSWORD, NATS_TOOLS_PASSWORD.",
    "accounts {",
    "  TWINMILL {",
    "    jetstream: enabled",
    "    users: [",
    users.map(renderUser).join("\n"),
    "    ]",
    "  }",
    "}",
    "",
  ].join("\n");
}
