/**
 * `#/twins`: twins page by page with the API's cursor (never all of them), searched by id
 * prefix and filtered by attributes; rows update live from the stream for the twins shown.
 * @module
 */
import { ApiError, get, qs, scoped, session } from "../api.js";
import { openStream } from "../stream.js";
import { badge, field, fmtValue, h, perFrame, refill, timeEl } from "../dom.js";

const PAGE = 50;
const ATTRS = ["site", "line", "type"];

/** Open alarms of a twin (not cleared). */
export const openAlarms = (t) => (t.alarms ?? []).filter((a) => a && a.state !== "cleared");

/** Up to `n` reported values, shown as "name value". */
function someReported(t, n = 3) {
  return Object.entries(t.reported ?? {}).filter(([k, v]) =>
    !k.startsWith("$") && v !== null && typeof v !== "object"
  )
    .slice(0, n).map(([k, v]) =>
      h("span", { class: "kv" }, h("span", { class: "k" }, k), " ", fmtValue(v))
    );
}

/** The twins page; `params`: q (id prefix), attribute filters, `attr`/`value` (one more). */
export async function twinsPage(params) {
  const el = h("div", { class: "page" });
  const filters = {};
  for (const [k, v] of params) if (k !== "q" && v) filters[k] = v;
  if (scoped() && !filters.site) filters.site = session.me.sites[0];
  const prefix = params.get("q") ?? "";
  const stack = []; // cursors of the pages before this one
  let cursor;
  let page = { items: [], next: undefined };
  let stream = null;
  let error = null;

  const load = async () => {
    error = null;
    try {
      // the API keeps the ids that start with the prefix (and refuses one no id can start with)
      const r = await get(`/v1/twins${qs({ limit: PAGE, cursor, prefix, ...filters })}`);
      page = { items: r.items, next: r.cursor };
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      error = e.message;
      page = { items: [], next: undefined };
    }
    render();
    watch();
  };

  const redraw = perFrame(() => render());
  const watch = () => {
    stream?.close();
    const ids = page.items.map((t) => t.id);
    if (ids.length === 0) return;
    stream = openStream({ twins: ids, types: ["telemetry", "state", "alarm"] }, (e) => {
      const t = page.items.find((x) => x.id === e.twin);
      if (!t) return;
      if (e.type === "telemetry") Object.assign(t.reported, e.data);
      else if (e.type === "alarm") {
        t.alarms = [...(t.alarms ?? []).filter((a) => a.id !== e.data.id), e.data];
      } else {
        if (e.data.connectivity) t.connectivity = e.data.connectivity;
        if (e.data.reported) Object.assign(t.reported, e.data.reported);
        if (e.data.attributes) t.attributes = e.data.attributes;
      }
      t.metadata.updatedAt = e.ts;
      redraw();
    }, load);
  };

  const search = h("form", {
    class: "filters",
    role: "search",
    onsubmit: (ev) => {
      ev.preventDefault();
      const f = new FormData(ev.target);
      const q = new URLSearchParams();
      for (const [k, v] of f) if (v && k !== "attr" && k !== "value") q.set(k, String(v));
      if (f.get("attr") && f.get("value")) q.set(String(f.get("attr")), String(f.get("value")));
      location.hash = `#/twins${q.size ? `?${q}` : ""}`;
    },
  }, [
    field(
      "Twin id starts with",
      h("input", { name: "q", type: "search", value: prefix, id: "f-q" }),
    ),
    ATTRS.map((a) =>
      field(
        a[0].toUpperCase() + a.slice(1),
        h("input", { name: a, value: filters[a] ?? "", id: `f-${a}` }),
      )
    ),
    field("Other attribute", h("input", { name: "attr", id: "f-attr", placeholder: "e.g. model" })),
    field("Its value", h("input", { name: "value", id: "f-value" })),
    h("button", { type: "submit" }, "Search"),
  ]);
  const extra = Object.entries(filters).filter(([k]) => !ATTRS.includes(k));

  const render = () => {
    refill(
      el,
      h("h1", {}, "Twins"),
      search,
      extra.length
        ? h("p", {}, "Also filtered by ", extra.map(([k, v]) => `${k} = ${v}`).join(", "))
        : null,
      error ? h("p", { class: "error", role: "alert" }, error) : null,
      h(
        "table",
        { class: "twins" },
        h("caption", {}, `Page ${stack.length + 1}: ${page.items.length} twins`),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Twin", "Connectivity", "Last update", "Open alarms", "Reported"].map((c) =>
              h("th", { scope: "col" }, c)
            ),
          ),
        ),
        h(
          "tbody",
          {},
          page.items.map((t) => {
            const open = openAlarms(t);
            return h(
              "tr",
              {},
              h(
                "th",
                { scope: "row" },
                h("a", { href: `#/twins/${encodeURIComponent(t.id)}` }, t.id),
              ),
              h("td", {}, badge(t.connectivity.status)),
              h("td", {}, timeEl(t.metadata.updatedAt)),
              h(
                "td",
                {},
                open.length
                  ? badge(
                    String(open.length),
                    open.some((a) => a.severity === "critical") ? "critical" : "major",
                  )
                  : "0",
              ),
              h("td", { class: "reported" }, someReported(t)),
            );
          }),
        ),
      ),
      h(
        "nav",
        { class: "pager", "aria-label": "Pages of twins" },
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
  };
  await load();
  return { el, title: "Twins", dispose: () => stream?.close() };
}
