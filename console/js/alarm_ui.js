/**
 * Alarm rows shared by the alarms page and the twin page: severity, state, times, and — for
 * an operator — an acknowledge form with a comment.
 * @module
 */
import { api, ApiError, can } from "./api.js";
import { badge, fmtValue, h, timeEl } from "./dom.js";

/** The header cells of {@linkcode alarmRow}. */
export const ALARM_COLUMNS = [
  "Alarm",
  "Twin",
  "Severity",
  "State",
  "Value",
  "Raised",
  "Acknowledgement",
];

/** One alarm as a table row; `onAcked(alarm)` after an acknowledgement. */
export function alarmRow(a, onAcked) {
  return h(
    "tr",
    { "data-alarm": a.id },
    h("th", { scope: "row" }, a.rule, " ", h("small", { class: "block" }, a.id)),
    h("td", {}, h("a", { href: `#/twins/${encodeURIComponent(a.twin)}` }, a.twin)),
    h("td", {}, badge(a.severity)),
    h("td", {}, badge(a.state), a.raiseCount > 1 ? ` ×${a.raiseCount}` : ""),
    h("td", {}, a.value === null ? "—" : fmtValue(a.value)),
    h(
      "td",
      {},
      timeEl(a.raisedAt),
      a.clearedAt ? [" ", h("span", { class: "block" }, "cleared ", timeEl(a.clearedAt))] : null,
    ),
    h("td", {}, ackCell(a, onAcked)),
  );
}

/** Comments being typed, by alarm id: a live re-render of the row keeps them. */
const drafts = new Map();

function ackCell(a, onAcked) {
  if (a.acknowledged) {
    return [
      "acknowledged ",
      timeEl(a.ackedAt),
      a.ackComment ? [" ", h("q", {}, a.ackComment)] : null,
    ];
  }
  if (!can("operator")) return "—";
  const comment = h("input", {
    name: "comment",
    "aria-label": `Comment for ${a.id}`,
    placeholder: "comment",
    maxlength: 1000,
    value: drafts.get(a.id) ?? "",
    oninput: (ev) => drafts.set(a.id, ev.target.value),
  });
  const err = h("span", { class: "error", role: "alert" });
  return h(
    "form",
    {
      class: "ack",
      onsubmit: async (ev) => {
        ev.preventDefault();
        err.textContent = "";
        try {
          const body = comment.value.trim() ? { comment: comment.value.trim() } : {};
          const r = await api(`/v1/alarms/${encodeURIComponent(a.id)}/ack`, {
            method: "POST",
            body,
          });
          comment.value = ""; // done: a live reload may replace the row now
          drafts.delete(a.id);
          onAcked?.(r.body);
        } catch (e) {
          if (!(e instanceof ApiError)) throw e;
          err.textContent = e.message;
        }
      },
    },
    comment,
    h("button", { type: "submit", "aria-label": `Acknowledge ${a.id}` }, "Acknowledge"),
    err,
  );
}
