/**
 * The live event stream (`/v1/stream`, WebSocket): a stream ticket when the tab has a
 * token, reconnection with backoff after a node restart, and one status line on screen
 * (`#live`) that says when it is disconnected.
 * @module
 */
import { api, token } from "./api.js";

const MIN_DELAY = 500;
const MAX_DELAY = 10_000;

/** Status listeners (the header's live indicator). */
const listeners = new Set();
let current = null;

/** Be told of the current stream's status: "connecting", "live", "disconnected", "off". */
export function onStatus(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function announce(s, detail) {
  for (const fn of listeners) fn(s, detail);
}

/**
 * Open a stream of `types` for `twins` (none = every twin); `onEvent` gets each parsed event,
 * `onReconnect` is called after a reconnection (events may have been missed: reload state),
 * `onFirstOpen` once the stream is first up (what changed before it was, it did not see).
 * Only one stream is open at a time: opening one closes the previous (a page owns it).
 * @returns {{close(): void}}
 */
export function openStream(
  { twins = [], types = ["telemetry", "state"], onFirstOpen },
  onEvent,
  onReconnect,
) {
  current?.close();
  let closed = false;
  let ws = null;
  let delay = MIN_DELAY;
  let timer = null;
  let opened = false;
  const connect = async () => {
    if (closed) return;
    announce("connecting");
    const q = new URLSearchParams({ types: types.join(",") });
    if (twins.length) q.set("twins", twins.join(","));
    try {
      if (token()) {
        // an expired sign-in asks for a new one (api() does), then the stream goes on
        const t = await api("/v1/stream/tickets", { method: "POST" });
        q.set("ticket", t.body.ticket);
      }
    } catch {
      return retry();
    }
    if (closed) return;
    const proto = location.protocol === "https:" ? "wss" : "ws";
    ws = new WebSocket(`${proto}://${location.host}/v1/stream?${q}`);
    ws.onopen = () => {
      delay = MIN_DELAY;
      announce("live");
      if (opened) onReconnect?.();
      else onFirstOpen?.();
      opened = true;
    };
    ws.onmessage = (m) => {
      let e;
      try {
        e = JSON.parse(m.data);
      } catch {
        return;
      }
      onEvent(e);
    };
    ws.onclose = () => {
      ws = null;
      if (!closed) retry();
    };
    ws.onerror = () => {};
  };
  const retry = () => {
    if (closed) return;
    announce("disconnected", delay);
    timer = setTimeout(connect, delay);
    delay = Math.min(MAX_DELAY, delay * 2);
  };
  const handle = {
    close() {
      closed = true;
      clearTimeout(timer);
      // closing a socket still connecting makes the browser log an error: close it once open
      const w = ws;
      if (w) w.onmessage = null;
      if (w?.readyState === WebSocket.CONNECTING) w.onopen = () => w.close();
      else w?.close();
      if (current === handle) {
        current = null;
        announce("off");
      }
    },
  };
  current = handle;
  connect();
  return handle;
}

/** Close the page's stream, if any. */
export function closeStream() {
  current?.close();
}
