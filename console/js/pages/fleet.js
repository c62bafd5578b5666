/**
 * `#/`: the fleet at a glance — twins by connectivity, open alarms by severity, ingest rate,
 * and the same per site and line (attributes). The API has no fleet summary, so the page
 * reads at most {@linkcode SCAN_LIMIT} twins page by page (and says so when there are more),
 * then follows connectivity and alarm changes on the stream.
 * @module
 */
import { get, qs, scoped, session } from "../api.js";
import { openStream } from "../stream.js";
import { badge, h, refill, section, timeEl } from "../dom.js";
import { GroupRates } from "../rates.js";

/** Most twins read for the summary. */
const SCAN_LIMIT = 10_000;
/**
 * Most twins whose telemetry the page streams to show rates per site and line: past it the
 * stream of every twin's telemetry is more than a page should take.
 */
const RATE_LIMIT = 500;

/** The group of a twin: its site and line. */
const groupOf = (t) => `${t.attributes.site ?? "—"}\u0000${t.attributes.line ?? "—"}`;
const SEVERITIES = ["critical", "major", "minor", "warning", "info"];
const STATUSES = ["online", "offline", "unknown"];

/**
 * Read the twins (all sites, or each of a scoped caller's sites), at most SCAN_LIMIT, into
 * `into.twins`; `onPage()` after each page (the page renders what it has so far).
 */
async function scanTwins(into, onPage) {
  const twins = new Map();
  into.counting = into.twins.size === 0;
  let more = false;
  for (const site of scoped() ? session.me.sites : [undefined]) {
    let cursor;
    do {
      const page = await get(`/v1/twins${qs({ limit: 1000, cursor, site })}`);
      for (const t of page.items) twins.set(t.id, t);
      cursor = page.cursor;
      if (into.twins.size <= twins.size) into.twins = twins; // a rescan replaces when it caught up
      onPage();
    } while (cursor && twins.size < SCAN_LIMIT);
    if (cursor) more = true;
  }
  into.twins = twins;
  into.more = more;
  into.counting = false;
  onPage();
}

/** Open alarms (active and acknowledged), at most SCAN_LIMIT. */
async function scanAlarms() {
  const alarms = new Map();
  for (const site of scoped() ? session.me.sites : [undefined]) {
    for (const state of ["active", "acknowledged"]) {
      let cursor;
      do {
        const page = await get(`/v1/alarms${qs({ state, limit: 1000, cursor, site })}`);
        for (const a of page.items) alarms.set(a.id, a);
        cursor = page.next;
      } while (cursor && alarms.size < SCAN_LIMIT);
    }
  }
  return alarms;
}

/** Messages acknowledged by this node so far (`/metrics`), or null. */
async function ackedTotal() {
  try {
    const r = await fetch("/metrics");
    if (!r.ok) return null;
    let n = 0;
    for (const line of (await r.text()).split("\n")) {
      if (line.startsWith("twinmill_mqtt_messages_acked_total")) n += Number(line.split(" ").pop());
    }
    return n;
  } catch {
    return null;
  }
}

