/**
 * `#/ops`: firmware campaigns with per-wave progress (pause, resume: admin); the cluster's
 * nodes, shards and handoffs (cluster mode); provisioning keys and device credentials
 * (admin only).
 * @module
 */
import { api, ApiError, can, get, scoped } from "../api.js";
import { openStream } from "../stream.js";
import { badge, debounce, fill, h, section, timeEl } from "../dom.js";
import { credentialsPanel, keysPanel } from "./ops_admin.js";

/** The operations page. */
export async function opsPage() {
  const campaigns = h("div");
  const cluster = h("div");
  const images = h("div");
  const el = h(
    "div",
    { class: "page" },
    h("h1", {}, "Operations"),
    section("Firmware campaigns", campaigns),
    section("Firmware images", images),
    section("Cluster", cluster),
    can("admin") && !scoped() ? [keysPanel(), credentialsPanel()] : null,
  );
  const loadCampaigns = async () => {
    const items = [];
    let cursor;
    do {
      const page = await get(
        `/v1/campaigns?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
      );
      items.push(...page.items);
      cursor = page.next;
    } while (cursor && items.length < 1000);
    fill(
      campaigns,
      items.length === 0
        ? h("p", {}, "No campaigns.")
        : items.map((c) => campaignCard(c, loadCampaigns)),
    );
  };
  await Promise.all([
    loadCampaigns().catch((e) => fill(campaigns, h("p", { class: "error" }, e.message))),
    loadImages(images),
    loadCluster(cluster),
  ]);
  const later = debounce(() => loadCampaigns().catch(() => {}), 500);
  // a site-scoped stream must name its twins: such a caller polls the campaigns instead
  const stream = scoped() ? null : openStream({ types: ["campaign"] }, later, later);
  const slow = scoped() ? setInterval(later, 10_000) : null;
  const poll = setInterval(() => loadCluster(cluster), 5000);
  return {
    el,
    title: "Operations",
    dispose() {
      stream?.close();
      clearInterval(poll);
      clearInterval(slow);
    },
  };
}

function campaignCard(c, reload) {
  const err = h("span", { class: "error", role: "alert" });
  const act = (verb, label) =>
    h("button", {
      type: "button",
      "aria-label": `${label} campaign ${c.name}`,
      onclick: async () => {
        err.textContent = "";
        try {
          await api(`/v1/campaigns/${encodeURIComponent(c.id)}/${verb}`, { method: "POST" });
          await reload();
        } catch (e) {
          if (!(e instanceof ApiError)) throw e;
          err.textContent = e.message;
        }
      },
    }, label);
  const active = ["scheduled", "running", "waiting_window"].includes(c.state);
  return h(
    "article",
    { class: "campaign", "aria-label": `Campaign ${c.name}` },
    h("h3", {}, c.name, " ", badge(c.state)),
    h("p", {}, `${c.id} · firmware ${c.firmware?.id ?? c.firmware} · ${c.reason ?? ""}`),
    c.progress
      ? progress(`Overall`, c.progress.done ?? 0, c.progress.total ?? 0, c.progress)
      : null,
    h(
      "ol",
      { class: "waves" },
      (c.waves ?? []).map((w) =>
        h(
          "li",
          {},
          `Wave ${w.number} (${w.size} devices) `,
          badge(w.state),
          " ",
          progress(`Wave ${w.number}`, w.counts?.done ?? 0, w.size, w.counts),
        )
      ),
    ),
    can("admin") && !scoped()
      ? h(
        "p",
        {},
        active ? act("pause", "Pause") : null,
        c.state === "paused" ? act("resume", "Resume") : null,
        " ",
        active || c.state === "paused" ? act("cancel", "Cancel") : null,
        err,
      )
      : null,
  );
}

function progress(label, done, total, counts) {
  const detail = counts
    ? Object.entries(counts).filter(([k, v]) =>
      typeof v === "number" && v > 0 && k !== "total" && k !== "finished"
    ).map(([k, v]) => `${k} ${v}`).join(", ")
    : "";
  return h(
    "span",
    { class: "progress" },
    h("progress", {
      max: total || 1,
      value: done,
      "aria-label": `${label}: ${done} of ${total} done`,
    }),
    ` ${done}/${total} done${detail ? ` (${detail})` : ""}`,
  );
}

/** The stored firmware images (at most 1000: the store's limit). */
async function loadImages(el) {
  try {
    const { items } = await get("/v1/firmware");
    fill(
      el,
      items.length === 0 ? h("p", {}, "No firmware images.") : h(
        "table",
        {},
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Image", "Version", "Size", "Signed by", "Uploaded"].map((x) =>
              h("th", { scope: "col" }, x)
            ),
          ),
        ),
        h(
          "tbody",
          {},
          items.map((f) =>
            h(
              "tr",
              {},
              h("th", { scope: "row" }, f.id),
              h("td", {}, f.version),
              h("td", {}, `${(f.size / 1024).toFixed(f.size < 10240 ? 1 : 0)} KiB`),
              h("td", {}, f.signedBy ?? "unsigned"),
              h("td", {}, timeEl(f.createdAt)),
            )
          ),
        ),
      ),
    );
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    fill(el, h("p", { class: "error" }, e.message));
  }
}

/** Whether this node serves `/v1/cluster` (cluster mode): its OpenAPI document says so. */
let clusterMode;

async function loadCluster(el) {
  clusterMode ??= fetch("/openapi.json").then((r) => r.json()).then((d) =>
    "/v1/cluster" in d.paths
  );
  if (!await clusterMode) {
    fill(el, h("p", {}, "Single node: this node is not in cluster mode."));
    return;
  }
  try {
    const c = await get("/v1/cluster");
    const unowned = c.shards.filter((s) => !s.owner).length;
    fill(
      el,
      h(
        "p",
        {},
        `Answered by ${c.node}; ${
          c.settled ? "settled" : "shards moving"
        }; ${c.shards.length} shards, ${unowned} unowned.`,
      ),
      h(
        "table",
        {},
        h("caption", {}, "Nodes"),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Node", "HTTP", "MQTT", "Started", "Last heartbeat", "Shards"].map((x) =>
              h("th", { scope: "col" }, x)
            ),
          ),
        ),
        h(
          "tbody",
          {},
          c.nodes.map((n) =>
            h(
              "tr",
              {},
              h("th", { scope: "row" }, n.id),
              h("td", {}, n.http),
              h("td", {}, n.mqtt ?? "—"),
              h("td", {}, timeEl(n.startedAt)),
              h("td", {}, timeEl(n.lastHeartbeat)),
              h("td", {}, String(n.shards.length)),
            )
          ),
        ),
      ),
      c.handoffs.length
        ? h(
          "p",
          {},
          `Handoffs in progress: ${
            c.handoffs.map((x) => `shard ${x.shard} → ${x.node} (epoch ${x.epoch})`).join(", ")
          }`,
        )
        : h("p", {}, "No handoff in progress."),
      h(
        "details",
        {},
        h("summary", {}, "Shards"),
        h(
          "ul",
          { class: "shards" },
          c.shards.map((s) =>
            h("li", {}, `${s.shard}: ${s.owner ?? "unowned"} (${s.state}, epoch ${s.epoch ?? "—"})`)
          ),
        ),
      ),
    );
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    fill(
      el,
      h("p", {}, e.status === 404 ? "Single node: this node is not in cluster mode." : e.message),
    );
  }
}
