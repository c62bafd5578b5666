/**
 * Panels of the twin page: commands, rule status and diagnostics (the desired-state editor is
 * `desired_editor.js`).
 * @module
 */
import { api, can, get } from "../api.js";
import { badge, field, fill, fmtTime, fmtValue, h, refill, section, timeEl } from "../dom.js";

const twinPath = (id) => `/v1/twins/${encodeURIComponent(id)}`;

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
  const FINISHED = ["succeeded", "failed", "expired"];
  /** Read a sent command back until it finishes (its stream events may come first). */
  const follow = async (cmdId, until = Date.now() + 60_000) => {
    while (Date.now() < until) {
      await new Promise((r) => setTimeout(r, 1000));
      const known = items.find((x) => x.id === cmdId);
      if (!known || FINISHED.includes(known.status) || !document.contains(list)) return;
      const c = await get(`${twinPath(id)}/commands/${encodeURIComponent(cmdId)}`).catch(() =>
        null
      );
      if (c) update(c);
    }
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
            follow(r.body.id);
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
          const raised = (twin.alarms ?? []).find((a) => a.rule === r.id && a.state !== "cleared");
          return h(
            "li",
            {},
            h("strong", {}, r.id),
            ` (${r.kind}${r.field ? ` on ${r.field}` : ""}) `,
            r.enabled === false
              ? badge("disabled")
              : f
              ? badge("faulted", "critical")
              : raised
              ? badge(`raised: ${raised.severity}`, raised.severity)
              : badge("ok"),
            f
              ? ` ${f.faults} failed evaluations on this node, the last ${
                fmtTime(f.at)
              }: ${f.lastFault}`
              : "",
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
