/**
 * Webhook actions of device-profile rules: POSTs a JSON body to a URL, off the caller's
 * path. A bounded queue (overflow is dropped and counted, never blocking the caller), a
 * few deliveries at a time, a timeout per attempt, bounded retries with exponential backoff
 * and jitter (network errors, timeouts, 5xx, 408 and 429 are retried; other answers are
 * final; redirects are not followed). Header values (they may hold secrets) are never
 * logged, and URLs are logged without credentials, query or fragment.
 * @module
 */
import type { Logger } from "../obs/log.ts";

/** One webhook delivery. */
export interface WebhookRequest {
  /** An http or https URL. */
  url: string;
  /** Extra request headers (e.g. an API key); never logged. */
  headers?: Record<string, string>;
  /** Sent as JSON. */
  body: unknown;
}

/** How a delivery ended. */
export interface WebhookOutcome {
  kind: "sent" | "failed" | "dropped";
  /** The URL without credentials, query or fragment. */
  url: string;
  /** Attempts made (0 for a delivery dropped before its first attempt). */
  attempts: number;
  /** HTTP status of the last attempt, if one answered. */
  status?: number;
  /** Why it failed or was dropped. */
  reason?: string;
}

/** Options of {@linkcode WebhookSender}. */
export interface WebhookSenderOptions {
  /** Timeout of each attempt (default 5 000 ms). */
  timeoutMs?: number;
  /** Retries after the first attempt (default 3). */
  retries?: number;
  /** Deliveries waiting to start; more are dropped (default 1 000). */
  queueSize?: number;
  /** Deliveries in progress at once, retry waits included (default 4). */
  concurrency?: number;
  /** First retry delay (default 500 ms); doubles per retry, with jitter. */
  minBackoffMs?: number;
  /** Longest retry delay (default 30 000 ms). */
  maxBackoffMs?: number;
  /** Called once per delivery when it ends (metrics hook). */
  onOutcome?: (o: WebhookOutcome) => void;
  /** Logs failures and drops (never header values). */
  logger?: Logger;
  /** Random numbers in [0, 1) for the jitter (tests may fix it). */
  random?: () => number;
}

interface Job {
  url: URL;
  safeUrl: string;
  headers: Record<string, string>;
  body: string;
}

type Attempt = { ok: true; status: number } | {
  ok: false;
  retry: boolean;
  status?: number;
  reason: string;
  retryAfterMs?: number;
};

const DROP_LOG_EVERY_MS = 10_000;

/**
 * Sends webhook requests in the background.
 *
 * @example
 * ```ts
 * await using hooks = new WebhookSender({ onOutcome: (o) => metrics.webhooks.inc({ kind: o.kind }) });
 * hooks.send({ url: "https://example.com/hook", headers: { "X-Key": key }, body: { alarm } });
 * ```
 */
export class WebhookSender {
  readonly #timeoutMs: number;
  readonly #retries: number;
  readonly #queueSize: number;
  readonly #concurrency: number;
  readonly #minBackoff: number;
  readonly #maxBackoff: number;
  readonly #onOutcome: ((o: WebhookOutcome) => void) | undefined;
  readonly #log: Logger | undefined;
  readonly #random: () => number;

  readonly #queue: Job[] = [];
  readonly #abort = new AbortController();
  readonly #timers = new Map<ReturnType<typeof setTimeout>, () => void>();
  readonly #workers = new Set<Promise<void>>();
  #idleWaiters: (() => void)[] = [];
  #closed = false;
  #sent = 0;
  #failed = 0;
  #dropped = 0;
  #dropsUnlogged = 0;
  #lastDropLog = -Infinity;

  /** Creates the sender; nothing runs until the first `send`. */
  constructor(opts: WebhookSenderOptions = {}) {
    this.#timeoutMs = positive(opts.timeoutMs, 5000, "timeoutMs");
    this.#retries = count(opts.retries, 3, "retries");
    this.#queueSize = count(opts.queueSize, 1000, "queueSize");
    this.#concurrency = positive(opts.concurrency, 4, "concurrency");
    this.#minBackoff = count(opts.minBackoffMs, 500, "minBackoffMs");
    this.#maxBackoff = Math.max(this.#minBackoff, count(opts.maxBackoffMs, 30_000, "maxBackoffMs"));
    this.#onOutcome = opts.onOutcome;
    this.#log = opts.logger;
    this.#random = opts.random ?? Math.random;
  }

