import { findBinary } from "./binaries.ts";
import { freePorts } from "./free_port.ts";
import { httpText, makeTempDir, removeDir, retryOnExit, ServerProcess } from "./process.ts";

/** A running nats-server on 127.0.0.1. */
export interface NatsServer extends AsyncDisposable {
  /** Client port. */
  port: number;
  /** `nats://127.0.0.1:<port>` */
  url: string;
  /** Monitoring endpoint, `http://127.0.0.1:<monitor port>` (`/healthz`, `/varz`, `/jsz`). */
  monitorUrl: string;
  /** Its MQTT listener's port (MQTT 3.1.1 only), with `startNats({ mqtt: true })`. */
  mqttPort?: number;
  /** Stops the server (SIGTERM, then SIGKILL after 5 s); its JetStream data stays. */
  stop(): Promise<void>;
  /**
   * Starts it (again, or for the first time after `startNats({ deferred: true })`) with the
   * same ports and data; resolves when `/healthz` is ok.
   */
  start(): Promise<void>;
}

/** Options of {@linkcode startNats}. */
export interface StartNatsOptions {
  /** Enable JetStream (stored in the server's temp dir). */
  jetstream?: boolean;
  /**
   * Only reserve free ports and write the config: the server is not started until `start()`
   * (to start a node before its NATS server). The ports were free when reserved; nothing
   * holds them until then.
   */
  deferred?: boolean;
  /** Also listen for MQTT (nats-server speaks 3.1.1 only; needs JetStream, turned on with it). */
  mqtt?: boolean;
  /**
   * More nats-server configuration, appended to the generated file as it is: users
   * (`authorization { ... }`), `tls { ... }`, accounts, permissions. The monitoring port stays
   * plain HTTP, so readiness is checked the same way.
   */
  extra?: string;
}

/** One member of a {@linkcode NatsCluster}. */
export interface NatsClusterMember {
  /** Server name, `n1`..`nN`. */
  name: string;
  /** Client port. */
  port: number;
  /** `nats://127.0.0.1:<port>` */
  url: string;
  /** Monitoring endpoint, `http://127.0.0.1:<monitor port>`. */
  monitorUrl: string;
  /** Its route port (`cluster { listen }`). */
  clusterPort: number;
  /** Process id of the running server (for CPU readings), or 0 while stopped. */
  readonly pid: number;
  /** Its MQTT listener's port (MQTT 3.1.1 only), with `startNatsCluster(n, { mqtt: true })`. */
  mqttPort?: number;
  /** Stops this member (SIGTERM, then SIGKILL after 5 s); its JetStream data stays. */
  stop(): Promise<void>;
  /**
   * Starts it again with the same ports and data; resolves when `/healthz` is ok, or with
   * `{ until: "serving" }` once it serves clients and has found the JetStream meta leader (its
   * streams and consumers may still be catching up).
   */
  start(opts?: { until?: "healthy" | "serving" }): Promise<void>;
}

/** A running nats-server cluster with JetStream. */
export interface NatsCluster extends AsyncDisposable {
  /** The members, in name order. */
  servers: NatsClusterMember[];
  /** Client URLs of all members, comma separated. */
  urls: string;
}

interface MemberPorts {
  name: string;
  port: number;
  monitor: number;
  cluster?: number;
  mqtt?: number;
}

/** Options of {@linkcode startNatsCluster}. */
export interface StartNatsClusterOptions {
  /** Every member also listens for MQTT (3.1.1; its `mqttPort`). */
  mqtt?: boolean;
  /**
   * More configuration of every member, appended as it is: accounts and users, the client
   * `tls { ... }` block. The monitoring port stays plain HTTP.
   */
  extra?: string;
  /** Route security: every route logs in as this user; with `tls`, TLS both ways. */
  routes?: RouteSecurity;
}

/** How the members of a cluster authenticate their routes to each other. */
export interface RouteSecurity {
  user: string;
  password: string;
  /**
   * PEM files: the members' certificate (for `127.0.0.1`, with both serverAuth and
   * clientAuth: each member dials the others) and the CA that must have signed a route's
   * certificate (`verify: true`).
   */
  tls?: { certFile: string; keyFile: string; caFile: string };
}

