/**
 * `#/alarms`: alarms by state (active, acknowledged, cleared), filtered by severity, site and
 * twin, page by page; an operator acknowledges with a comment. Live: the page reloads when
 * an alarm changes (for a site-scoped caller, every 10 s instead: its stream must name twins).
 * @module
 */
import { ApiError, get, qs, scoped, session } from "../api.js";
import { openStream } from "../stream.js";
import { debounce, field, h, refill } from "../dom.js";
import { ALARM_COLUMNS, alarmRow } from "../alarm_ui.js";

const PAGE = 50;
const STATES = ["active", "acknowledged", "cleared"];
const SEVERITIES = ["critical", "major", "minor", "warning", "info"];

/** The alarms page; `params`: state, severity, site, twin. */
export async function alarmsPage(params) {
  const el = h("div", { class: "page" });
  const f = {
    state: params.get("state") ?? "active",
    severity: params.get("severity") ?? "",
    site: params.get("site") ?? (scoped() ? session.me.sites[0] : ""),
    twin: params.get("twin") ?? "",
  };
  const stack = [];
  let cursor;
  let page = { items: [] };
  let error = null;

  const select = (name, label, options) =>
    field(
      label,
      h(
        "select",
        { name, id: `a-${name}` },
        options.map(([v, t]) => h("option", { value: v, selected: f[name] === v }, t)),
      ),
    );
  const form = h("form", {
    class: "filters",
    onsubmit: (ev) => {
      ev.preventDefault();
      const q = new URLSearchParams();
      for (const [k, v] of new FormData(ev.target)) if (v) q.set(k, String(v));
      location.hash = `#/alarms?${q}`;
    },
  }, [
    select("state", "State", [["", "any"], ...STATES.map((s) => [s, s])]),
    select("severity", "Severity", [["", "any"], ...SEVERITIES.map((s) => [s, s])]),
    field("Site", h("input", { name: "site", id: "a-site", value: f.site })),
    field("Twin", h("input", { name: "twin", id: "a-twin", value: f.twin })),
    h("button", { type: "submit" }, "Filter"),
  ]);

  const load = async () => {
    error = null;
    try {
      page = await get(`/v1/alarms${qs({ ...f, limit: PAGE, cursor })}`);
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      error = e.message;
      page = { items: [] };
    }
    render();
  };
  const render = () =>
    refill(
      el,
      h("h1", {}, "Alarms"),
      form,
      error ? h("p", { class: "error", role: "alert" }, error) : null,
      h(
        "table",
        { class: "alarms" },
        h(
          "caption",
          {},
          `${page.items.length} alarms${f.state ? ` (${f.state})` : ""}, page ${stack.length + 1}`,
        ),
        h("thead", {}, h("tr", {}, ALARM_COLUMNS.map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, page.items.map((a) => alarmRow(a, () => load()))),
      ),
      h(
        "nav",
        { class: "pager", "aria-label": "Pages of alarms" },
        h("button", {
          type: "button",
          disabled: stack.length === 0,
          onclick: () => {
            cursor = stack.pop();
            load();
          },
        }, "Previous page"),
        h("button", {
          type: "button",
          disabled: !page.next,
          onclick: () => {
            stack.push(cursor);
            cursor = page.next;
            load();
          },
        }, "Next page"),
      ),
    );
  const later = debounce(() => load(), 300);
  await load();
  const stream = scoped()
    ? null
    : openStream({ twins: f.twin ? [f.twin] : [], types: ["alarm"] }, later, later);
  const poll = scoped() ? setInterval(load, 10_000) : null;
  return {
    el,
    title: "Alarms",
    dispose() {
      stream?.close();
      clearInterval(poll);
    },
  };
}
