/**
 * Twin events go on NATS only when some node streams them. Publishing every twin's every
 * event cost about a third of cluster ingest throughput (measured), while most of the time
 * no WebSocket client anywhere asks for them.
 *
 * Each node announces the event subjects its WebSocket clients subscribe to on
 * `tm.interest` — at once on every change, and again every few seconds; an announcement
 * not renewed within {@linkcode INTEREST_TTL_MS} expires (a crashed node). A starting node
 * asks the others to announce (`tm.interest.hello`). {@linkcode withEventInterest} wraps a
 * transport so that an event is published only when an announced subject matches it.
 *
 * A new stream subscription sees events once its announcement has reached the publishing
 * nodes — within milliseconds; a live stream has no replay, so nothing stored is lost.
 * @module
 */
import type { Message, Subscription, Transport } from "../transport/port.ts";
import type { Clock, TimerId } from "../runtime/clock.ts";
import { subjects } from "../transport/subjects.ts";

/** How often a node repeats its announcement (ms). */
export const INTEREST_EVERY_MS = 5_000;
/** An announcement not repeated within this time is dropped (ms). */
export const INTEREST_TTL_MS = 3 * INTEREST_EVERY_MS;

interface Announcement {
  node: string;
  subjects: string[];
}

/** Which event subjects are wanted: exact ones and the `*` forms, matched in O(1). */
class Wanted {
  readonly exact = new Set<string>();
  readonly anyId = new Set<string>(); // tm.evt.{type}.*
  readonly anyType = new Set<string>(); // tm.evt.*.{id}
  all = false; // tm.evt.*.*

  constructor(wanted: Iterable<string>) {
    for (const s of wanted) {
      const [type, id] = s.slice(subjects.eventPrefix.length).split(".");
      if (type === "*" && id === "*") this.all = true;
      else if (id === "*") this.anyId.add(type);
      else if (type === "*") this.anyType.add(id);
      else this.exact.add(s);
    }
  }

  matches(subject: string): boolean {
    if (this.all || this.exact.has(subject)) return true;
    const rest = subject.slice(subjects.eventPrefix.length);
    const dot = rest.indexOf(".");
    return this.anyId.has(rest.slice(0, dot)) || this.anyType.has(rest.slice(dot + 1));
  }
}

/** Options of {@linkcode withEventInterest}. */
export interface EventInterestOptions {
  nodeId: string;
  clock: Clock;
}

/** A transport whose event publishes are gated by the cluster's announced interest. */
export interface InterestTransport extends Transport {
  /** Event subjects wanted anywhere in the cluster right now (for tests and metrics). */
  wanted(): number;
}

/**
 * Wrap `inner`: subscriptions to event subjects are announced to every node, and events are
 * published only when some node wants them. Everything else passes through unchanged.
 */
export function withEventInterest(inner: Transport, o: EventInterestOptions): InterestTransport {
  const local = new Map<string, number>(); // subject -> local subscriptions
  const remote = new Map<string, { subjects: string[]; expires: number }>();
  let view = new Wanted([]);
  const rebuild = () => {
    const all: string[] = [...local.keys()];
    const now = o.clock.now();
    for (const [node, r] of remote) {
      if (r.expires < now) remote.delete(node);
      else all.push(...r.subjects);
    }
    view = new Wanted(all);
  };
  const announce = () => {
    inner.publish(
      subjects.interest,
      { node: o.nodeId, subjects: [...local.keys()] } satisfies Announcement,
    );
  };
  const subs: Subscription[] = [
    inner.subscribe(subjects.interest, (m: Message) => {
      const a = m.data as Announcement;
      if (a.node === o.nodeId) return;
      if (a.subjects.length === 0) remote.delete(a.node);
      else remote.set(a.node, { subjects: a.subjects, expires: o.clock.now() + INTEREST_TTL_MS });
      rebuild();
    }),
    inner.subscribe(subjects.interestHello, () => local.size > 0 && announce()),
  ];
  const timer: TimerId = o.clock.setInterval(() => {
    if (local.size > 0) announce();
    rebuild(); // expire silent nodes
  }, INTEREST_EVERY_MS);
  inner.publish(subjects.interestHello, { node: o.nodeId });

  return {
    wanted: () => view.exact.size + view.anyId.size + view.anyType.size + (view.all ? 1 : 0),
    publish(subject, data) {
      if (subject.startsWith(subjects.eventPrefix) && !view.matches(subject)) return;
      inner.publish(subject, data);
    },
    subscribe(subject, cb) {
      const sub = inner.subscribe(subject, cb);
      if (!subject.startsWith(subjects.eventPrefix)) return sub;
      local.set(subject, (local.get(subject) ?? 0) + 1);
      rebuild();
      announce();
      let done = false;
      const unsubscribe = () => {
        if (done) return;
        done = true;
        sub.unsubscribe();
        const n = (local.get(subject) ?? 1) - 1;
        if (n > 0) local.set(subject, n);
        else local.delete(subject);
        rebuild();
        announce();
      };
      return { unsubscribe, [Symbol.dispose]: unsubscribe };
    },
    request: (subject, data, opts) => inner.request(subject, data, opts),
    gather: (subject, data, opts) => inner.gather(subject, data, opts),
    async [Symbol.asyncDispose]() {
      o.clock.clear(timer);
      for (const s of subs) s.unsubscribe();
      await inner[Symbol.asyncDispose]();
    },
  };
}
