/**
 * Who is connected to one broker: the live connections, who each authenticated client is
 * (its twin and credential, or the provisioning key it logged in with), each twin's latest
 * session (diagnostics, `devicesConnected`), and which identity owns a client id — a restricted
 * client may not take over another twin's live connection or stored persistent session.
 * @module
 */
import type { Client } from "aedes";
import type { ConnectionInfo } from "../../ports/connector.ts";

/** What an authenticated device is: its twin and the credential it proved it with. */
export interface Identity {
  twin: string;
  /** A credential id, or `cert:{serial}` for a client certificate. */
  credential: string;
}

/** Persistent-session owners remembered; the oldest is forgotten first. */
const MAX_SESSION_OWNERS = 100_000;

/** Answers whether a client listens for a twin's commands (see `commands.ts`). */
export interface CommandListening {
  listens(twin: string, client: Client): boolean;
}

/** The connections and sessions of one broker. */
export class Sessions {
  /** Open connections. */
  readonly live = new Set<Client>();
  readonly #identities = new WeakMap<Client, Identity>();
  /** Provisioning keys of clients logged in as `$provision` (only in memory, never logged). */
  readonly #provisioners = new WeakMap<Client, string>();
  /**
   * The twin each client last spoke for, every twin it spoke for (a gateway speaks for many),
   * and each twin's latest session.
   */
  readonly #twinOf = new WeakMap<Client, string>();
  readonly #twinsOf = new WeakMap<Client, Set<string>>();
  readonly #sessions = new Map<string, { client: Client; since: number }>();
  /**
   * Client id -> the twin whose persistent (clean=false) session it is: another identity may
   * not connect with it while the session is stored (aedes would hand it that session). In
   * memory, like aedes's sessions; bounded, the oldest forgotten first.
   */
  readonly #owners = new Map<string, string>();

  /** The authenticated identity of a client (device authentication or mTLS), if any. */
  identity(c: Client): Identity | undefined {
    return this.#identities.get(c);
  }

  /** True when the client authenticated as a device (it is held to its twin's topics). */
  hasIdentity(c: Client): boolean {
    return this.#identities.has(c);
  }

  /** The provisioning key of a client logged in as `$provision`, if it is one. */
  provisioningKey(c: Client): string | undefined {
    return this.#provisioners.get(c);
  }

  /** True when the client logged in to provision. */
  isProvisioner(c: Client): boolean {
    return this.#provisioners.has(c);
  }

  /** Admit a client logged in with a provisioning key. */
  admitProvisioner(c: Client, key: string): void {
    this.#provisioners.set(c, key);
  }

  /**
   * Admit an authenticated client as `me`, unless its client id is another identity's: held
   * by a live connection of another twin, or a persistent session stored for another twin —
   * except the twin's own id, which it always gets. False when refused (nothing recorded).
   */
  admit(c: Client, me: Identity): boolean {
    // deno-lint-ignore no-explicit-any
    const holder = (c as any).broker?.clients?.[c.id] as Client | undefined;
    const theirs = holder && holder !== c ? this.#identities.get(holder) : undefined;
    // a persistent session stored for another twin is theirs too, while they are offline
    const stored = this.#owners.get(c.id);
    const heldByOther = (holder && holder !== c && theirs?.twin !== me.twin) ||
      (stored !== undefined && stored !== me.twin);
    if (heldByOther && c.id !== me.twin) return false;
    this.#identities.set(c, me);
    // deno-lint-ignore no-explicit-any
    if ((c as any).clean === false) this.#rememberOwner(c.id, me.twin);
    else if (stored !== undefined && c.id === me.twin) this.#owners.delete(c.id);
    return true;
  }

  #rememberOwner(clientId: string, twin: string): void {
    this.#owners.delete(clientId);
    this.#owners.set(clientId, twin);
    if (this.#owners.size > MAX_SESSION_OWNERS) {
      this.#owners.delete(this.#owners.keys().next().value!);
    }
  }

  /** A connection is up (after CONNACK was decided). */
  connected(c: Client): void {
    this.live.add(c);
    const me = this.#identities.get(c);
    if (me) this.seen(c, me.twin);
  }

  /** A connection is gone: its twins' sessions end with it. */
  disconnected(c: Client): void {
    this.live.delete(c);
    for (const twin of this.#twinsOf.get(c) ?? []) {
      if (this.#sessions.get(twin)?.client === c) this.#sessions.delete(twin);
    }
    this.#twinsOf.delete(c);
  }

  /** The client spoke for (or listens for) `twin`: it is that twin's latest session. */
  seen(c: Client, twin: string): void {
    if (this.#twinOf.get(c) === twin && this.#sessions.get(twin)?.client === c) return;
    this.#twinOf.set(c, twin);
    let all = this.#twinsOf.get(c);
    if (!all) this.#twinsOf.set(c, all = new Set());
    all.add(twin);
    if (this.#sessions.get(twin)?.client !== c) {
      this.#sessions.set(twin, { client: c, since: Date.now() });
    }
  }

  /** Twins with a session. */
  get devices(): number {
    return this.#sessions.size;
  }

  /** The twin's live session, if any (diagnostics). */
  connection(twin: string, commands: CommandListening): ConnectionInfo | null {
    const s = this.#sessions.get(twin);
    if (!s) return null;
    // deno-lint-ignore no-explicit-any
    const c = s.client as any;
    const version = c.version === 5 ? "5" : c.version === 3 ? "3.1" : "3.1.1";
    return {
      clientId: String(c.id),
      protocol: `${c.conn?.encrypted ? "mqtts" : "mqtt"} ${version}`,
      connectedAt: s.since,
      commands: commands.listens(twin, s.client),
    };
  }

  /** Close the authenticated connections whose identity matches; how many. */
  drop(match: (me: Identity) => boolean): number {
    let n = 0;
    for (const c of this.live) {
      const me = this.#identities.get(c);
      if (me && match(me)) {
        c.close();
        n++;
      }
    }
    return n;
  }
}
