/**
 * `#/twins/{id}`: one twin — attributes; reported, desired and delta side by side with each
 * field's timestamp; live charts of numeric fields (stream, back-filled from history when
 * InfluxDB is configured); the desired-state editor; commands; alarms and rule status;
 * diagnostics.
 * @module
 */
import { ApiError, get, qs } from "../api.js";
import { openStream } from "../stream.js";
import { badge, fill, fmtValue, h, perFrame, refill, section, timeEl } from "../dom.js";
import { LiveChart } from "../chart.js";
import { ALARM_COLUMNS, alarmRow } from "../alarm_ui.js";
import { commandsPanel, diagnosticsPanel, rulesPanel } from "./twin_panels.js";
import { desiredEditor } from "./desired_editor.js";

/** The twin page. */
export async function twinPage(id) {
  let twin;
  try {
    twin = await get(`/v1/twins/${encodeURIComponent(id)}`);
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 404) throw e;
    return {
      el: h(
        "div",
        { class: "page" },
        h("h1", {}, id),
        h("p", { role: "alert" }, `No twin ${id}: ${e.message}`),
        diagnosticsPanel(id).el,
      ),
      title: id,
    };
  }
  const head = h("div", { class: "twin-head" });
  const stateEl = h("div");
  const alarmsEl = h("div");
  const charts = new Map();
  const chartsEl = h("div", { class: "charts" });
  const historyNote = h("p", { class: "note" });
  const editor = desiredEditor(id, () => twin);
  const commands = commandsPanel(id);
  const rules = rulesPanel(twin);
  const diag = diagnosticsPanel(id);

  /** What diagnostics said of the device's MQTT session (the status topic is the device's word). */
  let session = null;
  const renderHead = () =>
    fill(
      head,
      h("h1", {}, twin.id),
      h(
        "p",
        {},
        "status ",
        badge(twin.connectivity.status),
        " since ",
        timeEl(twin.connectivity.since),
        session === null
          ? ""
          : session
          ? ` · MQTT session on ${session.node ?? "?"}`
          : " · no MQTT session",
        ` · version ${twin.version} · updated `,
        timeEl(twin.metadata.updatedAt),
      ),
    );
  const renderState = () => refill(stateEl, stateTable(twin), attributesList(twin));
  const renderAlarms = () =>
    refill(
      alarmsEl,
      twin.alarms.length === 0 ? h("p", {}, "No open or recently cleared alarms.") : h(
        "table",
        {},
        h("thead", {}, h("tr", {}, ALARM_COLUMNS.map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, twin.alarms.map((a) => alarmRow(a, upsertAlarm))),
      ),
    );
  const upsertAlarm = (a) => {
    twin.alarms = [...twin.alarms.filter((x) => x.id !== a.id), a];
    renderAlarms();
  };
  const chart = (name) => {
    let c = charts.get(name);
    if (!c) {
      charts.set(name, c = new LiveChart(name));
      chartsEl.append(c.el);
    }
    return c;
  };
  for (const [k, v] of Object.entries(twin.reported)) {
    if (typeof v === "number") chart(k).add(twin.metadata.reported[k]?.ts ?? Date.now(), v);
  }
  renderHead();
  renderState();
  renderAlarms();
  /** A live change: drawn once per frame, however many events came. */
  const redraw = perFrame(() => {
    renderHead();
    renderState();
    editor.sync?.(twin);
  });

  const alarmsCard = section("Alarms", alarmsEl);
  alarmsCard.classList.add("wide"); // seven columns and a form: the page's whole width
  const el = h(
    "div",
    { class: "page twin" },
    head,
    section("State", stateEl),
    section("Live charts", historyNote, chartsEl),
    alarmsCard,
    editor.el,
    rules.el,
    commands.el,
    diag.el,
  );
  diag.first.then((d) => {
    if (d) {
      session = d.connectivity?.session ?? false;
      renderHead();
    }
    if (d?.influx?.configured) backfill([...charts.keys()], id, chart, historyNote);
    else {
      historyNote.textContent = d
        ? "History is not configured on this node (no InfluxDB): the charts start now."
        : "";
    }
  });

  const reload = async () => {
    const now = await get(`/v1/twins/${encodeURIComponent(id)}`);
    if (now.version < twin.version) return; // the stream was ahead of this answer
    twin = now;
    renderHead();
    renderState();
    renderAlarms();
    editor.sync?.(twin);
    commands.reload();
  };
  const stream = openStream(
    {
      twins: [id],
      types: ["telemetry", "state", "alarm", "command"],
      onFirstOpen: () => reload().catch(() => {}),
    },
    (e) => {
      if (e.type === "alarm") return upsertAlarm(e.data);
      if (e.type === "command") return commands.update(e.data);
      if (e.version) twin.version = Math.max(twin.version, e.version);
      twin.metadata.updatedAt = e.ts;
      if (e.type === "telemetry") {
        setFields(twin, "reported", e.data, e.ts);
        for (const [k, v] of Object.entries(e.data)) {
          if (typeof v === "number") {
            chart(k).add(e.ts, v);
          }
        }
      } else {
        if (e.data.reported) {
          setFields(twin, "reported", e.data.reported, e.ts);
          for (const [k, v] of Object.entries(e.data.reported)) {
            if (typeof v === "number") chart(k).add(e.ts, v);
          }
        }
        if (e.data.desired) setFields(twin, "desired", e.data.desired, e.ts);
        if (e.data.attributes) twin.attributes = e.data.attributes;
        if (e.data.connectivity) twin.connectivity = e.data.connectivity;
      }
      twin.delta = delta(twin.desired, twin.reported);
      redraw();
    },
    () => reload().catch(() => {}),
  );
  return { el, title: id, dispose: () => stream.close() };
}

