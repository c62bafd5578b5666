/**
 * Remote configuration: config templates select twins by attributes and merge a desired-state
 * fragment into every selected twin — the existing ones when the template is stored, new ones
 * when they are provisioned ({@linkcode withConfigs}). The status of a template counts the
 * targeted twins whose device reports it applied, failed, or not yet (pending).
 *
 * Templates are documents of kind `configs` (Deno KV on one node, JetStream KV in a cluster),
 * written with compare-and-set. Removing a template does not roll back any desired state.
 * @module
 */
import { deepEqual, isObject, type JsonObject, mergePatch } from "../../actors/json.ts";
import type { TwinState } from "../../actors/twin.ts";
import type { Logger } from "../obs/log.ts";
import type { DocStore, DocStores } from "../persistence/doc_store.ts";
import type { TwinService } from "../runtime/twin_service.ts";
import {
  ConfigConflictError,
  ConfigNotFoundError,
  ConfigVersionConflictError,
  TooManyConfigsError,
} from "./config_errors.ts";
import {
  checkConfigName,
  configStateOf,
  type ConfigTemplate,
  desiredPatch,
  parseConfig,
  selects,
  STATUS_KEY,
} from "./config_match.ts";

/** Most config templates a system holds. */
const MAX_CONFIGS = 1000;
/** Most ids (and errors) a status or an apply result lists as examples. */
const SAMPLE = 20;
/** Twins read per page while applying or counting. */
const PAGE = 500;

/** What applying a template to the twins it selects did. */
export interface ApplyResult {
  /** Selected twins whose desired state now holds the fragment. */
  twins: number;
  /** Of those, the ones that needed a patch (the others held it already). */
  changed: number;
  /** Selected twins whose patch failed (retry with another PUT of the same template). */
  failed: number;
  /** The first {@linkcode SAMPLE} failures. */
  errors: Array<{ id: string; error: string }>;
}

/** How the targeted twins stand with a template. */
export interface ConfigStatus {
  name: string;
  version: number;
  targeted: number;
  applied: number;
  pending: number;
  failed: number;
  sample: { pending: string[]; failed: Array<{ id: string; error: string }> };
}

/** Options of {@linkcode ConfigService}. */
export interface ConfigServiceOptions {
  store: DocStore<ConfigTemplate>;
  /** The twins, unwrapped (not {@linkcode withConfigs}). */
  twins: TwinService;
  logger: Logger;
  now?: () => number;
  /** Patches in flight while applying (default 16). */
  concurrency?: number;
  /** Log progress every this many twins (default 1000). */
  progressEvery?: number;
}

/** Runs `fn` over `items` with at most `n` at a time. */
async function pool<T>(items: T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err)).slice(0, 500);

/**
 * Config templates: store, apply, count.
 *
 * @example
 * ```ts
 * const configs = await ConfigService.open(docs, host, logger);
 * const { config, applied } = await configs.put("press-defaults", {
 *   selector: { type: "press" },
 *   desired: { sampleRate: 5 },
 * });
 * const status = await configs.status("press-defaults"); // {targeted, applied, pending, failed}
 * ```
 */
export class ConfigService {
  readonly #o: Required<ConfigServiceOptions>;

  constructor(o: ConfigServiceOptions) {
    this.#o = { now: Date.now, concurrency: 16, progressEvery: 1000, ...o };
  }

  /** A service over the `configs` documents of `docs`. */
  static async open(docs: DocStores, twins: TwinService, logger: Logger): Promise<ConfigService> {
    return new ConfigService({ store: await docs.open<ConfigTemplate>("configs"), twins, logger });
  }

