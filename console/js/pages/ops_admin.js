/**
 * Admin panels of the operations page: provisioning keys (list, create — the key is shown
 * once —, delete) and a twin's device credentials (list, issue — the token shown once —,
 * revoke).
 * @module
 */
import { api, ApiError, get } from "../api.js";
import { field, fill, h, section, timeEl } from "../dom.js";

/** Provisioning keys. */
export function keysPanel() {
  const list = h("div");
  const out = h("div", { role: "status", "aria-live": "polite" });
  const load = async () => {
    const { items } = await get("/v1/provisioning-keys");
    fill(
      list,
      items.length === 0 ? h("p", {}, "No provisioning keys.") : h(
        "table",
        {},
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Key", "Name", "Template", "Used", "Expires", ""].map((x) =>
              h("th", { scope: "col" }, x)
            ),
          ),
        ),
        h(
          "tbody",
          {},
          items.map((k) =>
            h(
              "tr",
              {},
              h("th", { scope: "row" }, k.id),
              h("td", {}, k.name),
              h("td", {}, h("code", {}, JSON.stringify(k.template ?? {}))),
              h("td", {}, `${k.used} of ${k.quota}`),
              h("td", {}, k.expired ? "expired" : timeEl(k.expiresAt)),
              h(
                "td",
                {},
                h("button", {
                  type: "button",
                  "aria-label": `Delete provisioning key ${k.id}`,
                  onclick: async () => {
                    if (
                      !confirm(
                        `Delete provisioning key ${k.name}? It authenticates nothing any more.`,
                      )
                    ) return;
                    await api(`/v1/provisioning-keys/${encodeURIComponent(k.id)}`, {
                      method: "DELETE",
                    });
                    load();
                  },
                }, "Delete"),
              ),
            )
          ),
        ),
      ),
    );
  };
  const form = h("form", {
    class: "inline",
    onsubmit: async (ev) => {
      ev.preventDefault();
      const f = new FormData(ev.target);
      const body = { name: String(f.get("name")), quota: Number(f.get("quota") || 100) };
      const tpl = {};
      for (const k of ["type", "site", "profile"]) if (f.get(k)) tpl[k] = String(f.get(k));
      if (Object.keys(tpl).length) body.template = tpl;
      const allow = String(f.get("allow") ?? "").split(",").map((s) => s.trim()).filter(Boolean);
      if (allow.length) body.allow = allow;
      try {
        const r = await api("/v1/provisioning-keys", { method: "POST", body });
        fill(
          out,
          h(
            "div",
            { class: "secret", role: "alert" },
            h("p", {}, `Key ${r.body.id} created. Copy it now: it is shown only once.`),
            h("code", { "aria-label": "New provisioning key" }, r.body.key),
          ),
        );
        ev.target.reset();
        load();
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        fill(out, h("p", { class: "error", role: "alert" }, e.message));
      }
    },
  }, [
    field("Key name", h("input", { name: "name", id: "k-name", required: true })),
    field("Type of its devices", h("input", { name: "type", id: "k-type" })),
    field("Site", h("input", { name: "site", id: "k-site" })),
    field("Profile", h("input", { name: "profile", id: "k-profile" })),
    field(
      "Allowed ids (globs, comma-separated)",
      h("input", { name: "allow", id: "k-allow", placeholder: "press-*" }),
    ),
    field(
      "Quota",
      h("input", { name: "quota", id: "k-quota", type: "number", min: 1, max: 100000, value: 100 }),
    ),
    h("button", { type: "submit" }, "Create provisioning key"),
  ]);
  load().catch((e) => fill(list, h("p", { class: "error" }, e.message)));
  return section("Provisioning keys", form, out, list);
}

/** Device credentials of one twin. */
export function credentialsPanel() {
  const list = h("div");
  const out = h("div", { role: "status", "aria-live": "polite" });
  const twin = h("input", {
    id: "c-twin",
    name: "twin",
    required: true,
    pattern: "[A-Za-z0-9_.:\\-]{1,128}",
  });
  const path = () => `/v1/twins/${encodeURIComponent(twin.value.trim())}/credentials`;
  const load = async () => {
    try {
      const { items } = await get(path());
      fill(
        list,
        items.length === 0 ? h("p", {}, `No credentials for ${twin.value}.`) : h(
          "ul",
          {},
          items.map((c) =>
            h(
              "li",
              {},
              `${c.id}, created `,
              timeEl(c.createdAt),
              c.lastUsedAt ? [", last used ", timeEl(c.lastUsedAt)] : ", never used",
              " ",
              h("button", {
                type: "button",
                "aria-label": `Revoke credential ${c.id}`,
                onclick: async () => {
                  if (!confirm(`Revoke ${c.id}? Devices using it are disconnected.`)) return;
                  await api(`${path()}/${encodeURIComponent(c.id)}`, { method: "DELETE" });
                  load();
                },
              }, "Revoke"),
            )
          ),
        ),
      );
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      fill(list, h("p", { class: "error", role: "alert" }, e.message));
    }
  };
  const issue = async () => {
    try {
      const r = await api(path(), { method: "POST", body: {} });
      fill(
        out,
        h(
          "div",
          { class: "secret", role: "alert" },
          h(
            "p",
            {},
            `Token for ${r.body.credentials.username} (${r.body.id}). Copy it now: it is shown only once.`,
          ),
          h("code", { "aria-label": "New device token" }, r.body.credentials.token),
        ),
      );
      load();
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      fill(out, h("p", { class: "error", role: "alert" }, e.message));
    }
  };
  const form = h(
    "form",
    {
      class: "inline",
      onsubmit: (ev) => {
        ev.preventDefault();
        load();
      },
    },
    field("Twin id", twin),
    h("button", { type: "submit" }, "Show credentials"),
    " ",
    h(
      "button",
      { type: "button", onclick: () => twin.reportValidity() && issue() },
      "Issue a token",
    ),
  );
  return section("Device credentials", form, out, list);
}
