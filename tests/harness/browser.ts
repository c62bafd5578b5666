/**
 * A real browser for tests: Debian's headless `chromium` (from `tests/ensure_servers.sh`)
 * driven by `npm:playwright-core`. Every page it opens records what went wrong in it — console
 * errors, uncaught exceptions, failed requests, assets answered with an error status — and
 * every request it made with its size on the wire, so a test can fail on any script error,
 * check that nothing left loopback, and measure what a first load transfers.
 *
 * Not exported from `mod.ts`: only browser tests should load playwright.
 *
 * @example
 * ```ts
 * import { launchBrowser } from "../harness/browser.ts";
 * import { startNode } from "../harness/mod.ts";
 *
 * Deno.test("the console opens", async () => {
 *   await using node = await startNode();
 *   await using browser = await launchBrowser();
 *   const p = await browser.page();
 *   await p.page.goto(node.httpUrl);
 *   await p.page.getByRole("heading", { name: "Fleet" }).waitFor();
 *   await p.screenshot("fleet");
 *   p.assertNoPageErrors();
 * });
 * ```
 * @module
 */
import {
  type Browser,
  type BrowserContextOptions,
  chromium,
  type Page,
  type Request,
} from "playwright-core";
import { findBinary } from "./binaries.ts";
import { REPO_ROOT } from "./node.ts";

/** Where {@linkcode WatchedPage.screenshot} saves its PNGs (git-ignored). */
export const ARTIFACTS_DIR = `${REPO_ROOT}/tests/artifacts`;

/** One request a page made, once it ended. */
export interface RecordedRequest {
  url: string;
  method: string;
  /** Playwright's resource type: `document`, `script`, `fetch`, `websocket`, ... */
  resourceType: string;
  /** HTTP status; 0 when the request failed without a response. */
  status: number;
  /** Bytes received: response headers plus the body as sent (compressed if it was). */
  transferred: number;
  /** Why it failed (`net::ERR_...`), when it did. */
  failure?: string;
}

/** A page whose problems are recorded; see {@linkcode BrowserSession.page}. */
export interface WatchedPage {
  /** The Playwright page. */
  page: Page;
  /** Every problem so far, one line each: `console error: ...`, `page error: ...`, ... */
  readonly errors: string[];
  /** Every request that ended so far (finished or failed), in order. */
  readonly requests: RecordedRequest[];
  /** Problems matching `pattern` from now on are expected: kept out of {@linkcode errors}. */
  allow(pattern: RegExp): void;
  /** Throws, listing them, if the page had any problem. */
  assertNoPageErrors(): void;
  /** Throws, listing them, if a request (begun, ended or not) went to a host not this machine. */
  assertLoopbackOnly(): void;
  /** Sum of {@linkcode RecordedRequest.transferred} over the requests so far. */
  transferred(): number;
  /** Waits until no request is in flight for `quietMs` (default 500; WebSockets aside). */
  settled(quietMs?: number): Promise<void>;
  /**
   * Saves a PNG of the whole page (or only the viewport, `fullPage: false`) as
   * `tests/artifacts/<name>.png`; resolves with its path.
   */
  screenshot(name: string, options?: { fullPage?: boolean }): Promise<string>;
}

/** A running browser; disposing of it closes every page and ends the process. */
export interface BrowserSession extends AsyncDisposable {
  /** The Playwright browser. */
  browser: Browser;
  /** A new page in a context of its own (empty cache, no cookies), watched. */
  page(options?: BrowserContextOptions): Promise<WatchedPage>;
}

/** Chromium's log line for a response with an error status: the response is recorded instead. */
const STATUS_LOG = /^Failed to load resource: the server responded with a status of \d+/;

/** Requests a page may abort on purpose (navigation, an AbortController): not failures. */
const ABORTABLE = new Set(["fetch", "xhr", "eventsource", "websocket", "ping"]);

/** True if `host` (a URL's hostname) is this machine: 127.0.0.0/8, ::1 or localhost. */
const isLoopback = (host: string) =>
  host === "localhost" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host);

