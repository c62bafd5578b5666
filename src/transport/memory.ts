/**
 * In-process transport: subject matching with `*` and `>`, synchronous delivery, request/reply
 * by direct call. Payloads are passed by reference (no serialization), which is why the single
 * node pays nothing for the seam.
 * @module
 */
import { type Message, type Subscription, type Transport, TransportError } from "./port.ts";

interface Sub {
  tokens: string[];
  /** The literal tokens before the first wildcard, with their dots (a cheap first test). */
  prefix: string;
  cb: (m: Message) => void;
}

function matches(pattern: string[], subject: string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i];
    if (p === ">") return subject.length > i;
    if (i >= subject.length || (p !== "*" && p !== subject[i])) return false;
  }
  return pattern.length === subject.length;
}

/** Create an in-process {@linkcode Transport}. */
export function memoryTransport(): Transport {
  const exact = new Map<string, Set<Sub>>();
  // copy on write: a delivery iterates the list as it was, whoever (un)subscribes meanwhile
  let wild: Sub[] = [];
  let closed = false;

  function deliver(subject: string, data: unknown, respond: (d: unknown) => void): number {
    let n = 0;
    const msg: Message = { subject, data, respond };
    const ex = exact.get(subject);
    if (ex) { for (const s of [...ex]) (n++, s.cb(msg)); }
    if (wild.length) {
      let tokens: string[] | undefined;
      for (const s of wild) {
        if (!subject.startsWith(s.prefix)) continue;
        tokens ??= subject.split(".");
        if (matches(s.tokens, tokens)) (n++, s.cb(msg));
      }
    }
    return n;
  }

  return {
    publish(subject, data) {
      if (!closed) deliver(subject, data, () => {});
    },
    subscribe(subject, cb): Subscription {
      const tokens = subject.split(".");
      const first = tokens.findIndex((t) => t === "*" || t === ">");
      const isWild = first >= 0;
      const prefix = isWild ? tokens.slice(0, first).map((t) => `${t}.`).join("") : subject;
      const sub: Sub = { tokens, prefix, cb };
      if (isWild) wild = [...wild, sub];
      else {
        let set = exact.get(subject);
        if (!set) exact.set(subject, set = new Set());
        set.add(sub);
      }
      const unsubscribe = () => {
        if (isWild) wild = wild.filter((w) => w !== sub);
        else {
          const set = exact.get(subject);
          set?.delete(sub);
          if (set?.size === 0) exact.delete(subject);
        }
      };
      return { unsubscribe, [Symbol.dispose]: unsubscribe };
    },
    request(subject, data, opts = {}) {
      if (closed) return Promise.reject(new TransportError("closed", "Transport is closed"));
      return new Promise((resolve, reject) => {
        let done = false;
        const timer = setTimeout(() => {
          done = true;
          reject(new TransportError("timeout", `Request to "${subject}" timed out`));
        }, opts.timeoutMs ?? 5000);
        const n = deliver(subject, data, (d) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          resolve(d);
        });
        if (n === 0) {
          clearTimeout(timer);
          done = true;
          reject(new TransportError("no_responders", `No responders for "${subject}"`));
        }
      });
    },
    gather(subject, data, opts) {
      if (closed) return Promise.resolve([]);
      return new Promise((resolve) => {
        const replies: unknown[] = [];
        let done = false;
        let expected = Infinity;
        const finish = () => {
          done = true;
          clearTimeout(timer);
          resolve(replies);
        };
        const timer = setTimeout(finish, opts.maxWaitMs);
        // each subscriber answers once; when all have, nobody else will
        const n = deliver(subject, data, (d) => {
          if (done) return;
          replies.push(d);
          if (opts.until?.(d) || replies.length >= expected) finish();
        });
        expected = n;
        if (!done && replies.length >= n) finish();
      });
    },
    [Symbol.asyncDispose]() {
      closed = true;
      exact.clear();
      wild = [];
      return Promise.resolve();
    },
  };
}
