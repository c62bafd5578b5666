/**
 * The compose cluster (`infra/compose.yaml`) and the files it mounts, checked without a
 * container engine: `docker-compose config` validates it (and refuses it without the secrets),
 * the nodes' environment is made of contract variables and loads into a cluster-mode config,
 * and the load balancer, Prometheus, NATS and Grafana files agree with it.
 */
import assert from "node:assert/strict";
import { loadConfig } from "../../src/config/config.ts";
import { findBinary, REPO_ROOT } from "../harness/mod.ts";
import { configVariables, envOf, readDockerfile } from "./dockerfile.ts";
import { parseYaml, type Yaml } from "./yaml.ts";
import { dirname } from "node:path";

const SECRETS = {
  TWINMILL_API_KEYS: "compose-test-key-0123456789:admin",
  INFLUX_TOKEN: "compose-test-influx-token",
  INFLUX_ADMIN_PASSWORD: "compose-test-password",
  GRAFANA_ADMIN_PASSWORD: "compose-test-password",
  NATS_NODE_PASSWORD: "composeTestNodePassword1",
  NATS_TOOLS_PASSWORD: "composeTestToolsPassword1",
  NATS_ROUTE_PASSWORD: "composeTestRoutePassword1",
};

// deno-lint-ignore no-explicit-any
type Doc = any;

/**
 * `docker-compose -f infra/compose.yaml --env-file <empty> config [args]` with only `env` in the
 * environment (an `infra/.env` on this machine must not decide the outcome).
 */
