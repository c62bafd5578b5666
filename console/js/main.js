/**
 * The console's entry: who the caller is, the sign-in dialog, the live indicator and the
 * hash router (`#/`, `#/twins`, `#/twins/{id}`, `#/alarms`, `#/profiles`, `#/ops`).
 * @module
 */
import { ApiError, session, setToken, token, whoami } from "./api.js";
import { closeStream, onStatus } from "./stream.js";
import { fill, fmtAgo, h } from "./dom.js";
import { fleetPage } from "./pages/fleet.js";
import { twinsPage } from "./pages/twins.js";
import { twinPage } from "./pages/twin.js";
import { alarmsPage } from "./pages/alarms.js";
import { profilesPage } from "./pages/profiles.js";
import { opsPage } from "./pages/ops.js";

const main = document.getElementById("main");
const live = document.getElementById("live");

onStatus((s, delay) => {
  live.dataset.state = s;
  live.textContent = s === "live"
    ? "Live"
    : s === "connecting"
    ? "Connecting…"
    : s === "disconnected"
    ? `Disconnected from the node: reconnecting in ${Math.round(delay / 1000) || 1} s`
    : "";
});

/** Ask for a token (API key or JWT); resolves once one works. */
let pending = null;
session.onSignIn = (why) => {
  pending ??= new Promise((resolve) => {
    const dlg = document.getElementById("signin");
    const form = document.getElementById("signin-form");
    const input = document.getElementById("signin-token");
    const err = document.getElementById("signin-error");
    err.textContent = token() ? why : "";
    setToken(null);
    form.onsubmit = async (ev) => {
      ev.preventDefault();
      setToken(input.value.trim());
      try {
        await whoami(true);
      } catch (e) {
        setToken(null);
        err.textContent = e instanceof ApiError ? e.message : String(e);
        return;
      }
      input.value = "";
      dlg.close();
      pending = null;
      showMe();
      resolve();
    };
    dlg.addEventListener("cancel", (e) => e.preventDefault(), { once: true });
    if (!dlg.open) dlg.showModal();
    input.focus();
  });
  return pending;
};

function showMe() {
  const me = session.me;
  const out = document.getElementById("signout");
  document.getElementById("whoami").textContent = me
    ? `${me.via === "anonymous" ? "anonymous" : me.id} · ${me.role}` +
      (me.sites ? ` · sites ${me.sites.join(", ")}` : "")
    : "";
  out.hidden = !token();
}

// the skip link moves the focus, not the hash (the hash is the page's route)
document.querySelector(".skip").addEventListener("click", (ev) => {
  ev.preventDefault();
  main.focus();
});

document.getElementById("signout").addEventListener("click", () => {
  setToken(null);
  session.me = null;
  location.reload();
});

const routes = [
  [/^#?\/?$/, () => fleetPage()],
  [/^#\/twins\/?(\?.*)?$/, (m) => twinsPage(new URLSearchParams(m[1]?.slice(1) ?? ""))],
  [/^#\/twins\/([^/?]+)$/, (m) => twinPage(decodeURIComponent(m[1]))],
  [/^#\/alarms\/?(\?.*)?$/, (m) => alarmsPage(new URLSearchParams(m[1]?.slice(1) ?? ""))],
  [/^#\/profiles(?:\/([^/?]+))?$/, (m) => profilesPage(m[1] && decodeURIComponent(m[1]))],
  [/^#\/ops$/, () => opsPage()],
];

let dispose = null;

async function route(ev) {
  const moved = ev?.type === "hashchange";
  dispose?.();
  dispose = null;
  closeStream();
  const hash = location.hash || "#/";
  for (const a of document.querySelectorAll("header nav a")) {
    const href = a.getAttribute("href");
    const here = href === "#/" ? hash === "#/" : hash.startsWith(href);
    if (here) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const found = routes.find(([re]) => re.test(hash));
  if (!found) {
    fill(
      main,
      h("h1", {}, "Not found"),
      h("p", {}, "No such page. ", h("a", { href: "#/" }, "Fleet")),
    );
    return;
  }
  try {
    const page = await found[1](hash.match(found[0]));
    fill(main, page.el);
    dispose = page.dispose ?? null;
    document.title = `${page.title} · twinmill`;
    // a new page: keyboard and screen reader users start at its top
    if (moved) main.focus({ preventScroll: false });
  } catch (e) {
    fill(
      main,
      h("h1", {}, "Error"),
      h("p", { class: "error", role: "alert" }, e.message ?? String(e)),
    );
  }
}

// relative times ("12 s ago") stay true while a page is open
setInterval(() => {
  for (const t of document.querySelectorAll("time[datetime]")) {
    t.textContent = fmtAgo(t.getAttribute("datetime"));
  }
}, 5000);

async function start() {
  try {
    await whoami();
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) throw e;
    await session.onSignIn("Sign in");
  }
  showMe();
  addEventListener("hashchange", route);
  await route();
}

start().catch((e) => {
  fill(
    main,
    h("h1", {}, "The console cannot start"),
    h("p", { role: "alert" }, e.message ?? String(e)),
  );
});
