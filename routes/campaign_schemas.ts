/**
 * The OpenAPI schemas of the campaign routes, and the views that turn a campaign and a device
 * record into them.
 * @module
 */
import { z } from "@hono/zod-openapi";
import { progressOf } from "../src/mgmt/campaigns.ts";
import {
  type Campaign,
  CAMPAIGN_STATES,
  DEVICE_STATES,
  LIMITS,
} from "../src/mgmt/campaign_model.ts";
import type { CampaignDevice } from "../src/mgmt/campaign_service.ts";
import { DAYS } from "../src/mgmt/maintenance_window.ts";
import { iso } from "./schemas.ts";

/** The campaign id in the path. */
export const IdParam = z.object({
  id: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, "campaign id must be 1-64 of A-Z a-z 0-9 _ - . :")
    .openapi({ param: { name: "id", in: "path" }, example: "c-lvqmhs00-87db3bdd" }),
});

const Time = z.iso.datetime().openapi({ example: "2024-05-01T12:00:00.000Z" });
const Fraction = z.number().gt(0).max(1);

const Selector = z.record(
  z.string().min(1).max(128),
  z.union([z.string().max(1024), z.number(), z.boolean()]),
).refine((s) => Object.keys(s).length >= 1 && Object.keys(s).length <= 16, {
  message: "give 1-16 attributes",
}).openapi({
  description: "Targets: twins whose attributes equal all of these (compared as text), " +
    `resolved in id order when the campaign starts (at most ${LIMITS.maxTargets})`,
  example: { type: "press", site: "A" },
});

const WaveSpec = z.union([
  z.object({ count: z.number().int().min(1).max(LIMITS.maxTargets) }).strict(),
  z.object({ percent: z.number().gt(0).max(100) }).strict(),
]).openapi("CampaignWaveSpec", {
  description: "A number of twins, or a percentage of all targets (rounded up). The last wave " +
    "takes the rest, whatever it says.",
});

const Window = z.object({
  start: z.string().openapi({ example: "22:00", description: "HH:MM" }),
  end: z.string().openapi({ example: "04:00", description: "HH:MM; before start = next day" }),
  days: z.array(z.enum(DAYS)).max(7).optional().openapi({
    description: "Days the window starts on (a window across midnight ends the next day); " +
      "absent = every day",
  }),
  tz: z.string().max(64).optional().openapi({
    description: "IANA time zone (default UTC)",
    example: "UTC",
  }),
}).strict().openapi("MaintenanceWindow", {
  description: "Offers are sent only while the window is open; devices already offered go on",
});

/** What `POST /v1/campaigns` takes. */
export const CampaignBody = z.object({
  name: z.string().min(1).max(128),
  firmware: z.string().min(1).max(128).openapi({
    description: "Id of an uploaded firmware image (`POST /v1/firmware`)",
    example: "press-fw-2.0.0",
  }),
  selector: Selector,
  waves: z.array(WaveSpec).min(1).max(LIMITS.maxWaves).default([{ percent: 100 }]),
  successThreshold: Fraction.default(1).openapi({
    description: "Fraction of a wave that must be done before the next wave starts (default 1)",
  }),
  errorThreshold: Fraction.default(0.2).openapi({
    description: "Fraction of a wave that failed which pauses the campaign (default 0.2)",
  }),
  maintenanceWindow: Window.optional(),
  timeoutMinutes: z.number().gt(0).max(43_200).optional().openapi({
    description: "A device not done this long after its offer has failed",
  }),
  startAt: Time.optional().openapi({ description: "Do not start before" }),
}).strict().openapi("CampaignBody", {
  example: {
    name: "presses to 2.0.0",
    firmware: "press-fw-2.0.0",
    selector: { type: "press" },
    waves: [{ count: 2 }, { percent: 100 }],
    successThreshold: 1,
    errorThreshold: 0.5,
    maintenanceWindow: { start: "22:00", end: "04:00", tz: "UTC" },
  },
});

const Counts = z.object(
  Object.fromEntries(DEVICE_STATES.map((s) => [s, z.number().int()])) as Record<
    typeof DEVICE_STATES[number],
    z.ZodNumber
  >,
).openapi("CampaignCounts", {
  description: "Devices by state: pending (not offered yet), sent (offered, no report yet), " +
    "downloading, installing, done, failed, cancelled",
});

const WaveSchema = z.object({
  number: z.number().int(),
  size: z.number().int(),
  state: z.enum(["pending", "running", "finished"]).openapi({
    description: "finished: the next wave was released (the last wave: every device finished)",
  }),
  startedAt: Time.nullable(),
  finishedAt: Time.nullable(),
  override: z.boolean().openapi({
    description: "Resumed after an automatic pause: its failures no longer pause the campaign",
  }),
  counts: Counts,
}).openapi("CampaignWave");

