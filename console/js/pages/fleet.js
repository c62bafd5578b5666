/**
 * `#/`: the fleet at a glance — twins by connectivity, open alarms by severity, device
 * messages per second, in total and per site and line — from `GET /v1/fleet`, which every
 * node keeps counted for the twins it owns (whatever the size of the fleet). The page reads it
 * again when the stream says a twin's state or an alarm changed (at most once a second), and
 * every few seconds anyway (rates move; a site-scoped caller has no stream of every twin).
 * @module
 */
import { get, qs, scoped, session } from "../api.js";
import { openStream } from "../stream.js";
import { badge, h, refill, section, timeEl } from "../dom.js";

const SEVERITIES = ["critical", "major", "minor", "warning", "info"];
const STATUSES = ["online", "offline", "unknown"];
/** Least time between two reads of the fleet (ms). */
const THROTTLE_MS = 1_000;
/** Reads of the fleet without any event (ms). */
const POLL_MS = 5_000;
/** Twins listed as recently updated. */
const RECENT = 10;

const openOf = (c) =>
  SEVERITIES.reduce((n, s) => n + c.alarms.active[s] + c.alarms.acknowledged[s], 0);

/** The fleet page. */
export async function fleetPage() {
  const el = h("div", { class: "page" });
  let fleet = null;
  let error = null;
  /** Recently updated twins (id -> twin), from a first page and then from the stream. */
  const recent = new Map();

  const render = () => {
    const t = fleet?.totals;
    const rows = [];
    for (const s of fleet?.sites ?? []) {
      for (const l of s.lines) rows.push([s.site, l.line, l]);
    }
    if (fleet?.other) rows.push(["other", "other", fleet.other]);
    const note = !fleet ? h("p", { class: "note", role: "status" }, "Counting twins…") : [
      fleet.nodes.missing.length > 0
        ? h(
          "p",
          { class: "note", role: "status" },
          `${fleet.nodes.answered} of ${fleet.nodes.expected} nodes answered; not counted: ` +
            fleet.nodes.missing.join(", "),
        )
        : null,
      !fleet.complete && fleet.nodes.missing.length === 0
        ? h("p", { class: "note", role: "status" }, "Counting stored twins… (not complete yet)")
        : null,
    ];
    const twinsOf = (site, line) => `#/twins${qs({ site: site ?? "", line: line ?? "" })}`;
    refill(
      el,
      h("h1", {}, "Fleet"),
      error ? h("p", { class: "error", role: "alert" }, error) : null,
      note,
      h(
        "div",
        { class: "cards" },
        card("Twins", t ? t.twins : "…", STATUSES.map((s) => [s, t ? t.connectivity[s] : "…"])),
        card(
          "Open alarms",
          t ? openOf(t) : "…",
          SEVERITIES.map((s) => [
            s,
            t ? t.alarms.active[s] + t.alarms.acknowledged[s] : "…",
          ]),
          "#/alarms",
        ),
        card(
          fleet && fleet.nodes.expected > 1 ? "Ingest (cluster)" : "Ingest",
          t ? `${t.messagesPerSecond.toFixed(1)}/s` : "…",
          [["device messages per second, last 10 s", ""]],
        ),
      ),
      section(
        "By site and line",
        h(
          "table",
          {},
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["Site", "Line", "Twins", ...STATUSES, "Open alarms", "Messages/s (10 s)"].map((c) =>
                h("th", { scope: "col" }, c)
              ),
            ),
          ),
          h(
            "tbody",
            {},
            rows.map(([site, line, c]) =>
              h(
                "tr",
                {},
                h("th", { scope: "row" }, site ?? "—"),
                h("td", {}, line ?? "—"),
                h(
                  "td",
                  {},
                  site === "other"
                    ? String(c.twins)
                    : h("a", { href: twinsOf(site, line) }, String(c.twins)),
                ),
                STATUSES.map((s) => h("td", {}, String(c.connectivity[s]))),
                h("td", {}, String(openOf(c))),
                h("td", {}, c.messagesPerSecond.toFixed(1)),
              )
            ),
          ),
        ),
        fleet?.other
          ? h(
            "p",
            { class: "note" },
            "other: twins of site and line pairs past the first 1,000 (or with a site or line " +
              "that is not a short text).",
          )
          : null,
      ),
      section(
        "Recently updated twins",
        h(
          "ul",
          { class: "recent" },
          [...recent.values()].sort((a, b) => b.updatedAt - a.updatedAt).slice(0, RECENT).map((
            r,
          ) =>
            h(
              "li",
              {},
              h("a", { href: `#/twins/${encodeURIComponent(r.id)}` }, r.id),
              " ",
              badge(r.status),
              " ",
              timeEl(r.updatedAt),
            )
          ),
        ),
      ),
    );
  };

  /** Read the fleet now. */
  const read = async () => {
    try {
      fleet = await get("/v1/fleet");
      error = null;
    } catch (e) {
      error = `Cannot read the fleet: ${e.message}`;
    }
    render();
  };
  // at most one read per THROTTLE_MS; events in between make one more read after it
  let reading = null;
  let again = false;
  let lastRead = 0;
  let disposed = false;
  const readSoon = () => {
    if (disposed) return;
    if (reading) {
      again = true;
      return;
    }
    const wait = Math.max(0, lastRead + THROTTLE_MS - performance.now());
    reading = new Promise((r) => setTimeout(r, wait)).then(async () => {
      lastRead = performance.now();
      await read();
      reading = null;
      if (again) (again = false, readSoon());
    });
  };

  const remember = (id, status, updatedAt) => {
    recent.set(id, { id, status: status ?? recent.get(id)?.status ?? "unknown", updatedAt });
    if (recent.size > RECENT * 5) {
      const oldest = [...recent.values()].sort((a, b) => a.updatedAt - b.updatedAt)[0];
      recent.delete(oldest.id);
    }
  };
  // a first page of twins (a site-scoped caller lists its first site's)
  const first = await get(
    `/v1/twins${qs({ limit: 100, site: scoped() ? session.me.sites[0] : "" })}`,
  )
    .catch(() => ({ items: [] }));
  for (const tw of first.items) remember(tw.id, tw.connectivity.status, tw.metadata.updatedAt);
  await read();

  // every twin's state and alarm changes: a site-scoped caller may not stream every twin
  const stream = scoped() ? null : openStream({ types: ["state", "alarm"] }, (e) => {
    if (e.type === "state") remember(e.twin, e.data?.connectivity?.status, e.ts);
    readSoon();
  }, () => readSoon());
  const poll = setInterval(() => readSoon(), POLL_MS);
  return {
    el,
    title: "Fleet",
    dispose() {
      disposed = true;
      stream?.close();
      clearInterval(poll);
    },
  };
}

function card(title, total, rows, href) {
  return h(
    "article",
    { class: "card" },
    h("h2", {}, href ? h("a", { href }, title) : title),
    h("p", { class: "big" }, String(total)),
    h("dl", {}, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))])),
  );
}
