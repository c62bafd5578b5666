/** Options for {@linkcode waitFor}. */
export interface WaitForOptions {
  /** Give up after this many milliseconds (default 10 000). */
  timeoutMs?: number;
  /** Pause between two polls in milliseconds (default 50). */
  intervalMs?: number;
  /** Describes what was awaited; it starts the error thrown on timeout. */
  message?: string;
  /** Stops polling at once, rejecting with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * Polls `fn` until it returns a truthy value without throwing, and returns that value.
 * A throw or a falsy result means "not yet". On the deadline it throws an Error that
 * starts with `opts.message` and carries the last error thrown by `fn` as `cause`.
 *
 * @example
 * ```ts
 * const res = await waitFor(() => fetch(url).then((r) => r.ok && r), { message: "server up" });
 * ```
 */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  opts: WaitForOptions = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const intervalMs = opts.intervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (true) {
    opts.signal?.throwIfAborted();
    try {
      const value = await fn();
      if (value) return value;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    opts.signal?.throwIfAborted();
    const left = deadline - Date.now();
    if (left <= 0) {
      const what = opts.message ?? "Condition not met";
      const why = lastError instanceof Error ? `: ${lastError.message}` : "";
      throw new Error(`${what} (timed out after ${timeoutMs} ms)${why}`, { cause: lastError });
    }
    await sleep(Math.min(intervalMs, left), opts.signal);
  }
}

/** Sleeps `ms` milliseconds; resolves early (without throwing) when `signal` aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * Resolves as `p` does, or rejects with `new Error(message)` if `p` has not settled within
 * `ms` (for an answer that may never come, such as a PUBACK).
 *
 * @example
 * ```ts
 * await within(client.publishAsync(topic, body, { qos: 1 }), 10_000, "no PUBACK in 10 s");
 * ```
 */
export function within<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