  async get(name: string): Promise<ConfigTemplate | null> {
    checkConfigName(name);
    return (await this.#o.store.get(name))?.value ?? null;
  }

  /** Every template, in name order (at most {@linkcode MAX_CONFIGS}). */
  async list(): Promise<ConfigTemplate[]> {
    return (await this.#o.store.list()).map((d) => d.value);
  }

  /**
   * Create or replace a template (only at version `ifMatch`, if given), then apply it to every
   * twin it selects. The version goes up only when the selector or the fragment changed; a PUT
   * of the same template applies it again (to twins that lost or never got it).
   */
  async put(name: string, body: unknown, ifMatch?: number): Promise<{
    created: boolean;
    config: ConfigTemplate;
    applied: ApplyResult;
  }> {
    checkConfigName(name);
    const input = parseConfig(body);
    for (let attempt = 0; attempt < 5; attempt++) {
      const doc = await this.#o.store.get(name);
      const old = doc?.value;
      if (ifMatch !== undefined && old?.version !== ifMatch) {
        throw new ConfigVersionConflictError(name, ifMatch, old?.version ?? null);
      }
      if (!old && (await this.#o.store.list()).length >= MAX_CONFIGS) {
        throw new TooManyConfigsError(MAX_CONFIGS);
      }
      const same = old && deepEqual(old.selector, input.selector) &&
        deepEqual(old.desired, input.desired);
      const now = this.#o.now();
      const config: ConfigTemplate = same ? old : {
        name,
        selector: input.selector,
        desired: input.desired,
        version: (old?.version ?? 0) + 1,
        createdAt: old?.createdAt ?? now,
        updatedAt: now,
      };
      if (!same && !(await this.#o.store.put(name, config, doc?.version ?? null))) continue;
      if (!same) {
        this.#o.logger.info("config stored", {
          config: name,
          version: config.version,
          selector: config.selector,
        });
      }
      return { created: !old, config, applied: await this.apply(config) };
    }
    throw new ConfigConflictError(name);
  }

  /** True if it existed. The desired state it applied stays as it is. */
  async delete(name: string): Promise<boolean> {
    checkConfigName(name);
    const existed = await this.#o.store.delete(name);
    if (existed) this.#o.logger.info("config deleted", { config: name });
    return existed;
  }

  /** Walks the twins `c` selects, page by page. */
  async *#targets(c: ConfigTemplate): AsyncIterable<TwinState[]> {
    let after: string | undefined;
    do {
      const page = await this.#o.twins.list(after, PAGE, c.selector);
      yield page.items.filter((t) => selects(c.selector, t.attributes));
      after = page.next;
    } while (after !== undefined);
  }

  /** Merge the template into the desired state of every twin it selects that lacks it. */
  async apply(c: ConfigTemplate): Promise<ApplyResult> {
    const log = this.#o.logger;
    const patch = desiredPatch(c);
    const r: ApplyResult = { twins: 0, changed: 0, failed: 0, errors: [] };
    const started = performance.now();
    let seen = 0;
    for await (const page of this.#targets(c)) {
      await pool(page, this.#o.concurrency, async (t) => {
        if (++seen % this.#o.progressEvery === 0) {
          log.info("applying config", { config: c.name, version: c.version, twins: seen });
        }
        if (deepEqual(mergePatch(t.desired, patch), t.desired)) {
          r.twins++;
          return;
        }
        try {
          await this.#o.twins.patchDesired(t.id, patch);
          r.twins++;
          r.changed++;
        } catch (err) {
          r.failed++;
          if (r.errors.length < SAMPLE) r.errors.push({ id: t.id, error: message(err) });
        }
      });
    }
    log.info("config applied", {
      config: c.name,
      version: c.version,
      twins: r.twins,
      changed: r.changed,
      failed: r.failed,
      ms: Math.round(performance.now() - started),
    });
    if (r.failed > 0) log.warn("config not applied to some twins", { errors: r.errors });
    return r;
  }

  /**
   * Count the targeted twins by state (walks them all: some seconds per 100 000 twins); with
   * `visible`, only the twins it keeps (a caller's site scope) are counted and named.
   */
  async status(name: string, visible?: (t: TwinState) => boolean): Promise<ConfigStatus> {
    const c = await this.get(name);
    if (!c) throw new ConfigNotFoundError(name);
    const s: ConfigStatus = {
      name,
      version: c.version,
      targeted: 0,
      applied: 0,
      pending: 0,
      failed: 0,
      sample: { pending: [], failed: [] },
    };
    for await (const page of this.#targets(c)) {
      for (const t of page) {
        if (visible && !visible(t)) continue;
        s.targeted++;
        const st = configStateOf(c, t);
        s[st.state]++;
        if (st.state === "pending" && s.sample.pending.length < SAMPLE) s.sample.pending.push(t.id);
        if (st.state === "failed" && s.sample.failed.length < SAMPLE) {
          s.sample.failed.push({ id: t.id, error: st.error });
        }
      }
    }
    return s;
  }

  /** The templates whose selector matches `attributes`, in name order. */
  async matching(attributes: JsonObject): Promise<ConfigTemplate[]> {
    return (await this.list()).filter((c) => selects(c.selector, attributes));
  }

  /**
   * Apply to a twin whose attributes were just written the templates that select it, in name
   * order, except those whose current version it got already (its desired state holds their
   * version marker): re-provisioning a twin does not undo what an operator changed since.
   * Failures are logged, not thrown: the attributes are stored already, and the template's
   * status shows the twin as pending.
   */
  async onAttributes(twin: TwinState): Promise<void> {
    let desired = twin.desired;
    for (const c of await this.matching(twin.attributes)) {
      const marks = desired[STATUS_KEY];
      const mark = isObject(marks) ? marks[c.name] : undefined;
      if (isObject(mark) && mark.version === c.version) continue;
      try {
        desired = (await this.#o.twins.patchDesired(twin.id, desiredPatch(c))).desired;
      } catch (err) {
        this.#o.logger.warn("cannot apply config to a provisioned twin", {
          config: c.name,
          twin: twin.id,
          err: message(err),
        });
      }
    }
  }
}