  /** Deliveries that got a 2xx answer. */
  get sent(): number {
    return this.#sent;
  }

  /** Deliveries given up: refused (4xx), bad URL or body, or out of retries. */
  get failed(): number {
    return this.#failed;
  }

  /** Deliveries dropped: queue full, or the sender closed before they ended. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Deliveries waiting to start. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Deliveries in progress (sending or waiting to retry). */
  get inFlight(): number {
    return this.#workers.size;
  }

  /**
   * Queue a delivery; returns at once. False when it was not queued: the URL is not http(s)
   * or the body not JSON (counted as failed), or the queue is full or the sender closed
   * (counted as dropped).
   */
  send(req: WebhookRequest): boolean {
    let url: URL;
    try {
      url = new URL(req.url);
    } catch {
      this.#end({ kind: "failed", url: "(invalid URL)", attempts: 0, reason: "invalid URL" });
      return false;
    }
    const safeUrl = redactUrl(url);
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      this.#end({ kind: "failed", url: safeUrl, attempts: 0, reason: "not an http(s) URL" });
      return false;
    }
    if (this.#closed || this.#queue.length >= this.#queueSize) {
      const reason = this.#closed ? "sender closed" : "queue full";
      this.#end({ kind: "dropped", url: safeUrl, attempts: 0, reason });
      return false;
    }
    let body: string;
    try {
      body = JSON.stringify(req.body) ?? "null";
    } catch (e) {
      const reason = `body is not JSON: ${e instanceof Error ? e.name : "error"}`;
      this.#end({ kind: "failed", url: safeUrl, attempts: 0, reason });
      return false;
    }
    const headers = {
      "user-agent": "twinmill",
      ...req.headers,
      "content-type": "application/json",
    };
    this.#queue.push({ url, safeUrl, headers, body });
    this.#pump();
    return true;
  }

  /** Resolves when nothing is queued or in progress (at once if so; also on close). */
  idle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * Stops: refuses new deliveries, aborts those in progress and their retry timers, and
   * drops what is queued (all counted as dropped). Resolves when every worker has stopped.
   */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#abort.abort(new DOMException("webhook sender closed", "AbortError"));
      for (const [id, wake] of this.#timers) {
        clearTimeout(id);
        wake();
      }
      this.#timers.clear();
      for (const job of this.#queue.splice(0)) {
        this.#end({ kind: "dropped", url: job.safeUrl, attempts: 0, reason: "sender closed" });
      }
    }
    await Promise.all([...this.#workers]);
    this.#wakeIdle();
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #isIdle(): boolean {
    return this.#queue.length === 0 && this.#workers.size === 0;
  }

  #wakeIdle(): void {
    if (!this.#isIdle() && !this.#closed) return;
    for (const w of this.#idleWaiters.splice(0)) w();
  }

  #pump(): void {
    while (!this.#closed && this.#workers.size < this.#concurrency && this.#queue.length > 0) {
      const job = this.#queue.shift()!;
      const worker: Promise<void> = this.#deliver(job).catch((err) => {
        this.#log?.error("webhook delivery failed unexpectedly", {
          url: job.safeUrl,
          error: err instanceof Error ? err.name : "error",
        });
      }).finally(() => {
        this.#workers.delete(worker);
        this.#pump();
        this.#wakeIdle();
      });
      this.#workers.add(worker);
    }
  }

  async #deliver(job: Job): Promise<void> {
    let attempts = 0;
    for (;;) {
      attempts++;
      const r = await this.#attempt(job);
      if (r.ok) return this.#end({ kind: "sent", url: job.safeUrl, attempts, status: r.status });
      if (this.#closed) {
        return this.#end({ kind: "dropped", url: job.safeUrl, attempts, reason: "sender closed" });
      }
      if (!r.retry || attempts > this.#retries) {
        return this.#end({
          kind: "failed",
          url: job.safeUrl,
          attempts,
          status: r.status,
          reason: r.reason,
        });
      }
      const base = Math.min(this.#maxBackoff, this.#minBackoff * 2 ** (attempts - 1));
      const jittered = base / 2 + this.#random() * base / 2;
      await this.#sleep(Math.min(this.#maxBackoff, Math.max(jittered, r.retryAfterMs ?? 0)));
      if (this.#closed) {
        return this.#end({ kind: "dropped", url: job.safeUrl, attempts, reason: "sender closed" });
      }
    }
  }

  async #attempt(job: Job): Promise<Attempt> {
    const ctl = new AbortController();
    const timer = setTimeout(
      () => ctl.abort(new DOMException("timed out", "TimeoutError")),
      this.#timeoutMs,
    );
    const onClose = () => ctl.abort(this.#abort.signal.reason);
    this.#abort.signal.addEventListener("abort", onClose, { once: true });
    try {
      const res = await fetch(job.url, {
        method: "POST",
        headers: job.headers,
        body: job.body,
        redirect: "manual",
        signal: ctl.signal,
      });
      await res.body?.cancel();
      if (res.ok) return { ok: true, status: res.status };
      const retry = res.status >= 500 || res.status === 429 || res.status === 408;
      const retryAfterMs = retryAfter(res.headers.get("retry-after"));
      return { ok: false, retry, status: res.status, reason: `HTTP ${res.status}`, retryAfterMs };
    } catch (err) {
      const reason = ctl.signal.aborted && !this.#closed
        ? `timed out after ${this.#timeoutMs} ms`
        : describe(err, job.url);
      return { ok: false, retry: true, reason };
    } finally {
      clearTimeout(timer);
      this.#abort.signal.removeEventListener("abort", onClose);
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const id = setTimeout(() => {
        this.#timers.delete(id);
        resolve();
      }, ms);
      this.#timers.set(id, resolve);
    });
  }

  #end(o: WebhookOutcome): void {
    if (o.kind === "sent") this.#sent++;
    else if (o.kind === "failed") this.#failed++;
    else this.#dropped++;
    if (o.kind === "failed") {
      this.#log?.warn("webhook failed", {
        url: o.url,
        attempts: o.attempts,
        status: o.status,
        reason: o.reason,
      });
    } else if (o.kind === "dropped") {
      this.#dropsUnlogged++;
      const now = Date.now();
      if (now - this.#lastDropLog >= DROP_LOG_EVERY_MS) {
        this.#log?.warn("webhooks dropped", {
          url: o.url,
          reason: o.reason,
          dropped: this.#dropsUnlogged,
        });
        this.#lastDropLog = now;
        this.#dropsUnlogged = 0;
      }
    }
    try {
      this.#onOutcome?.(o);
    } catch (err) {
      this.#log?.error("webhook onOutcome callback threw", {
        error: err instanceof Error ? err.name : "error",
      });
    }
  }
}

/** The URL as it may be logged: no user info, query or fragment. */
export function redactUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

/** An error as it may be logged: the URL's secrets (user info, query) cut out. */
function describe(err: unknown, url: URL): string {
  let text = err instanceof Error ? `${err.name}: ${err.message}` : "error";
  const cause = err instanceof Error ? err.cause : undefined;
  if (cause instanceof Error) text += ` (${cause.message})`;
  for (const secret of [url.href, url.search, url.username, url.password, url.hash]) {
    if (secret.length > 1) text = text.split(secret).join("***");
  }
  return text.slice(0, 300);
}

/** `Retry-After` in ms (seconds form only), or undefined. */
function retryAfter(v: string | null): number | undefined {
  if (v === null || !/^\d{1,6}$/.test(v.trim())) return undefined;
  return Number(v.trim()) * 1000;
}

function positive(v: number | undefined, dflt: number, name: string): number {
  if (v === undefined) return dflt;
  if (!Number.isFinite(v) || v <= 0) throw new RangeError(`WebhookSender: ${name} must be > 0`);
  return v;
}

function count(v: number | undefined, dflt: number, name: string): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < 0) {
    throw new RangeError(`WebhookSender: ${name} must be an integer >= 0`);
  }
  return v;
}