async function composeConfig(env: Record<string, string>, args: string[] = []) {
  const bin = findBinary("docker-compose", "docker-compose");
  const dir = await Deno.makeTempDir({ prefix: "compose-test-" });
  try {
    await Deno.writeTextFile(`${dir}/empty.env`, "");
    const out = await new Deno.Command(bin, {
      args: [
        "-f",
        `${REPO_ROOT}/infra/compose.yaml`,
        "--env-file",
        `${dir}/empty.env`,
        "config",
        ...args,
      ],
      clearEnv: true,
      env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", HOME: dir, ...env },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

let resolved: Doc | undefined;
/** The compose file as `docker-compose config` resolves it (secrets set), parsed. */
async function composeDoc(): Promise<Doc> {
  if (resolved) return resolved;
  const r = await composeConfig(SECRETS);
  assert.equal(r.code, 0, r.stderr);
  resolved = parseYaml(r.stdout) as Doc;
  return resolved;
}

const read = (path: string) => Deno.readTextFile(`${REPO_ROOT}/${path}`);

/** A temp dir with the certificates of `scripts/make_certs.sh` (`certs/` in it); remove it. */
async function makeCerts(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "compose-certs-" });
  const made = await new Deno.Command(`${REPO_ROOT}/scripts/make_certs.sh`, {
    args: [dir],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(made.success, new TextDecoder().decode(made.stderr));
  return dir;
}

Deno.test("compose: docker-compose config -q validates the file", async () => {
  const r = await composeConfig(SECRETS, ["-q"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "");
});

Deno.test("compose: refused without a secret, naming the variable and where to set it", async () => {
  const names = Object.keys(SECRETS);
  const results = await Promise.all(names.map((name) => {
    const env: Record<string, string> = { ...SECRETS };
    delete env[name];
    return composeConfig(env, ["-q"]);
  }));
  results.forEach((r, n) => {
    assert.notEqual(r.code, 0, `config passes without ${names[n]}`);
    assert.ok(r.stderr.includes(`set ${names[n]} in infra/.env`), `${names[n]}: ${r.stderr}`);
  });
  // an empty value (an unfilled .env.example) is refused too
  const r = await composeConfig({ ...SECRETS, TWINMILL_API_KEYS: "" }, ["-q"]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /set TWINMILL_API_KEYS in infra\/\.env/);
});

Deno.test("compose: the nodes' environment is contract variables that load as a cluster node", async () => {
  const doc = await composeDoc();
  const tm = doc.services.twinmill;
  const env: Record<string, string> = tm.environment;
  const known = await configVariables();
  for (const k of Object.keys(env)) {
    assert.ok(
      known.has(k),
      `compose sets ${k} for twinmill, which src/config/env_schema.ts never reads`,
    );
  }
  assert.ok(!("TWINMILL_NODE_ID" in env), "each replica names itself after its hostname");
  // what a replica sees: the image's defaults, then compose's environment (NATS_CA, the file
  // mounted from infra/certs/ca.pem, read here from certificates made by make_certs.sh)
  assert.ok(
    (tm.volumes as string[]).includes(`${REPO_ROOT}/infra/certs/ca.pem:${env.NATS_CA}:ro`),
    "NATS_CA is the CA of scripts/make_certs.sh",
  );
  const certs = await makeCerts();
  let cfg;
  try {
    cfg = loadConfig({ ...envOf(await readDockerfile()), ...env, NATS_CA: `${certs}/ca.pem` });
  } finally {
    await Deno.remove(certs, { recursive: true });
  }
  // NATS over TLS as user `node`
  assert.deepEqual(cfg.natsUrl?.split(","), [1, 2, 3].map((n) => `tls://nats-${n}:4222`));
  assert.deepEqual(cfg.nats?.auth, {
    method: "user",
    user: "node",
    password: SECRETS.NATS_NODE_PASSWORD,
  });
  assert.equal(cfg.nats?.insecure, false);
  for (const n of [1, 2, 3]) assert.ok(doc.services[`nats-${n}`], `service nats-${n}`);
  assert.equal(cfg.http.host, "0.0.0.0");
  assert.equal(cfg.mqtt.auth, true);
  assert.equal(cfg.apiKeys.get("compose-test-key-0123456789")?.role, "admin");
  assert.equal(cfg.dataDir, "/data");
  assert.deepEqual(
    {
      url: cfg.influx?.url,
      api: cfg.influx?.api,
      org: cfg.influx?.org,
      bucket: cfg.influx?.bucket,
    },
    { url: "http://influxdb:8086", api: "v2", org: "twinmill", bucket: "twinmill" },
  );
  // InfluxDB provisions exactly what the nodes write to
  const init = doc.services.influxdb.environment;
  assert.equal(init.DOCKER_INFLUXDB_INIT_MODE, "setup");
  assert.equal(init.DOCKER_INFLUXDB_INIT_ORG, cfg.influx?.org);
  assert.equal(init.DOCKER_INFLUXDB_INIT_BUCKET, cfg.influx?.bucket);
  assert.equal(init.DOCKER_INFLUXDB_INIT_ADMIN_TOKEN, cfg.influx?.token);
  assert.match(doc.services.influxdb.image, /^influxdb:2\.\d+/);
  // built from the repository root with the image under test
  assert.equal(tm.build.context, REPO_ROOT);
  assert.equal(tm.build.dockerfile, "infra/Dockerfile");
  assert.ok(/^\d+s$/.test(tm.stop_grace_period) && parseInt(tm.stop_grace_period) >= 30);
});

Deno.test("compose: only the load balancer publishes MQTT and HTTP; the rest stays on loopback", async () => {
  const doc = await composeDoc();
  assert.equal(doc.services.twinmill.ports, undefined, "scaled replicas cannot share host ports");
  assert.deepEqual(
    (doc.services.lb.ports as Doc[]).map((p) => `${p.published}:${p.target}`).sort(),
    ["1883:1883", "8080:8080"],
  );
  for (const [name, svc] of Object.entries(doc.services as Record<string, Doc>)) {
    if (name === "lb" || !svc.ports) continue;
    for (const p of svc.ports) assert.match(String(p), /^127\.0\.0\.1:/, `${name} publishes ${p}`);
  }
  // every replica has its own /data (the image's anonymous volume), none shares a named one;
  // its one mount is the NATS CA certificate, read-only
  assert.deepEqual(doc.services.twinmill.volumes, [
    `${REPO_ROOT}/infra/certs/ca.pem:/etc/twinmill/nats-ca.pem:ro`,
  ]);
  // NATS: nothing published, not even the monitoring port
  for (const n of [1, 2, 3]) assert.equal(doc.services[`nats-${n}`].ports, undefined);
});

Deno.test("compose: HAProxy fills its backends from the service name, on the image's ports", async () => {
  const doc = await composeDoc();
  const env = envOf(await readDockerfile());
  const cfg = await read("infra/haproxy.cfg");
  assert.ok(
    (doc.services.lb.volumes as string[]).includes(
      `${REPO_ROOT}/infra/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro`,
    ),
  );
  assert.match(cfg, /nameserver \S+ 127\.0\.0\.11:53/, "Docker's embedded DNS");
  const templates = [...cfg.matchAll(/^\s*server-template \S+ (\d+)-(\d+) (\S+):(\d+)/gm)];
  assert.deepEqual(
    templates.map((m) => `${m[3]}:${m[4]}`).sort(),
    [`twinmill:${env.TWINMILL_MQTT_PORT}`, `twinmill:${env.TWINMILL_HTTP_PORT}`].sort(),
  );
  for (const m of templates) assert.ok(Number(m[2]) >= 8, "room for scaled replicas");
  assert.match(cfg, /^frontend mqtt\n\s+bind :1883\n\s+mode tcp/m, "MQTT is passed through as TCP");
  assert.match(cfg, /^frontend http\n\s+bind :8080\n\s+mode http/m);
  assert.match(cfg, /timeout tunnel/, "WebSocket streams outlive the request timeouts");
  assert.match(cfg, /http-check send meth GET uri \/readyz/);
});

Deno.test("compose: Prometheus discovers every replica by DNS on the metrics port", async () => {
  const doc = await composeDoc();
  const env = envOf(await readDockerfile());
  const prom = parseYaml(await read("infra/prometheus.yml")) as Doc;
  const job = prom.scrape_configs.find((j: Doc) => j.job_name === "twinmill");
  assert.ok(job, "a twinmill job");
  assert.equal(job.metrics_path, "/metrics");
  assert.deepEqual(job.dns_sd_configs.map((d: Doc) => [d.names, d.type, d.port]), [
    [["twinmill"], "A", env.TWINMILL_HTTP_PORT],
  ]);
  assert.ok(
    (doc.services.prometheus.volumes as string[]).includes(
      `${REPO_ROOT}/infra/prometheus.yml:/etc/prometheus/prometheus.yml:ro`,
    ),
  );
  assert.ok(
    doc.services.prometheus.command.includes("--config.file=/etc/prometheus/prometheus.yml"),
  );
});

Deno.test("compose: the NATS servers' config is valid for each of them (nats-server -t), with the certificates of make_certs.sh", async () => {
  const doc = await composeDoc();
  const bin = findBinary("nats-server", "nats-server");
  // the files as mounted: /etc/nats/{twinmill.conf,nats-auth.conf}, the certificates
  const dir = await makeCerts();
  try {
    const conf = (await read("infra/nats.conf")).replaceAll("/etc/nats/certs", dir);
    await Deno.writeTextFile(`${dir}/twinmill.conf`, conf);
    await Deno.copyFile(`${REPO_ROOT}/infra/nats-auth.conf`, `${dir}/nats-auth.conf`);
    for (const n of [1, 2, 3]) {
      const svc = doc.services[`nats-${n}`];
      const at = (svc.command as string[])[(svc.command as string[]).indexOf("--config") + 1];
      const mounts = svc.volumes as string[];
      assert.ok(mounts.includes(`${REPO_ROOT}/infra/nats.conf:${at}:ro`), `nats-${n}: ${at}`);
      assert.ok(
        mounts.includes(`${REPO_ROOT}/infra/nats-auth.conf:${dirname(at)}/nats-auth.conf:ro`),
        `nats-${n} mounts the account file beside it (include nats-auth.conf)`,
      );
      assert.ok(mounts.includes(`${REPO_ROOT}/infra/certs:/etc/nats/certs:ro`));
      assert.ok(mounts.some((v) => /^nats-\d-data:\/data:rw$/.test(v)));
      assert.equal(svc.ports, undefined, `nats-${n} publishes nothing`);
      const out = await new Deno.Command(bin, {
        args: ["-t", "-c", `${dir}/twinmill.conf`],
        clearEnv: true,
        env: svc.environment,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
      assert.equal(out.code, 0, text);
      assert.equal(svc.environment.NATS_SERVER_NAME, `nats-${n}`, "unique JetStream server names");
      // the routes log in as `route` with the route password, to each server by name
      for (const m of [1, 2, 3]) {
        assert.equal(
          svc.environment[`NATS_ROUTE_${m}`],
          `nats-route://route:${SECRETS.NATS_ROUTE_PASSWORD}@nats-${m}:6222`,
        );
      }
      assert.equal(svc.environment.NATS_NODE_PASSWORD, SECRETS.NATS_NODE_PASSWORD);
      assert.equal(svc.environment.NATS_TOOLS_PASSWORD, SECRETS.NATS_TOOLS_PASSWORD);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("compose: NATS is secure by default: TLS and users for clients, TLS both ways and a login for routes, monitoring inside the container", async () => {
  const conf = await read("infra/nats.conf");
  const block = (name: string, text = conf) => {
    const m = text.match(new RegExp(`^\\s*${name} \\{\\n([\\s\\S]*?)^\\s*\\}`, "m"));
    assert.ok(m, `a ${name} block`);
    return m[1];
  };
  assert.match(conf, /^http: 127\.0\.0\.1:8222$/m, "monitoring on the container's loopback");
  assert.match(conf, /^include nats-auth\.conf$/m);
  assert.doesNotMatch(conf, /no_auth_user/, "no anonymous user");
  const tls = block("tls");
  assert.match(tls, /cert_file: \/etc\/nats\/certs\/nats\.pem/);
  assert.match(tls, /key_file: \/etc\/nats\/certs\/nats\.key/);
  const cluster = conf.slice(conf.indexOf("cluster {"));
  const auth = block("authorization", cluster);
  assert.match(auth, /user: route/);
  assert.match(auth, /password: \$NATS_ROUTE_PASSWORD/);
  const routeTls = block("tls", cluster);
  assert.match(routeTls, /ca_file: \/etc\/nats\/certs\/ca\.pem/);
  assert.match(routeTls, /verify: true/, "a route presents a certificate of the CA");
  for (const n of [1, 2, 3]) assert.ok(cluster.includes(`$NATS_ROUTE_${n}`), `route to nats-${n}`);
  assert.match(conf, /jetstream \{[^}]*store_dir: \/data/);
});

Deno.test("compose: Grafana is provisioned with both datasources and the dashboard folder", async () => {
  const doc = await composeDoc();
  const g = doc.services.grafana;
  const mounts = g.volumes as string[];
  const ds = parseYaml(await read("infra/grafana/provisioning/datasources/twinmill.yaml")) as Doc;
  const byType = Object.fromEntries(ds.datasources.map((d: Doc) => [d.type, d])) as Record<
    string,
    Doc
  >;
  assert.equal(byType.prometheus.url, "http://prometheus:9090");
  assert.equal(byType.influxdb.url, "http://influxdb:8086");
  assert.equal(
    byType.influxdb.jsonData.dbName,
    doc.services.influxdb.environment.DOCKER_INFLUXDB_INIT_BUCKET,
  );
  assert.equal(byType.influxdb.secureJsonData.httpHeaderValue1, "Token ${INFLUX_TOKEN}");
  assert.equal(
    g.environment.INFLUX_TOKEN,
    SECRETS.INFLUX_TOKEN,
    "Grafana gets the token it interpolates",
  );
  assert.ok(
    mounts.includes(`${REPO_ROOT}/infra/grafana/provisioning:/etc/grafana/provisioning:ro`),
  );
  const dash = parseYaml(await read("infra/grafana/provisioning/dashboards/twinmill.yaml")) as Doc;
  const path = dash.providers[0].options.path;
  assert.ok(
    mounts.includes(`${REPO_ROOT}/infra/grafana/dashboards:${path}:ro`),
    `dashboards at ${path}`,
  );
  assert.equal(g.environment.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH, `${path}/twinmill.json`);
  // the dashboard refers to the provisioned datasources by uid
  const json = JSON.parse(await read("infra/grafana/dashboards/twinmill.json"));
  const uids = new Set(ds.datasources.map((d: Doc) => d.uid));
  const used = new Set<string>();
  const walk = (v: Yaml | unknown): void => {
    if (Array.isArray(v)) return v.forEach(walk);
    if (v && typeof v === "object") {
      const o = v as Record<string, unknown>;
      const d = o.datasource as { uid?: string; type?: string } | undefined;
      if (d?.uid && d.type !== "grafana") used.add(d.uid); // "grafana": built-in annotations
      Object.values(o).forEach(walk);
    }
  };
  walk(json);
  assert.ok(used.size >= 2);
  for (const u of used) assert.ok(uids.has(u), `datasource uid ${u} is provisioned`);
});