/** A campaign as the API shows it. */
export const CampaignSchema = z.object({
  id: z.string(),
  name: z.string(),
  state: z.enum(CAMPAIGN_STATES),
  reason: z.string().openapi({
    example: "error threshold 0.2 reached in wave 1 (1 of 2 failed)",
    description: "Why it is in its state",
  }),
  pausedBy: z.enum(["user", "error_threshold", "success_threshold"]).nullable(),
  revision: z.number().int().openapi({
    description: "+1 with every change (the `version` of its stream events)",
  }),
  firmware: z.object({
    id: z.string(),
    version: z.string(),
    size: z.number().int(),
    sha256: z.string(),
    signature: z.string().optional(),
  }),
  selector: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])),
  plan: z.array(WaveSpec).openapi({ description: "The waves as asked for" }),
  successThreshold: z.number(),
  errorThreshold: z.number(),
  maintenanceWindow: Window.optional(),
  timeoutMinutes: z.number().optional(),
  startAt: Time.optional(),
  currentWave: z.number().int().nullable().openapi({ description: "1-based; null before start" }),
  waves: z.array(WaveSchema),
  progress: Counts.extend({
    total: z.number().int().openapi({ description: "Targets resolved at start" }),
    finished: z.number().openapi({ description: "Fraction done, failed or cancelled" }),
  }),
  createdAt: Time,
  updatedAt: Time,
  startedAt: Time.nullable(),
  finishedAt: Time.nullable(),
}).openapi("Campaign");

/** A page of campaigns. */
export const CampaignList = z.object({
  items: z.array(CampaignSchema),
  next: z.string().optional().openapi({ description: "Cursor of the next page; absent at end" }),
}).openapi("CampaignList");

const History = z.object({
  ts: Time,
  state: z.enum(DEVICE_STATES),
  progress: z.number().int().nullable(),
  version: z.string().nullable(),
  error: z.string().optional(),
});

const DeviceSchema = z.object({
  id: z.string().openapi({ description: "Twin id" }),
  wave: z.number().int(),
  state: z.enum(DEVICE_STATES),
  progress: z.number().int().nullable(),
  version: z.string().nullable().openapi({ description: "Version of its last report" }),
  offeredAt: Time.nullable(),
  updatedAt: Time,
  error: z.string().optional(),
  history: z.array(History).openapi({
    description: `The newest ${LIMITS.history} changes as the campaign saw them`,
  }),
}).openapi("CampaignDevice");

/** A page of a campaign's devices. */
export const DevicePage = z.object({
  items: z.array(DeviceSchema),
  next: z.string().optional().openapi({
    description: "Cursor of the next page (a page may hold fewer items than asked); absent at end",
  }),
}).openapi("CampaignDevicePage");

const t = (ms: number | null) => ms === null ? null : iso(ms);

/** A campaign as {@linkcode CampaignSchema} shows it. */
export function view(c: Campaign) {
  const s = c.spec;
  return {
    id: c.id,
    name: s.name,
    state: c.state,
    reason: c.reason,
    pausedBy: c.pausedBy,
    revision: c.revision,
    firmware: s.firmware,
    selector: s.selector,
    plan: s.waves,
    successThreshold: s.successThreshold,
    errorThreshold: s.errorThreshold,
    ...(s.maintenanceWindow ? { maintenanceWindow: s.maintenanceWindow } : {}),
    ...(s.timeoutMinutes !== undefined ? { timeoutMinutes: s.timeoutMinutes } : {}),
    ...(s.startAt !== undefined ? { startAt: iso(s.startAt) } : {}),
    currentWave: c.wave >= 0 ? c.wave + 1 : null,
    waves: c.waves.map((w) => ({
      number: w.number,
      size: w.size,
      state: w.finishedAt !== null ? "finished" : w.startedAt !== null ? "running" : "pending",
      startedAt: t(w.startedAt),
      finishedAt: t(w.finishedAt),
      override: w.override,
      counts: w.counts,
    })),
    progress: progressOf(c),
    createdAt: iso(c.createdAt),
    updatedAt: iso(c.updatedAt),
    startedAt: t(c.startedAt),
    finishedAt: t(c.finishedAt),
  };
}

/** A device record as {@linkcode DevicePage} shows it. */
export const deviceView = (d: CampaignDevice) => ({
  id: d.id,
  wave: d.wave,
  state: d.state,
  progress: d.progress,
  version: d.version,
  offeredAt: t(d.offeredAt),
  updatedAt: iso(d.updatedAt),
  ...(d.error ? { error: d.error } : {}),
  history: d.history.map((h) => ({ ...h, ts: iso(h.ts) })),
});
