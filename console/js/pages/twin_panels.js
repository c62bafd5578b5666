/**
 * Panels of the twin page: the desired-state editor (If-Match, the 412 conflict shown with
 * the current value), commands, rule status and diagnostics.
 * @module
 */
import { api, ApiError, can, get } from "../api.js";
import { badge, field, fill, fmtTime, fmtValue, h, refill, section, timeEl } from "../dom.js";

const pretty = (v) => JSON.stringify(v, null, 2);
const twinPath = (id) => `/v1/twins/${encodeURIComponent(id)}`;

/** The desired-state editor; `current()` gives the twin as the page knows it now. */
export function desiredEditor(id, current) {
  if (!can("operator")) {
    return {
      el: section(
        "Desired state",
        h("p", {}, "Your role may read the desired state (above) but not change it."),
      ),
    };
  }
  let base = current().version;
  const text = h("textarea", { id: "desired-edit", rows: 4, spellcheck: "false", class: "code" });
  text.value = pretty(current().desired);
  const baseEl = h("span");
  const out = h("div", { role: "status", "aria-live": "polite" });
  const showBase = () => (baseEl.textContent = `Editing version ${base}.`);
  showBase();
  /** True once the user typed: live changes no longer move the editor. */
  let dirty = false;
  text.addEventListener("input", () => (dirty = true));
  const restart = (twin) => {
    base = twin.version;
    text.value = pretty(twin.desired);
    dirty = false;
    showBase();
  };
  const send = async () => {
    fill(out);
    let patch;
    try {
      patch = JSON.parse(text.value);
    } catch (e) {
      fill(out, h("p", { class: "error", role: "alert" }, `Not JSON: ${e.message}`));
      return;
    }
    try {
      const r = await api(`${twinPath(id)}/desired`, {
        method: "PATCH",
        body: JSON.stringify(patch),
        headers: { "content-type": "application/merge-patch+json", "if-match": String(base) },
      });
      restart(r.body);
      fill(out, h("p", {}, `Sent: the twin is at version ${r.body.version}.`));
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      if (e.status !== 412) {
        fill(out, h("p", { class: "error", role: "alert" }, `${e.code}: ${e.message}`));
        return;
      }
      const now = await get(twinPath(id));
      fill(
        out,
        h(
          "div",
          { class: "conflict", role: "alert" },
          h("h3", {}, "Version conflict: your change was not applied"),
          h(
            "p",
            {},
            `You edited version ${base}; the twin is now at version ${now.version} (it changed meanwhile). Its current desired state:`,
          ),
          h("pre", { class: "code", "aria-label": "Current desired state" }, pretty(now.desired)),
          h("button", {
            type: "button",
            onclick: () => {
              base = now.version;
              showBase();
              send();
            },
          }, `Send my change over version ${now.version}`),
          " ",
          h("button", {
            type: "button",
            onclick: () => {
              restart(now);
              fill(out);
            },
          }, "Discard my change"),
        ),
      );
    }
  };
  const el = section(
    "Desired state",
    h(
      "form",
      {
        onsubmit: (ev) => {
          ev.preventDefault();
          send();
        },
      },
      field("Desired state patch (JSON merge patch; null removes a field)", text),
      h(
        "p",
        {},
        baseEl,
        " ",
        h(
          "button",
          { type: "button", onclick: () => restart(current()) },
          "Start again from the current state",
        ),
      ),
      h("button", { type: "submit" }, "Send desired state"),
    ),
    out,
  );
  /** The twin changed (live): an untouched editor follows it. */
  const sync = (twin) => {
    if (!dirty && document.activeElement !== text) restart(twin);
  };
  return { el, sync };
}