/** Merge a patch into `twin[part]` (null deletes), with the fields' timestamps. */
function setFields(twin, part, patch, ts) {
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) {
      delete twin[part][k];
      delete twin.metadata[part][k];
    } else {
      twin[part][k] = v;
      twin.metadata[part][k] = { ts };
    }
  }
}

/** What desired asks that reported does not have (top level, as the API's delta). */
function delta(desired, reported) {
  const d = {};
  for (const [k, v] of Object.entries(desired)) {
    if (JSON.stringify(v) !== JSON.stringify(reported[k])) d[k] = v;
  }
  return d;
}

function stateTable(twin) {
  const names = [...new Set([...Object.keys(twin.reported), ...Object.keys(twin.desired)])].sort();
  const cell = (obj, k) => (k in obj ? h("code", {}, fmtValue(obj[k])) : "—");
  return h(
    "table",
    { class: "state" },
    h("caption", {}, "Reported, desired and delta per field"),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Field", "Reported", "Reported at", "Desired", "Desired at", "Delta"].map((c) =>
          h("th", { scope: "col" }, c)
        ),
      ),
    ),
    h(
      "tbody",
      {},
      names.map((k) =>
        h(
          "tr",
          { class: k in twin.delta ? "pending" : "" },
          h("th", { scope: "row" }, k),
          h("td", {}, cell(twin.reported, k)),
          h("td", {}, timeEl(twin.metadata.reported[k]?.ts)),
          h("td", {}, cell(twin.desired, k)),
          h("td", {}, timeEl(twin.metadata.desired[k]?.ts)),
          h("td", {}, k in twin.delta ? cell(twin.delta, k) : "—"),
        )
      ),
    ),
  );
}

function attributesList(twin) {
  const entries = Object.entries(twin.attributes);
  return h(
    "div",
    { class: "attributes" },
    h("h3", {}, "Attributes"),
    entries.length === 0
      ? h("p", {}, "None.")
      : h("dl", {}, entries.map(([k, v]) => [h("dt", {}, k), h("dd", {}, fmtValue(v))])),
  );
}

/** The last hour of each field from history, or a note that history is not configured. */
async function backfill(fields, id, chart, note) {
  for (const field of fields) {
    try {
      const r = await get(
        `/v1/twins/${encodeURIComponent(id)}/history${qs({ field, every: "10s", agg: "mean" })}`,
      );
      chart(field).addMany(
        r.points.filter((p) => typeof p.value === "number").map((
          p,
        ) => [new Date(p.ts).getTime(), p.value]),
      );
      note.textContent = "The last hour from history (10 s means), then live.";
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      note.textContent = e.status === 503
        ? "History is not configured on this node (no InfluxDB): the charts start now."
        : `History is unavailable: ${e.message}. The charts start now.`;
      if (e.status === 503) return;
    }
  }
  if (fields.length === 0) note.textContent = "No numeric field yet.";
}
