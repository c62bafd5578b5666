/**
 * Single-node mode (no `NATS_URL`): everything local — Deno KV files under the data dir for
 * twins, the inbound log, profiles, credentials and documents, the in-process transport, an
 * audit log file and a firmware directory. It owns every twin.
 * @module
 */
import { join } from "node:path";
import { denoKvPersistence } from "../persistence/deno_kv.ts";
import { denoKvDocStores } from "../persistence/doc_store.ts";
import { memoryTransport } from "../transport/memory.ts";
import { hostDefaults, TwinHost } from "../runtime/twin_host.ts";
import { systemClock } from "../runtime/clock.ts";
import { Ingest } from "../bridges/ingest.ts";
import { nodeProfiles } from "../rules/profiles.ts";
import { denoKvProfileStore } from "../rules/deno_kv_profile_store.ts";
import { DeviceAuth } from "../security/device_auth.ts";
import { denoKvCredentialStore } from "../security/credentials.ts";
import { AuditLog } from "../security/audit.ts";
import { directoryBlobStore } from "../mgmt/firmware_blobs_dir.ts";
import { everything } from "../ports/placement.ts";
import { hostLinks } from "./device_links.ts";
import type { ModeOptions, NodeParts } from "./parts.ts";

/** Start the parts of a single node. */
export async function startSingle(o: ModeOptions): Promise<NodeParts> {
  const { cfg, log, metrics } = o;
  await Deno.mkdir(cfg.dataDir, { recursive: true });
  const credentialStore = await denoKvCredentialStore(join(cfg.dataDir, "credentials.kv"));
  const deviceAuth = new DeviceAuth({
    store: credentialStore,
    logger: log.child("credentials"),
    clock: systemClock,
    disconnect: o.disconnect,
    disconnectCert: o.disconnectCert,
    revokedFile: cfg.tls?.revokedFile,
    caFile: cfg.tls?.caFile,
  });
  const persistence = await denoKvPersistence(join(cfg.dataDir, "twinmill.kv"));
  const profileStore = await denoKvProfileStore(join(cfg.dataDir, "profiles.kv"));
  const transport = memoryTransport();
  const profiles = nodeProfiles({
    store: profileStore,
    logger: log.child("profiles"),
    metrics,
    host: () => host,
  });
  const host = new TwinHost({
    ...hostDefaults(cfg, log, metrics, o.points),
    ...hostLinks(transport, cfg.nodeId),
    persistence,
    transport,
    profiles,
    webhooks: o.webhooks,
  });
  metrics.profilesLoaded.set(await profiles.load());
  const replayed = await host.replay();
  if (replayed > 0) log.info("replayed unretired inbound messages", { count: replayed });
  const armed = await host.armStored();
  if (armed > 0) log.info("armed rule timers of stored twins", { twins: armed });
  // the fleet summary counts the stored twins in the background (GET /v1/fleet: not complete yet)
  host.seedFleet().then(
    (n) => n > 0 && log.info("counted stored twins for the fleet summary", { twins: n }),
    (err) => log.warn("cannot count stored twins for the fleet summary", { err }),
  );
  const ingest = new Ingest({
    log: persistence.log,
    firstSeq: (await persistence.log.lastSeq()) + 1,
    onDurable: (batch) => host.dispatch(batch),
    gate: host,
    logger: log.child("ingest"),
    metrics,
  });
  const audit = await AuditLog.open(cfg.dataDir);
  const docs = await denoKvDocStores(join(cfg.dataDir, "docs.kv"));
  const firmwareBlobs = await directoryBlobStore(join(cfg.dataDir, "firmware"));
  const close = async () => {
    await audit.close();
    await ingest.close();
    await host.close();
    await transport[Symbol.asyncDispose]();
    await persistence[Symbol.asyncDispose]();
    await profileStore[Symbol.asyncDispose]();
    await credentialStore[Symbol.asyncDispose]();
    await docs[Symbol.asyncDispose]();
  };
  return {
    host,
    twins: host,
    transport,
    ingest,
    placement: everything,
    docs,
    audit,
    firmwareBlobs,
    deviceAuth,
    profiles,
    routes: {},
    nodes: () => Promise.resolve([cfg.nodeId]),
    leaving: "shutting down",
    ready: () => true,
    serving: () => Promise.resolve(),
    leave: close,
    close,
  };
}