/** Commands: send (operator), list with status, live updates. */
export function commandsPanel(id) {
  const list = h("div");
  let items = [];
  const render = () =>
    refill(
      list,
      items.length === 0 ? h("p", {}, "No commands.") : h(
        "table",
        {},
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Command", "Status", "Created", "Finished", "Result"].map((c) =>
              h("th", { scope: "col" }, c)
            ),
          ),
        ),
        h(
          "tbody",
          {},
          items.map((c) =>
            h(
              "tr",
              {},
              h("th", { scope: "row" }, c.name, " ", h("small", { class: "block" }, c.id)),
              h("td", {}, badge(c.status)),
              h("td", {}, timeEl(c.createdAt)),
              h("td", {}, timeEl(c.finishedAt)),
              h(
                "td",
                {},
                c.error !== undefined
                  ? fmtValue(c.error)
                  : c.result !== undefined
                  ? fmtValue(c.result)
                  : "—",
              ),
            )
          ),
        ),
      ),
    );
  const reload = async () => {
    items = (await get(`${twinPath(id)}/commands`)).items;
    render();
  };
  const update = (c) => {
    const i = items.findIndex((x) => x.id === c.id);
    if (i >= 0) items[i] = { ...items[i], ...c };
    else items.unshift(c);
    render();
  };
  const name = h("input", { id: "cmd-name", required: true, pattern: "[A-Za-z0-9_.:\\-]+" });
  const args = h("textarea", { id: "cmd-args", rows: 2, class: "code", spellcheck: "false" });
  args.value = "{}";
  const err = h("p", { class: "error", role: "alert" });
  const form = can("operator")
    ? h(
      "form",
      {
        class: "inline",
        onsubmit: async (ev) => {
          ev.preventDefault();
          err.textContent = "";
          try {
            const r = await api(`${twinPath(id)}/commands`, {
              method: "POST",
              body: { name: name.value, args: JSON.parse(args.value || "{}") },
            });
            update(r.body);
          } catch (e) {
            err.textContent = e.message;
          }
        },
      },
      field("Command name", name),
      field("Arguments (JSON)", args),
      h("button", { type: "submit" }, "Send command"),
      err,
    )
    : null;
  reload().catch((e) => (err.textContent = e.message));
  return { el: section("Commands", form, list), reload, update };
}

/** The rules of the twin's profile and their status on this node. */
export function rulesPanel(twin) {
  const name = twin.attributes.profile ?? twin.attributes.type;
  const body = h("div");
  const el = section("Rules", body);
  if (typeof name !== "string") {
    fill(body, h("p", {}, "No profile: the twin has no profile or type attribute."));
    return { el };
  }
  get("/v1/profiles").then(({ items }) => {
    const p = items.find((x) => x.name === name);
    if (!p) {
      fill(body, h("p", {}, `Profile ${name} does not exist.`));
      return;
    }
    const faulted = new Map((p.status?.rules ?? []).map((r) => [r.id ?? r.rule, r]));
    fill(
      body,
      h(
        "p",
        {},
        "Profile ",
        h("a", { href: `#/profiles/${encodeURIComponent(name)}` }, name),
        `, updated ${fmtTime(p.updatedAt)}.`,
      ),
      h(
        "ul",
        {},
        p.profile.rules.map((r) => {
          const f = faulted.get(r.id);
          return h(
            "li",
            {},
            h("strong", {}, r.id),
            ` (${r.kind}${r.field ? ` on ${r.field}` : ""}) `,
            r.enabled === false
              ? badge("disabled")
              : f
              ? badge("faulted", "critical")
              : badge("ok"),
            f ? ` ${f.error ?? f.message ?? JSON.stringify(f)}` : "",
          );
        }),
      ),
    );
  }).catch((e) => fill(body, h("p", {}, e.message)));
  return { el };
}

/**
 * `GET /v1/twins/{id}/diagnostics`, with a refresh button; `first` resolves to the first
 * answer (null if it failed).
 */
export function diagnosticsPanel(id) {
  const body = h("div");
  const load = () =>
    get(`${twinPath(id)}/diagnostics`).then((d) => {
      const c = d.connectivity ?? {};
      fill(
        body,
        h("p", { class: "summary" }, d.summary),
        h(
          "dl",
          {},
          h("dt", {}, "MQTT session"),
          h(
            "dd",
            {},
            c.session
              ? `${c.session.protocol ?? ""} on ${c.session.node ?? "?"} since ${
                fmtTime(c.session.connectedAt)
              }`
              : "none",
          ),
          h("dt", {}, "Last seen"),
          h("dd", {}, timeEl(c.lastSeen)),
          h("dt", {}, "Messages"),
          h(
            "dd",
            {},
            `${d.messages?.total ?? 0} total, ${d.messages?.lastMinute ?? 0} in the last minute`,
          ),
          h("dt", {}, "Hosted on"),
          h("dd", {}, d.actor ? `${d.actor.node}, mailbox ${d.actor.mailboxDepth}` : "—"),
          h("dt", {}, "InfluxDB"),
          h(
            "dd",
            {},
            d.influx?.configured ? `${d.influx.bufferedPoints} points buffered` : "not configured",
          ),
        ),
        d.rejected?.length
          ? h(
            "details",
            {},
            h("summary", {}, `${d.rejected.length} recently rejected messages`),
            h(
              "ul",
              {},
              d.rejected.map((r) =>
                h("li", {}, `${fmtTime(r.at)} ${r.reason}: ${r.explanation} (${r.topic})`)
              ),
            ),
          )
          : null,
      );
      return d;
    }).catch((e) => {
      fill(body, h("p", {}, e.message));
      return null;
    });
  const first = load();
  return {
    first,
    el: section(
      "Diagnostics",
      h("button", { type: "button", onclick: load }, "Refresh diagnostics"),
      body,
    ),
  };
}