/** Watch `page`: record its problems and requests. */
function watch(page: Page): WatchedPage {
  const errors: string[] = [];
  const requests: RecordedRequest[] = [];
  const allowed: RegExp[] = [];
  const urls: string[] = []; // every request as it starts
  let inFlight = 0;
  let lastEnd = performance.now();
  const problem = (line: string) => {
    if (!allowed.some((re) => re.test(line))) errors.push(line);
  };
  const ended = async (r: Request, failure?: string) => {
    const response = failure ? null : await r.response().catch(() => null);
    const sizes = await r.sizes().catch(() => null);
    requests.push({
      url: r.url(),
      method: r.method(),
      resourceType: r.resourceType(),
      status: response?.status() ?? 0,
      transferred: sizes ? sizes.responseHeadersSize + sizes.responseBodySize : 0,
      failure,
    });
    const status = response?.status() ?? 0;
    if (failure && !(failure.includes("ERR_ABORTED") && ABORTABLE.has(r.resourceType()))) {
      problem(`failed request: ${r.method()} ${r.url()} ${failure}`);
    } else if (status >= 400 && !ABORTABLE.has(r.resourceType())) {
      // an API call's error status is the page's to show; an asset's is a broken page
      problem(`error status: ${r.method()} ${r.url()} ${status}`);
    }
    inFlight--;
    lastEnd = performance.now();
  };
  page.on("console", (m) => {
    if (m.type() !== "error" || STATUS_LOG.test(m.text())) return;
    const at = m.location().url ? ` (${m.location().url}:${m.location().lineNumber})` : "";
    problem(`console error: ${m.text()}${at}`);
  });
  page.on("pageerror", (e) => problem(`page error: ${e.stack ?? e.message}`));
  page.on("crash", () => problem("page crashed"));
  page.on("request", (r) => {
    urls.push(r.url());
    if (r.resourceType() !== "websocket") inFlight++;
  });
  page.on("requestfinished", (r) => {
    if (r.resourceType() !== "websocket") void ended(r);
  });
  page.on("requestfailed", (r) => {
    if (r.resourceType() !== "websocket") void ended(r, r.failure()?.errorText ?? "failed");
  });
  page.on("websocket", (ws) => {
    urls.push(ws.url());
    requests.push({
      url: ws.url(),
      method: "GET",
      resourceType: "websocket",
      status: 101,
      transferred: 0,
    });
    ws.on("socketerror", (e) => problem(`websocket error: ${ws.url()} ${e}`));
  });

  return {
    page,
    errors,
    requests,
    allow: (pattern) => void allowed.push(pattern),
    assertNoPageErrors() {
      if (errors.length) {
        throw new Error(`${errors.length} problem(s) in the page:\n  ${errors.join("\n  ")}`);
      }
    },
    assertLoopbackOnly() {
      const away = urls.filter((u) => {
        const url = new URL(u);
        return !["data:", "blob:", "about:"].includes(url.protocol) && !isLoopback(url.hostname);
      });
      if (away.length) throw new Error(`requests left loopback:\n  ${away.join("\n  ")}`);
    },
    transferred: () => requests.reduce((sum, r) => sum + r.transferred, 0),
    async settled(quietMs = 500) {
      const deadline = performance.now() + 30_000;
      while (inFlight > 0 || performance.now() - lastEnd < quietMs) {
        if (performance.now() > deadline) throw new Error(`${inFlight} request(s) never ended`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async screenshot(name, { fullPage = true } = {}) {
      await Deno.mkdir(ARTIFACTS_DIR, { recursive: true });
      const path = `${ARTIFACTS_DIR}/${name}.png`;
      await page.screenshot({ path, fullPage });
      return path;
    },
  };
}

/**
 * Launches headless Chromium (`chromium` on `$PATH`; `tests/ensure_servers.sh` installs it).
 * As root (containers, CI) Chromium's sandbox cannot start, so it runs with `--no-sandbox`.
 */
export async function launchBrowser(): Promise<BrowserSession> {
  const executablePath = findBinary(["chromium", "chromium-browser"], "chromium");
  const args = [
    "--disable-dev-shm-usage", // containers have a small /dev/shm
    "--disable-background-networking", // nothing but the test's own requests
    "--disable-component-update",
    "--no-first-run",
  ];
  if (Deno.uid() === 0) args.push("--no-sandbox");
  const browser = await chromium.launch({ executablePath, args, timeout: 60_000 });
  return {
    browser,
    async page(options) {
      const context = await browser.newContext({
        viewport: { width: 1280, height: 800 },
        ...options,
      });
      return watch(await context.newPage());
    },
    [Symbol.asyncDispose]: () => browser.close(),
  };
}
