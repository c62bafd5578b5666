/**
 * Device management: remote configuration, zero-touch provisioning, firmware images, FOTA
 * campaigns and bulk operations, with their routes. Their documents live in the mode's doc
 * stores; a campaign is driven by the node its id is placed on.
 * @module
 */
import type { Context } from "hono";
import { ConfigService } from "../mgmt/configs.ts";
import { withConfigs } from "../mgmt/with_configs.ts";
import { Provisioning } from "../mgmt/provisioning.ts";
import { openFirmware } from "../mgmt/firmware.ts";
import { CampaignStore } from "../mgmt/campaign_store.ts";
import { CampaignDriver } from "../mgmt/campaign_driver.ts";
import { CampaignService } from "../mgmt/campaign_service.ts";
import { systemClock } from "../runtime/clock.ts";
import type { TwinService } from "../runtime/twin_service.ts";
import { configRoutes } from "../../routes/configs.ts";
import { provisioningKeyRoutes, provisionRoutes } from "../../routes/provisioning.ts";
import { firmwareRoutes } from "../../routes/firmware.ts";
import { campaignRoutes } from "../../routes/campaigns.ts";
import { bulkRoutes } from "../../routes/bulk.ts";
import type { FeatureContext, FeatureRoutes } from "./feature.ts";

/** Remote configuration and the twins it wraps. */
export interface RemoteConfigs {
  configs: ConfigService;
  /** `parts.twins`, where provisioning a twin applies the configs targeting it. */
  twins: TwinService;
}

/**
 * Open remote configuration: it wraps `putAttributes`, so a newly provisioned twin gets the
 * configs that target it. Every route and feature uses the twins it returns.
 */
export async function remoteConfigs(
  { log, parts }: Pick<FeatureContext, "log" | "parts">,
): Promise<RemoteConfigs> {
  const configs = await ConfigService.open(parts.docs, parts.twins, log.child("configs"));
  return { configs, twins: withConfigs(parts.twins, configs) };
}

/** The device management of a node. */
export interface Management extends FeatureRoutes, AsyncDisposable {
  provisioning: Provisioning;
  /** Start driving campaigns. */
  start(): void;
}

/**
 * Open device management (`configs` from {@linkcode remoteConfigs}). `denied` reports a refused firmware download (a device with a
 * wrong token) like any refused request.
 */
export async function management(
  { cfg, log, metrics, parts, twins }: FeatureContext,
  configs: ConfigService,
  denied: (c: Context, who: string, reason: string) => void,
): Promise<Management> {
  const { docs, audit } = parts;
  // zero-touch provisioning: keys in `docs`, over MQTT ($provision) and POST /v1/provision
  const provisioning = await Provisioning.open({
    docs,
    twins,
    credentials: parts.deviceAuth,
    audit,
    logger: log.child("provisioning"),
  });
  // firmware images: metadata in `docs`, bytes in the mode's blob store
  const firmware = await openFirmware({
    ...cfg.firmware,
    docs,
    blobs: parts.firmwareBlobs,
    logger: log.child("firmware"),
  });
  // FOTA campaigns: each driven by the node owning the shard of its id (a single node: all)
  const campaignStore = await CampaignStore.open(docs);
  const driver = new CampaignDriver({
    store: campaignStore,
    twins,
    firmware,
    transport: parts.transport,
    logger: log.child("campaigns"),
    clock: systemClock,
    tickMs: cfg.campaignTickMs,
    owns: (id) => parts.placement.owns(id),
  });
  const campaigns = new CampaignService({
    store: campaignStore,
    firmware,
    transport: parts.transport,
    clock: systemClock,
    logger: log.child("campaigns"),
    poke: (id) => driver.poke(id),
  });
  metrics.sources.campaignsByState = () => driver.campaignCounts();
  metrics.sources.campaignDevicesByState = () => driver.deviceCounts();
  return {
    provisioning,
    start: () => driver.start(),
    [Symbol.asyncDispose]: () => driver[Symbol.asyncDispose](),
    twinRoutes: [],
    routes: {
      "/v1/configs": configRoutes(configs),
      "/v1/provisioning-keys": provisioningKeyRoutes(provisioning),
      "/v1/provision": provisionRoutes(provisioning),
      "/v1/firmware": firmwareRoutes({
        firmware,
        deviceAuth: parts.deviceAuth,
        registry: metrics.registry,
        denied,
      }),
      "/v1/campaigns": campaignRoutes(campaigns, twins),
      // POST /v1/twins:bulk (the route's own path: see routes/bulk.ts)
      "/v1": bulkRoutes({
        twins,
        credentials: parts.deviceAuth,
        audit,
        logger: log.child("bulk"),
      }),
    },
  };
}
