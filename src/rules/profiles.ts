/**
 * The node's device profiles: loaded from the {@linkcode ProfileStore} at start, compiled once,
 * changed over HTTP (validated, stored, then applied to live twins), reloaded when another
 * node changed one (cluster). A twin uses the profile named by its `profile` attribute, else
 * by its `type`.
 * @module
 */
import { parseProfile } from "../../actors/rules/profile.ts";
import type { CompiledProfile } from "../../actors/rules/compile.ts";
import type { TwinState } from "../../actors/twin.ts";
import { BadRequestError } from "../errors.ts";
import type { Logger } from "../obs/log.ts";
import type {
  ProfileService,
  ProfileStore,
  ProfileView,
  RuleFaultStatus,
  StoredProfile,
} from "./service.ts";

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const EMPTY = (() => {
  const r = parseProfile({ rules: [] });
  if (!r.ok) throw new Error("the empty profile does not compile");
  return r.profile;
})();

/** The profile name a twin asks for: its `profile` attribute, else its `type`. */
export function profileName(state: TwinState): string | undefined {
  const a = state.attributes;
  for (const v of [a.profile, a.type]) if (typeof v === "string" && v !== "") return v;
  return undefined;
}

/** Options of {@linkcode Profiles}. */
export interface ProfilesOptions {
  store: ProfileStore;
  logger: Logger;
  clock: { now(): number };
  /** Called after a profile changed here or was reloaded (apply it to live twins). */
  changed?(name: string): void;
  /** Called after a change made here (tell the other nodes). */
  announce?(name: string): void;
}

/** Loaded profiles, and the {@linkcode ProfileService} over them. */
export class Profiles implements ProfileService {
  readonly #by = new Map<string, { stored: StoredProfile; compiled: CompiledProfile }>();
  /** Profile -> rule -> faults seen on this node since the profile last changed. */
  readonly #faults = new Map<string, Map<string, RuleFaultStatus>>();
  constructor(readonly o: ProfilesOptions) {}

  /** Load every stored profile; one that no longer validates is logged and skipped. */
  async load(): Promise<number> {
    for (const p of await this.o.store.all()) this.#cache(p);
    return this.#by.size;
  }

  /** Profiles loaded. */
  get size(): number {
    return this.#by.size;
  }

  #cache(p: StoredProfile): boolean {
    const r = parseProfile(p.profile);
    this.#faults.delete(p.name);
    if (!r.ok) {
      this.o.logger.error("stored profile does not validate; not applied", {
        profile: p.name,
        issue: `${r.issues[0]?.path}: ${r.issues[0]?.message}`,
      });
      this.#by.delete(p.name);
      return false;
    }
    this.#by.set(p.name, { stored: p, compiled: r.profile });
    return true;
  }

  /**
   * The compiled profile for a twin: the one it names; the empty profile when it names none
   * (or an unknown one) but still has rule state, so that its alarms clear; else undefined.
   */
  resolve(state: TwinState, hasRuleState: boolean): CompiledProfile | undefined {
    const name = profileName(state);
    const p = name === undefined ? undefined : this.#by.get(name);
    return p?.compiled ?? (hasRuleState ? EMPTY : undefined);
  }

  /** Re-read one profile from the store (another node changed it). */
  async reload(name: string): Promise<void> {
    const p = await this.o.store.get(name);
    if (p) this.#cache(p);
    else this.#by.delete(name);
    this.o.changed?.(name);
  }

  #view(e: { stored: StoredProfile; compiled: CompiledProfile }): ProfileView {
    const rules = [...(this.#faults.get(e.stored.name)?.values() ?? [])];
    return { ...e.stored, hash: e.compiled.hash, status: { rules } };
  }

  /** A rule of the profile `state` uses failed (shown in the profile's status). */
  faulted(state: TwinState, rule: string, message: string): void {
    const name = profileName(state);
    if (name === undefined || !this.#by.has(name)) return;
    let m = this.#faults.get(name);
    if (!m) this.#faults.set(name, m = new Map());
    const f = m.get(rule);
    const at = this.o.clock.now();
    if (f) Object.assign(f, { faults: f.faults + 1, lastFault: message, at });
    else m.set(rule, { rule, faults: 1, lastFault: message, at });
  }

  list(): Promise<ProfileView[]> {
    return Promise.resolve(
      [...this.#by.values()].map((e) => this.#view(e)).sort((a, b) =>
        a.name < b.name ? -1 : a.name > b.name ? 1 : 0
      ),
    );
  }

  get(name: string): Promise<ProfileView | null> {
    const e = this.#by.get(name);
    return Promise.resolve(e ? this.#view(e) : null);
  }

  async put(name: string, body: unknown): Promise<{ created: boolean; profile: ProfileView }> {
    if (!NAME.test(name)) {
      throw new BadRequestError(`Profile name "${name}" must be 1-64 of A-Z a-z 0-9 _ - .`);
    }
    const r = parseProfile(body);
    if (!r.ok) {
      const first = r.issues[0];
      const more = r.issues.length > 1 ? ` (and ${r.issues.length - 1} more)` : "";
      const where = first.path === "" ? "profile" : first.path;
      throw new BadRequestError(
        `Invalid profile: ${where}: ${first.message}${more}`,
        "profile_invalid",
      );
    }
    const created = !this.#by.has(name);
    const stored: StoredProfile = {
      name,
      profile: r.profile.source,
      updatedAt: this.o.clock.now(),
    };
    await this.o.store.put(stored);
    this.#by.set(name, { stored, compiled: r.profile });
    this.#faults.delete(name);
    this.o.logger.info(created ? "profile created" : "profile replaced", {
      profile: name,
      rules: r.profile.rules.length,
    });
    this.o.changed?.(name);
    this.o.announce?.(name);
    return { created, profile: this.#view(this.#by.get(name)!) };
  }

  async delete(name: string): Promise<boolean> {
    const existed = await this.o.store.delete(name);
    const had = this.#by.delete(name);
    this.#faults.delete(name);
    if (existed || had) {
      this.o.logger.info("profile deleted", { profile: name });
      this.o.changed?.(name);
      this.o.announce?.(name);
    }
    return existed || had;
  }
}

/**
 * The node's profiles, wired the same way in both modes: the loaded count goes to the
 * `twinmill_profiles` gauge and every change is applied to the host's twins.
 */
export function nodeProfiles(o: {
  store: ProfileStore;
  logger: Logger;
  metrics: { profilesLoaded: { set(n: number): void } };
  /** The host (read when a profile changes, so it may be created after the profiles). */
  host(): { reprofile(matches: (s: TwinState) => boolean): Promise<number> };
  announce?(name: string): void;
}): Profiles {
  const profiles: Profiles = new Profiles({
    store: o.store,
    logger: o.logger,
    clock: { now: () => Date.now() },
    changed: (name) => {
      o.metrics.profilesLoaded.set(profiles.size);
      o.host().reprofile((s) => profileName(s) === name).catch((err) =>
        o.logger.warn("cannot apply the profile change to stored twins", { profile: name, err })
      );
    },
    announce: o.announce,
  });
  return profiles;
}