/** The `cluster {}` lines of a member: its routes, their login and TLS. */
function clusterLines(me: MemberPorts, peers: MemberPorts[], sec?: RouteSecurity): string[] {
  const login = sec ? `${sec.user}:${sec.password}@` : "";
  const routes = peers.filter((p) => p !== me).map((p) =>
    `"nats-route://${login}127.0.0.1:${p.cluster}"`
  );
  const lines = [
    "cluster {",
    '  name: "twinmill"',
    `  listen: "127.0.0.1:${me.cluster}"`,
    `  routes: [${routes.join(", ")}]`,
  ];
  if (sec) {
    lines.push(`  authorization { user: "${sec.user}", password: "${sec.password}" }`);
  }
  if (sec?.tls) {
    lines.push(
      `  tls { cert_file: "${sec.tls.certFile}", key_file: "${sec.tls.keyFile}",` +
        ` ca_file: "${sec.tls.caFile}", verify: true }`,
    );
  }
  return [...lines, "}"];
}

function config(
  dir: string,
  me: MemberPorts,
  jetstream: boolean,
  peers: MemberPorts[],
  routes?: RouteSecurity,
): string {
  const lines = [
    `server_name: "${me.name}"`,
    `listen: "127.0.0.1:${me.port}"`,
    `http: "127.0.0.1:${me.monitor}"`,
  ];
  if (jetstream) {
    lines.push(
      "jetstream {",
      `  store_dir: "${dir}/${me.name}"`,
      "  max_memory_store: 268435456",
      "  max_file_store: 1073741824",
      "}",
    );
  }
  if (me.mqtt !== undefined) lines.push(`mqtt { listen: "127.0.0.1:${me.mqtt}" }`);
  if (me.cluster !== undefined) lines.push(...clusterLines(me, peers, routes));
  return lines.join("\n") + "\n";
}

async function metaLeader(monitorUrl: string): Promise<string | undefined> {
  const jsz = JSON.parse(await httpText(`${monitorUrl}/jsz`));
  return jsz.meta_cluster?.leader || undefined;
}

/** Keeps a member's process and can (re)start it with the same config. */
class Member {
  proc?: ServerProcess;
  constructor(
    readonly bin: string,
    readonly ports: MemberPorts,
    readonly conf: string,
  ) {}

  get monitorUrl(): string {
    return `http://127.0.0.1:${this.ports.monitor}`;
  }

  spawn(): ServerProcess {
    if (this.proc && !this.proc.exited) return this.proc;
    this.proc = ServerProcess.spawn({
      name: `nats-server ${this.ports.name}`,
      cmd: this.bin,
      args: ["-c", this.conf],
    });
    return this.proc;
  }

  async start(opts: { until?: "healthy" | "serving" } = {}): Promise<void> {
    const serving = opts.until === "serving";
    // a restarted member reports healthy only once it has caught up every stream, which
    // under traffic on 2 busy cores has taken over 20 s
    let last = "";
    await this.spawn().waitReady(
      async () => {
        const res = await fetch(
          `${this.monitorUrl}/healthz${serving ? "?js-server-only=true" : ""}`,
        );
        last = await res.text();
        return res.ok && JSON.parse(last).status === "ok";
      },
      serving ? "/healthz?js-server-only=true is ok" : "/healthz is ok",
      60_000,
    ).catch((err) => {
      throw new Error(`${err.message}; last /healthz: ${last.slice(0, 300)}`);
    });
  }

  async stop(): Promise<void> {
    await this.proc?.stop();
  }
}

/**
 * Starts one nats-server on free ports of 127.0.0.1 (with JetStream, stored in a
 * temp dir, when `opts.jetstream`) and resolves once its `/healthz` answers ok. With
 * `opts.deferred` it resolves at once with the server's ports and URL, and the server starts
 * on `start()`.
 *
 * @example
 * ```ts
 * await using nats = await startNats({ jetstream: true });
 * await nats.stop(); // clients see it go away
 * await nats.start(); // same port, same JetStream data
 * ```
 */
