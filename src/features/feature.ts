/**
 * What a feature gets and gives: it takes the node's configuration and its
 * {@linkcode NodeParts}, builds its services, and hands back the routes it serves.
 * @module
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Config } from "../config/config.ts";
import type { Logger } from "../obs/log.ts";
import type { Metrics } from "../obs/metrics.ts";
import type { NodeParts } from "../modes/parts.ts";
import type { TwinService } from "../runtime/twin_service.ts";

/** What every feature is built from. */
export interface FeatureContext {
  cfg: Config;
  log: Logger;
  metrics: Metrics;
  parts: NodeParts;
  /**
   * Every twin as routes and features see it: `parts.twins` with remote configuration
   * applied when a twin is provisioned (see `remoteConfigs`). The one to wire.
   */
  twins: TwinService;
}

/** The routes a feature serves. */
export interface FeatureRoutes {
  /** Route modules by mount path. */
  routes: Record<string, OpenAPIHono>;
  /** Routes under `/v1/twins/{id}/` beyond the twin itself. */
  twinRoutes: OpenAPIHono[];
}