/** The fleet page. */
export async function fleetPage() {
  const el = h("div", { class: "page" });
  const data = { twins: new Map(), more: false, counting: true, alarms: await scanAlarms() };
  const rateEl = h("span", {}, "…");
  /** Telemetry counted per site and line while the fleet is small enough to stream it all. */
  let rates = null;
  let last = await ackedTotal();
  let lastAt = performance.now();

  const render = () => {
    const { twins, more, alarms, counting } = data;
    const byStatus = Object.fromEntries(STATUSES.map((s) => [s, 0]));
    const groups = new Map();
    for (const t of twins.values()) {
      const s = t.connectivity?.status ?? "unknown";
      byStatus[s]++;
      const key = groupOf(t);
      let g = groups.get(key);
      if (!g) {
        groups.set(
          key,
          g = { total: 0, alarms: 0, ...Object.fromEntries(STATUSES.map((x) => [x, 0])) },
        );
      }
      g.total++;
      g[s]++;
    }
    const bySeverity = Object.fromEntries(SEVERITIES.map((s) => [s, 0]));
    for (const a of alarms.values()) {
      if (a.state === "cleared") continue;
      bySeverity[a.severity]++;
      const t = twins.get(a.twin);
      const g = t && groups.get(groupOf(t));
      if (g) g.alarms++;
    }
    const recent = [...twins.values()].sort((a, b) => b.metadata.updatedAt - a.metadata.updatedAt)
      .slice(0, 10);
    refill(
      el,
      h("h1", {}, "Fleet"),
      data.error ? h("p", { class: "error", role: "alert" }, data.error) : null,
      counting
        ? h("p", { class: "note", role: "status" }, `Counting twins… ${twins.size} so far.`)
        : more
        ? h(
          "p",
          { class: "note" },
          `The counts cover the first ${twins.size} twins in id order; there are more ` +
            "(the API has no fleet summary: the console reads at most this many).",
        )
        : null,
      h(
        "div",
        { class: "cards" },
        card("Twins", more ? `${twins.size}+` : twins.size, STATUSES.map((s) => [s, byStatus[s]])),
        card(
          "Open alarms",
          Object.values(bySeverity).reduce((a, b) => a + b, 0),
          SEVERITIES.map((s) => [s, bySeverity[s]]),
          "#/alarms",
        ),
        card("Ingest (this node)", rateEl, [["messages acknowledged per second", ""]]),
      ),
      section(
        "By site and line",
        rates ? null : h(
          "p",
          { class: "note" },
          `Messages per second by site and line are shown for fleets of up to ${RATE_LIMIT} ` +
            "twins (they come from the stream of every twin's telemetry).",
        ),
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
            [...groups].sort(([a], [b]) => a.localeCompare(b)).map(([key, g]) => {
              const [site, line] = key.split("\u0000");
              const filter = qs({ site: site === "—" ? "" : site, line: line === "—" ? "" : line });
              return h(
                "tr",
                {},
                h("th", { scope: "row" }, site),
                h("td", {}, line),
                h("td", {}, h("a", { href: `#/twins${filter}` }, String(g.total))),
                STATUSES.map((s) => h("td", {}, String(g[s]))),
                h("td", {}, String(g.alarms)),
                h("td", {}, rates ? rates.rate(key).toFixed(1) : "—"),
              );
            }),
          ),
        ),
      ),
      section(
        "Recently updated twins",
        h(
          "ul",
          { class: "recent" },
          recent.map((t) =>
            h(
              "li",
              {},
              h("a", { href: `#/twins/${encodeURIComponent(t.id)}` }, t.id),
              " ",
              badge(t.connectivity.status),
              " ",
              timeEl(t.metadata.updatedAt),
            )
          ),
        ),
      ),
    );
  };
  render();

  const touch = (id, fn) => {
    const t = data.twins.get(id);
    if (t) fn(t);
    else if (data.twins.size < SCAN_LIMIT && !scoped()) {
      // a twin the scan did not see: read it
      get(`/v1/twins/${encodeURIComponent(id)}`).then((tw) => {
        data.twins.set(id, tw);
        schedule();
      }).catch(() => {});
    }
  };
  let queued = false;
  const schedule = () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      render();
    });
  };

  const onEvent = (e) => {
    if (e.type === "telemetry") {
      const t = data.twins.get(e.twin);
      if (t) {
        rates?.add(groupOf(t));
        t.metadata.updatedAt = e.ts; // drawn by the rates' redraw, once a second
      }
      return;
    }
    if (e.type === "alarm") {
      data.alarms.set(e.data.id, e.data);
    } else {
      touch(e.twin, (t) => {
        if (e.data?.connectivity) t.connectivity = e.data.connectivity;
        if (e.data?.attributes) t.attributes = e.data.attributes;
        t.metadata.updatedAt = e.ts;
      });
    }
    schedule();
  };
  let stream = null;
  /** (Re)open the stream: with telemetry only for a small, completely counted fleet. */
  const listen = () => {
    if (scoped()) return;
    const small = !data.counting && !data.more && data.twins.size <= RATE_LIMIT;
    if (stream && small === (rates !== null)) return;
    rates = small ? new GroupRates() : null;
    stream = openStream(
      { types: small ? ["state", "alarm", "telemetry"] : ["state", "alarm"] },
      onEvent,
      () => refresh(),
    );
  };
  scanTwins(data, schedule).then(listen, (e) => {
    data.counting = false;
    data.error = e.message;
    schedule();
  });
  listen();
  const refresh = async () => {
    data.alarms = await scanAlarms();
    await scanTwins(data, schedule);
    listen();
  };
  const tick = setInterval(async () => {
    const n = await ackedTotal();
    const now = performance.now();
    if (n !== null && last !== null) {
      rateEl.textContent = `${Math.max(0, (n - last) / ((now - lastAt) / 1000)).toFixed(1)}/s`;
    }
    last = n;
    lastAt = now;
  }, 2000);
  const redrawRates = setInterval(() => rates && schedule(), 1000);
  const poll = setInterval(() => refresh().catch(() => {}), scoped() ? 10_000 : 60_000);
  return {
    el,
    title: "Fleet",
    dispose() {
      stream?.close();
      clearInterval(tick);
      clearInterval(poll);
      clearInterval(redrawRates);
    },
  };
}

function card(title, total, rows, href) {
  return h(
    "article",
    { class: "card" },
    h("h2", {}, href ? h("a", { href }, title) : title),
    h("p", { class: "big" }, total instanceof Node ? total : String(total)),
    h("dl", {}, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))])),
  );
}