export function startNats(opts: StartNatsOptions = {}): Promise<NatsServer> {
  const bin = findBinary("nats-server", "nats-server");
  const reserve = async () => {
    const dir = await makeTempDir("nats");
    try {
      const [port, monitor, mqtt] = await freePorts(3);
      const ports = { name: "n1", port, monitor, ...(opts.mqtt ? { mqtt } : {}) };
      const conf = `${dir}/n1.conf`;
      const jetstream = (opts.jetstream || opts.mqtt) ?? false;
      await Deno.writeTextFile(conf, config(dir, ports, jetstream, []) + (opts.extra ?? ""));
      const member = new Member(bin, ports, conf);
      const server: NatsServer = {
        port,
        ...(opts.mqtt ? { mqttPort: mqtt } : {}),
        url: `nats://127.0.0.1:${port}`,
        monitorUrl: member.monitorUrl,
        stop: () => member.stop(),
        start: () => member.start(),
        async [Symbol.asyncDispose]() {
          await member.stop();
          await removeDir(dir);
        },
      };
      return server;
    } catch (err) {
      await removeDir(dir);
      throw err;
    }
  };
  if (opts.deferred) return reserve();
  return retryOnExit(async () => {
    const server = await reserve();
    try {
      await server.start();
      return server;
    } catch (err) {
      await server[Symbol.asyncDispose]();
      throw err;
    }
  });
}

/**
 * Starts `n` nats-servers (`n1`..`nN`) clustered over routes on free ports, all with
 * JetStream, and resolves once every member's `/healthz` is ok and every member's
 * `/jsz` names the same JetStream meta leader.
 *
 * @example
 * ```ts
 * await using cluster = await startNatsCluster(3);
 * await cluster.servers[0].stop(); // leader election among n2, n3
 * ```
 * With `opts.mqtt` every member also listens for MQTT (3.1.1; its `mqttPort`); `opts.extra`
 * and `opts.routes` secure it (users, client TLS; route login and TLS).
 */
export function startNatsCluster(
  n = 3,
  opts: StartNatsClusterOptions = {},
): Promise<NatsCluster> {
  const bin = findBinary("nats-server", "nats-server");
  return retryOnExit(async () => {
    const dir = await makeTempDir("nats-cluster");
    const members: Member[] = [];
    const stopAll = () => Promise.all(members.map((m) => m.stop()));
    try {
      const per = opts.mqtt ? 4 : 3;
      const ports = await freePorts(per * n);
      const all: MemberPorts[] = Array.from({ length: n }, (_, i) => ({
        name: `n${i + 1}`,
        port: ports[per * i],
        monitor: ports[per * i + 1],
        cluster: ports[per * i + 2],
        ...(opts.mqtt ? { mqtt: ports[per * i + 3] } : {}),
      }));
      for (const p of all) {
        const conf = `${dir}/${p.name}.conf`;
        await Deno.writeTextFile(conf, config(dir, p, true, all, opts.routes) + (opts.extra ?? ""));
        members.push(new Member(bin, p, conf));
      }
      for (const m of members) m.spawn();
      const starts = members.map((m) => m.start());
      try {
        await Promise.all(starts);
      } catch (err) {
        await stopAll(); // the others would wait for their deadline otherwise
        await Promise.allSettled(starts);
        throw err;
      }
      await members[0].proc!.waitReady(async () => {
        const leaders = await Promise.all(members.map((m) => metaLeader(m.monitorUrl)));
        return leaders[0] !== undefined && leaders.every((l) => l === leaders[0]);
      }, "all members agree on a JetStream meta leader");
      return {
        servers: members.map((m) => ({
          name: m.ports.name,
          port: m.ports.port,
          url: `nats://127.0.0.1:${m.ports.port}`,
          monitorUrl: m.monitorUrl,
          clusterPort: m.ports.cluster!,
          ...(m.ports.mqtt !== undefined ? { mqttPort: m.ports.mqtt } : {}),
          get pid() {
            return m.proc && !m.proc.exited ? m.proc.pid : 0;
          },
          stop: () => m.stop(),
          start: (opts) => m.start(opts),
        })),
        urls: all.map((p) => `nats://127.0.0.1:${p.port}`).join(","),
        async [Symbol.asyncDispose]() {
          await stopAll();
          await removeDir(dir);
        },
      };
    } catch (err) {
      await stopAll();
      await removeDir(dir);
      throw err;
    }
  });
}
