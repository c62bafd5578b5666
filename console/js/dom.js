/**
 * Tiny DOM helpers: `h()` builds elements, formatting of times and values.
 * @module
 */

/**
 * Create an element: `h("button", {type: "button", onclick}, "Text", child)`. Attributes
 * starting with `on` are listeners; `false`/null/undefined attributes are left out; children
 * may be strings, nodes, arrays or null.
 * @param {string} tag
 * @param {Record<string, unknown>} [attrs]
 * @param {...unknown} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = String(v);
    else if (k === "value" || k === "checked" || k === "selected") el[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

/** Append children (strings, nodes, nested arrays; null skipped). */
export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** A time (ms or RFC 3339) as local date-time, or "—". */
export function fmtTime(t) {
  if (t === null || t === undefined || t === "") return "—";
  const d = new Date(t);
  return isNaN(d.getTime()) ? "—" : d.toLocaleString();
}

/** "12 s ago", "3 min ago", "in 30 d", … for a time (ms or RFC 3339). */
export function fmtAgo(t, now = Date.now()) {
  if (t === null || t === undefined) return "never";
  const ms = now - new Date(t).getTime();
  if (!isFinite(ms)) return "—";
  const s = Math.round(Math.abs(ms) / 1000);
  const span = s < 60
    ? `${s} s`
    : s < 3600
    ? `${Math.round(s / 60)} min`
    : s < 86400
    ? `${Math.round(s / 3600)} h`
    : `${Math.round(s / 86400)} d`;
  return ms < -1000 ? `in ${span}` : `${span} ago`;
}

/** A JSON value shown compactly. */
export function fmtValue(v) {
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : String(+v.toFixed(4));
  if (typeof v === "string") return v;
  return JSON.stringify(v);
}

/** A `<time>` element for a time. */
export function timeEl(t) {
  if (t === null || t === undefined) return h("span", {}, "—");
  const d = new Date(t);
  return h("time", { datetime: d.toISOString(), title: fmtTime(t) }, fmtAgo(t));
}

/** A small status badge (connectivity, severity, state). */
export function badge(text, kind = text) {
  return h("span", { class: `badge b-${kind}` }, text);
}

/** A heading + section. */
export function section(title, ...children) {
  const id = `s-${title.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
  return h("section", { "aria-labelledby": id }, h("h2", { id }, title), ...children);
}

/** A labelled control: `<label for>` + the control (given an id). */
export function field(label, control, hint) {
  const id = control.id || (control.id = `f-${Math.random().toString(36).slice(2, 9)}`);
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    control,
    hint ? h("small", {}, hint) : null,
  );
}

/** Debounce `fn` by `ms`. */
export function debounce(fn, ms) {
  let t;
  return (...a) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...a), ms);
  };
}

/**
 * {@linkcode fill} for a live re-render: the focused control or link inside `el` (found again
 * by id, else by href, else by accessible label) keeps the focus.
 */
export function refill(el, ...children) {
  const a = document.activeElement;
  const inside = a && a !== el && el.contains(a);
  const key = inside
    ? a.id
      ? `#${CSS.escape(a.id)}`
      : a.getAttribute("href")
      ? `[href="${CSS.escape(a.getAttribute("href"))}"]`
      : a.getAttribute("aria-label")
      ? `[aria-label="${CSS.escape(a.getAttribute("aria-label"))}"]`
      : null
    : null;
  fill(el, ...children);
  if (key) el.querySelector(key)?.focus();
  return el;
}

/** `fn` at most once per animation frame, however often the result is called. */
export function perFrame(fn) {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      fn();
    });
  };
}
