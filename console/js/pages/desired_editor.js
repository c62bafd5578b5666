/**
 * The twin page's desired-state editor: a JSON merge patch sent with `If-Match` (the twin
 * version the edit started from); a 412 is shown plainly with the twin's current desired
 * state, to send the change over it or discard it. An untouched editor follows live changes.
 * @module
 */
import { api, ApiError, can, get } from "../api.js";
import { field, fill, h, section } from "../dom.js";

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
  /** The desired state the edit started from: a conflict that did not change it is no conflict. */
  let baseDesired = pretty(current().desired);
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
    baseDesired = pretty(twin.desired);
    text.value = pretty(twin.desired);
    dirty = false;
    showBase();
  };
  let note = "";
  const send = async (retries = 3) => {
    if (retries === 3) note = "";
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
      fill(out, h("p", {}, `Sent: the twin is at version ${r.body.version}.`, note));
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      if (e.status !== 412) {
        fill(out, h("p", { class: "error", role: "alert" }, `${e.code}: ${e.message}`));
        return;
      }
      const now = await get(twinPath(id));
      if (pretty(now.desired) === baseDesired && retries > 0) {
        // only reported values, attributes or connectivity changed: the edit still holds
        note = ` The twin had changed meanwhile (version ${base} → ${now.version}), but not its ` +
          "desired state: the change was sent over the new version.";
        base = now.version;
        showBase();
        return send(retries - 1);
      }
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
              baseDesired = pretty(now.desired);
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
