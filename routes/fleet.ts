/**
 * `GET /v1/fleet`: the fleet at a glance — twins by connectivity, open alarms by state and
 * severity, device messages per second, per site and line and in total — summed over the
 * nodes that answered (each counts the twins it owns, kept up to date as they change: see
 * `src/runtime/fleet_index.ts`). A site-scoped caller sees its sites only.
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { SEVERITIES } from "../actors/rules/profile_schema.ts";
import {
  type FleetGroup,
  MAX_GROUPS,
  type NodeFleet,
  RATE_WINDOW_S,
} from "../src/runtime/fleet_index.ts";
import type { Principal } from "../src/security/principal.ts";
import { json } from "./schemas.ts";

const BySeverity = z.object(Object.fromEntries(SEVERITIES.map((s) => [s, z.number().int()])));

const Counts = z.object({
  twins: z.number().int(),
  connectivity: z.object({
    online: z.number().int(),
    offline: z.number().int(),
    unknown: z.number().int(),
  }),
  alarms: z.object({
    active: BySeverity.openapi({ description: "Open alarms not acknowledged, by severity" }),
    acknowledged: BySeverity.openapi({ description: "Open alarms acknowledged, by severity" }),
  }),
  messagesPerSecond: z.number().openapi({
    description: `Device messages applied per second over the last ${RATE_WINDOW_S} s`,
  }),
}).openapi("FleetCounts");

const FleetView = z.object({
  asOf: z.string().openapi({ description: "When the counts were taken (they are live)" }),
  complete: z.boolean().openapi({
    description: "Every node answered and had counted all its twins (false while a node " +
      "reads its stored twins after a start or after taking shards)",
  }),
  nodes: z.object({
    expected: z.number().int(),
    answered: z.number().int(),
    missing: z.array(z.string()).openapi({ description: "Nodes that did not answer in time" }),
  }),
  totals: Counts,
  sites: z.array(Counts.extend({
    site: z.string().nullable().openapi({ description: "null: twins without a site" }),
    lines: z.array(Counts.extend({
      line: z.string().nullable().openapi({ description: "null: twins without a line" }),
    })),
  })).openapi({ description: "By site, most twins first; each site by line" }),
  other: Counts.nullable().openapi({
    description: `Twins of site/line pairs past the first ${MAX_GROUPS} (or whose site or ` +
      "line is not a short string, number or boolean); null when there are none. Not shown " +
      "to site-scoped callers",
  }),
}).openapi("Fleet");

const view = createRoute({
  method: "get",
  path: "/",
  tags: ["twins"],
  summary: "The fleet: twins by connectivity, open alarms by severity and the device message " +
    "rate, per site and line and in total, over every node",
  responses: { 200: json(FleetView, "The fleet, live") },
});

/** Where the route gets each node's counts. */
export interface FleetSource {
  /** Every node's answer within a short wait, and the nodes expected. */
  gather(sites?: readonly string[]): Promise<{ answers: NodeFleet[]; expected: string[] }>;
}

type Counts = z.infer<typeof Counts>;

const zeros = () => SEVERITIES.map(() => 0);
const empty = (): FleetGroup => ({
  twins: 0,
  connectivity: [0, 0, 0],
  active: zeros(),
  acknowledged: zeros(),
  messages: 0,
});

/** Add `g`'s counts to `into`. */
function sum(into: FleetGroup, g: FleetGroup): FleetGroup {
  into.twins += g.twins;
  into.messages += g.messages;
  for (let i = 0; i < 3; i++) into.connectivity[i] += g.connectivity[i] ?? 0;
  for (let i = 0; i < SEVERITIES.length; i++) {
    into.active[i] += g.active[i] ?? 0;
    into.acknowledged[i] += g.acknowledged[i] ?? 0;
  }
  return into;
}

const bySeverity = (n: number[]) => Object.fromEntries(SEVERITIES.map((s, i) => [s, n[i]]));

function counts(g: FleetGroup): Counts {
  const [online, offline, unknown] = g.connectivity;
  return {
    twins: g.twins,
    connectivity: { online, offline, unknown },
    alarms: { active: bySeverity(g.active), acknowledged: bySeverity(g.acknowledged) },
    messagesPerSecond: Math.round((g.messages / RATE_WINDOW_S) * 10) / 10,
  };
}

/** The fleet of the nodes' answers: groups summed, at most {@linkcode MAX_GROUPS}. */
export function mergeFleet(answers: NodeFleet[]) {
  const groups = new Map<string, FleetGroup>();
  const other = empty();
  let others = false;
  for (const a of answers) {
    for (const g of a.groups) {
      const key = JSON.stringify([g.site ?? null, g.line ?? null]);
      const into = groups.get(key) ?? empty();
      groups.set(key, sum(into, g));
      into.site = g.site ?? null;
      into.line = g.line ?? null;
    }
    if (a.other) (others = true, sum(other, a.other));
  }
  const kept = [...groups.values()].sort((a, b) => b.twins - a.twins);
  for (const g of kept.splice(MAX_GROUPS)) (others = true, sum(other, g));
  const totals = empty();
  const sites = new Map<string | null, { all: FleetGroup; lines: FleetGroup[] }>();
  for (const g of kept) {
    sum(totals, g);
    const site = g.site ?? null;
    let s = sites.get(site);
    if (!s) sites.set(site, s = { all: empty(), lines: [] });
    sum(s.all, g);
    s.lines.push(g);
  }
  if (others) sum(totals, other);
  return {
    totals: counts(totals),
    sites: [...sites].sort(([, a], [, b]) => b.all.twins - a.all.twins).map(([site, s]) => ({
      site,
      ...counts(s.all),
      lines: s.lines.map((g) => ({ line: g.line ?? null, ...counts(g) })),
    })),
    other: others ? counts(other) : null,
  };
}

/** The caller's sites, if it is site-scoped. */
const sitesOf = (c: Context) => (c.get("principal" as never) as Principal | undefined)?.sites;

/** Fleet routes, mounted at `/v1/fleet`. */
export function fleetRoutes(src: FleetSource, now: () => number = Date.now): OpenAPIHono {
  const app = new OpenAPIHono();
  app.openapi(view, async (c) => {
    const { answers, expected } = await src.gather(sitesOf(c));
    const answered = new Set(answers.map((a) => a.node));
    const missing = expected.filter((n) => !answered.has(n));
    return c.json({
      asOf: new Date(now()).toISOString(),
      complete: missing.length === 0 && answers.every((a) => a.complete),
      nodes: { expected: expected.length, answered: answered.size, missing },
      ...mergeFleet(answers),
    }, 200);
  });
  return app;
}
