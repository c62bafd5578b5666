/**
 * A live line chart of one numeric field (SVG, no library): a bounded window of points
 * ({@linkcode MAX_POINTS}), so a tab left open for a shift does not grow.
 * @module
 */
import { fmtTime, fmtValue, h } from "./dom.js";

/** Points kept per chart. */
export const MAX_POINTS = 600;

const W = 320;
const H = 90;
const NS = "http://www.w3.org/2000/svg";

const svg = (tag, attrs) => {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
};

/** One field's chart: `add(ts, value)` then it redraws on the next frame. */
export class LiveChart {
  constructor(name) {
    this.name = name;
    /** @type {Array<[number, number]>} */
    this.points = [];
    this.line = svg("polyline", { fill: "none", stroke: "currentColor", "stroke-width": 1.5 });
    this.svg = svg("svg", {
      viewBox: `0 0 ${W} ${H}`,
      preserveAspectRatio: "none",
      "aria-hidden": "true",
    });
    this.svg.append(this.line);
    this.value = h("span", { class: "chart-value" }, "—");
    this.range = h("small", {}, "");
    this.el = h(
      "figure",
      { class: "chart", role: "group", "aria-label": `Chart of ${name}` },
      h("figcaption", {}, h("span", { class: "k" }, name), " ", this.value),
      this.svg,
      this.range,
    );
    this.queued = false;
  }

  /** Add points (older ones first), e.g. the history back-fill. */
  addMany(points) {
    this.points.push(...points);
    this.points.sort((a, b) => a[0] - b[0]);
    this.#trim();
    this.#schedule();
  }

  /** Add one point. */
  add(ts, value) {
    if (typeof value !== "number" || !isFinite(value)) return;
    const n = this.points.length;
    if (n && this.points[n - 1][0] > ts) {
      this.addMany([[ts, value]]);
      return;
    }
    this.points.push([ts, value]);
    this.#trim();
    this.#schedule();
  }

  #trim() {
    if (this.points.length > MAX_POINTS) this.points.splice(0, this.points.length - MAX_POINTS);
  }

  #schedule() {
    if (this.queued) return;
    this.queued = true;
    requestAnimationFrame(() => {
      this.queued = false;
      this.draw();
    });
  }

  /** Redraw now. */
  draw() {
    const p = this.points;
    if (p.length === 0) return;
    const t0 = p[0][0];
    const t1 = p[p.length - 1][0];
    let lo = Infinity;
    let hi = -Infinity;
    for (const [, v] of p) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    const span = hi - lo || 1;
    const dt = t1 - t0 || 1;
    this.line.setAttribute(
      "points",
      p.map(([t, v]) =>
        `${((t - t0) / dt * W).toFixed(1)},${(H - 4 - (v - lo) / span * (H - 8)).toFixed(1)}`
      ).join(" "),
    );
    const last = p[p.length - 1][1];
    this.value.textContent = fmtValue(last);
    this.range.textContent = `${p.length} points, min ${fmtValue(lo)}, max ${fmtValue(hi)}, ` +
      `from ${fmtTime(t0)}`;
  }
}
