/**
 * `#/profiles`: device profiles and their rules as JSON, one editor per rule, so the server's
 * validation error (`rules[2].op: …`) is shown at the rule and field it concerns.
 * @module
 */
import { api, ApiError, can, get, scoped } from "../api.js";
import { field, fill, fmtTime, h } from "../dom.js";

const pretty = (v) => JSON.stringify(v, null, 2);

/** The profiles page, with `name` selected (or none). */
export async function profilesPage(name) {
  const items = (await get("/v1/profiles")).items;
  const editable = can("admin") && !scoped();
  const el = h("div", { class: "page profiles" });
  const nav = h(
    "nav",
    { "aria-label": "Profiles" },
    h(
      "ul",
      {},
      items.map((p) =>
        h(
          "li",
          {},
          h("a", {
            href: `#/profiles/${encodeURIComponent(p.name)}`,
            "aria-current": p.name === name ? "page" : false,
          }, p.name),
          ` (${p.profile.rules.length} rules)`,
        )
      ),
    ),
    editable
      ? h(
        "form",
        {
          class: "inline",
          onsubmit: (ev) => {
            ev.preventDefault();
            const n = new FormData(ev.target).get("name");
            if (n) location.hash = `#/profiles/${encodeURIComponent(String(n))}`;
          },
        },
        field(
          "New profile name",
          h("input", { name: "name", id: "p-new", required: true, pattern: "[A-Za-z0-9_.:\\-]+" }),
        ),
        h("button", { type: "submit" }, "Create"),
      )
      : null,
  );
  const current = name ? items.find((p) => p.name === name) ?? null : null;
  fill(
    el,
    h("h1", {}, "Profiles"),
    h(
      "div",
      { class: "split" },
      nav,
      name
        ? editor(name, current, editable)
        : h("p", {}, items.length ? "Choose a profile." : "No profiles yet."),
    ),
  );
  return { el, title: name ? `Profile ${name}` : "Profiles" };
}

function editor(name, stored, editable) {
  const profile = stored?.profile ?? { rules: [] };
  const { rules = [], ...settings } = profile;
  const head = h(
    "div",
    {},
    h("h2", {}, name),
    stored
      ? h("p", {}, `Updated ${fmtTime(stored.updatedAt)}, hash ${stored.hash}.`)
      : h("p", {}, "A new profile."),
  );
  if (!editable) {
    const faulted = stored?.status?.rules ?? [];
    return h(
      "div",
      {},
      head,
      h("pre", { class: "code", "aria-label": `Profile ${name}` }, pretty(profile)),
      faulted.length ? h("p", {}, `Faulted rules: ${pretty(faulted)}`) : null,
    );
  }

  const out = h("div", { role: "status", "aria-live": "polite" });
  const settingsArea = area(
    "p-settings",
    "Profile settings (JSON, everything but the rules)",
    settings,
    4,
  );
  /** Rules that faulted on this node, by rule id. */
  const faults = new Map((stored?.status?.rules ?? []).map((f) => [f.rule, f]));
  const ruleAreas = rules.map((r, i) =>
    Object.assign(area(`p-rule-${i}`, `Rule ${i + 1}${r.id ? ` (${r.id})` : ""}`, r, 8), {
      fault: faults.get(r.id),
    })
  );
  const rulesEl = h("div");
  const draw = () =>
    fill(
      rulesEl,
      ruleAreas.map((a, i) =>
        h(
          "div",
          { class: "rule" },
          a.el,
          a.fault
            ? h(
              "p",
              { class: "error" },
              `Faulted on this node: ${a.fault.faults} failed evaluations, the last ` +
                `${fmtTime(a.fault.at)}: ${a.fault.lastFault}`,
            )
            : null,
          h("button", {
            type: "button",
            onclick: () => {
              ruleAreas.splice(i, 1);
              draw();
            },
          }, `Remove rule ${i + 1}`),
        )
      ),
    );
  draw();
  const clear = () => {
    for (const a of [settingsArea, ...ruleAreas]) a.error("");
    fill(out);
  };
  const save = async (ev) => {
    ev.preventDefault();
    clear();
    let body;
    try {
      body = { ...settingsArea.parse(), rules: ruleAreas.map((a) => a.parse()) };
    } catch {
      return;
    }
    try {
      const r = await api(`/v1/profiles/${encodeURIComponent(name)}`, { method: "PUT", body });
      fill(
        out,
        h("p", {}, `Saved (${r.status === 201 ? "created" : "replaced"}), hash ${r.body.hash}.`),
      );
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      const m = /(rules\[(\d+)\](?:\.([\w.[\]]+))?|[\w.[\]]+): (.*)$/.exec(
        e.message.replace(/^Invalid profile: /, ""),
      );
      const i = m?.[2] === undefined ? -1 : Number(m[2]);
      if (m && i >= 0 && ruleAreas[i]) ruleAreas[i].error(`${m[3] ?? "rule"}: ${m[4]}`, m[3]);
      else if (m && e.code === "profile_invalid") settingsArea.error(`${m[1]}: ${m[4]}`, m[1]);
      fill(out, h("p", { class: "error", role: "alert" }, `Not saved: ${e.message}`));
    }
  };
  return h(
    "div",
    {},
    head,
    h(
      "form",
      { onsubmit: save },
      settingsArea.el,
      h("h3", {}, "Rules"),
      rulesEl,
      h(
        "p",
        {},
        h("button", {
          type: "button",
          onclick: () => {
            ruleAreas.push(
              area(`p-rule-${ruleAreas.length}-${Date.now()}`, `Rule ${ruleAreas.length + 1}`, {
                id: "",
                kind: "threshold",
                field: "",
                op: ">",
                value: 0,
                severity: "major",
              }, 8),
            );
            draw();
          },
        }, "Add a rule"),
      ),
      h("button", { type: "submit" }, "Save profile"),
      stored
        ? [
          " ",
          h("button", {
            type: "button",
            onclick: async () => {
              if (!confirm(`Delete profile ${name}? Its twins clear their alarms.`)) return;
              await api(`/v1/profiles/${encodeURIComponent(name)}`, { method: "DELETE" });
              location.hash = "#/profiles";
            },
          }, "Delete profile"),
        ]
        : null,
    ),
    out,
  );
}

/** A labelled JSON textarea with an error line of its own. */
function area(id, label, value, rows) {
  const text = h("textarea", {
    id,
    rows: Math.min(24, Math.max(rows, pretty(value).split("\n").length + 1)),
    class: "code",
    spellcheck: "false",
    "aria-describedby": `${id}-err`,
  });
  text.value = pretty(value);
  const err = h("p", { id: `${id}-err`, class: "error field-error" });
  const error = (msg, key) => {
    err.textContent = msg;
    if (msg) {
      text.setAttribute("aria-invalid", "true");
      const leaf = key?.split(/[.[\]]/).filter(Boolean).pop();
      const at = leaf ? text.value.indexOf(`"${leaf}"`) : -1;
      text.focus();
      if (at >= 0) text.setSelectionRange(at, at + leaf.length + 2);
    } else text.removeAttribute("aria-invalid");
  };
  return {
    el: h("div", { class: "json-field" }, field(label, text), err),
    error,
    parse() {
      try {
        return JSON.parse(text.value);
      } catch (e) {
        error(`Not JSON: ${e.message}`);
        throw e;
      }
    },
  };
}
