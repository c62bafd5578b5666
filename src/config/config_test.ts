import assert from "node:assert/strict";
import { ConfigError } from "./config_error.ts";
import { loadConfig } from "./config.ts";

Deno.test("defaults follow the contract", () => {
  const c = loadConfig({});
  assert.deepEqual(c.http, {
    port: 8080,
    host: "127.0.0.1",
    headerTimeoutMs: 10_000,
    idleTimeoutMs: 60_000,
    maxConnections: 5_000,
  });
  assert.deepEqual(c.mqtt, { port: 1883, host: "127.0.0.1", auth: false, receiveMaximum: 1000 });
  assert.equal(loadConfig({ TWINMILL_MQTT_RECEIVE_MAXIMUM: "20" }).mqtt.receiveMaximum, 20);
  assert.equal(c.shards, 64);
  assert.equal(c.dataDir, "./data");
  assert.equal(c.log, "info");
  assert.equal(c.idleMs, 600_000);
  assert.equal(c.influx, undefined);
});

Deno.test("MQTT off, InfluxDB v1 and v2 settings", () => {
  const c = loadConfig({
    TWINMILL_MQTT_PORT: "off",
    INFLUX_URL: "http://influx:8086/",
    INFLUX_API: "v1",
  });
  assert.equal(c.mqtt.port, null);
  assert.deepEqual(c.influx, {
    url: "http://influx:8086",
    api: "v1",
    db: "twinmill",
    token: undefined,
    org: undefined,
    bucket: undefined,
    caFile: undefined,
  });
  assert.throws(
    () => loadConfig({ INFLUX_URL: "http://x:8086" }),
    (e) => e instanceof ConfigError && e.variable === "INFLUX_BUCKET",
  );
});

Deno.test("each bad value names its variable", () => {
  const cases: Array<[Record<string, string>, string]> = [
    [{ TWINMILL_HTTP_PORT: "x" }, "TWINMILL_HTTP_PORT"],
    [{ TWINMILL_SHARDS: "0" }, "TWINMILL_SHARDS"],
    [{ TWINMILL_MQTT_AUTH: "yes" }, "TWINMILL_MQTT_AUTH"],
    [{ TWINMILL_HTTP_HOST: "0.0.0.0" }, "TWINMILL_HTTP_HOST"],
    [{ TWINMILL_MQTT_HOST: "10.0.0.5", TWINMILL_MQTT_AUTH: "off" }, "TWINMILL_MQTT_AUTH"],
    [{ TWINMILL_NODE_ID: "a b" }, "TWINMILL_NODE_ID"],
    [{ INFLUX_API: "v9" }, "INFLUX_API"],
    [{ TWINMILL_HTTP_HEADER_TIMEOUT: "0" }, "TWINMILL_HTTP_HEADER_TIMEOUT"],
    [{ TWINMILL_HTTP_IDLE_TIMEOUT: "1.5" }, "TWINMILL_HTTP_IDLE_TIMEOUT"],
    [{ TWINMILL_HTTP_MAX_CONNECTIONS: "0" }, "TWINMILL_HTTP_MAX_CONNECTIONS"],
    [{ TWINMILL_JWT_CLOCK_TOLERANCE: "301" }, "TWINMILL_JWT_CLOCK_TOLERANCE"],
    [{ TWINMILL_MQTT_RECEIVE_MAXIMUM: "0" }, "TWINMILL_MQTT_RECEIVE_MAXIMUM"],
    [{ TWINMILL_MQTT_RECEIVE_MAXIMUM: "65536" }, "TWINMILL_MQTT_RECEIVE_MAXIMUM"],
  ];
  for (const [env, variable] of cases) {
    assert.throws(
      () => loadConfig(env),
      (e) => e instanceof ConfigError && e.variable === variable,
      variable,
    );
  }
});

Deno.test("HTTP limits and the JWT clock tolerance are read in seconds", () => {
  const c = loadConfig({
    TWINMILL_HTTP_HEADER_TIMEOUT: "2",
    TWINMILL_HTTP_IDLE_TIMEOUT: "30",
    TWINMILL_HTTP_MAX_CONNECTIONS: "100",
    TWINMILL_JWT_SECRET: "s".repeat(32),
    TWINMILL_JWT_CLOCK_TOLERANCE: "5",
  });
  assert.equal(c.http.headerTimeoutMs, 2_000);
  assert.equal(c.http.idleTimeoutMs, 30_000);
  assert.equal(c.http.maxConnections, 100);
  assert.equal(c.jwt?.clockToleranceSec, 5);
  assert.equal(loadConfig({ TWINMILL_JWT_SECRET: "s".repeat(32) }).jwt?.clockToleranceSec, 0);
});

Deno.test("TWINMILL_STARTUP_TIMEOUT: seconds to wait for NATS at start-up, 0 = forever", () => {
  assert.equal(loadConfig({}).startupTimeoutMs, 300_000);
  assert.equal(loadConfig({ TWINMILL_STARTUP_TIMEOUT: "20" }).startupTimeoutMs, 20_000);
  assert.equal(loadConfig({ TWINMILL_STARTUP_TIMEOUT: "0" }).startupTimeoutMs, 0);
  for (const bad of ["-1", "1.5", "5s", "forever", "99999999999"]) {
    assert.throws(
      () => loadConfig({ TWINMILL_STARTUP_TIMEOUT: bad }),
      (e) =>
        e instanceof ConfigError && e.variable === "TWINMILL_STARTUP_TIMEOUT" &&
        e.message ===
          `Invalid configuration: TWINMILL_STARTUP_TIMEOUT: must be whole seconds 0-2592000 ` +
            `(0 = wait forever), got "${bad}"`,
      bad,
    );
  }
});

Deno.test("NATS_URL: comma-separated NATS URLs switch to cluster mode; anything else names the variable", () => {
  assert.equal(loadConfig({}).natsUrl, undefined);
  const c = loadConfig({
    NATS_URL: "nats://10.0.0.1:4222,nats://10.0.0.2:4222",
    TWINMILL_NATS_INSECURE: "1",
  });
  assert.equal(c.natsUrl, "nats://10.0.0.1:4222,nats://10.0.0.2:4222");
  // a NATS on another host without authentication is refused (src/config/nats_auth_test.ts)
  assert.throws(
    () => loadConfig({ NATS_URL: "nats://10.0.0.1:4222" }),
    (e) => e instanceof ConfigError && e.variable === "NATS_URL",
  );
  assert.throws(
    () => loadConfig({ NATS_URL: "http://10.0.0.1:4222" }),
    (e) => e instanceof ConfigError && e.variable === "NATS_URL",
  );
});

Deno.test("limits of the JSON intake and the twin size: defaults, settings, bad values", () => {
  assert.deepEqual(loadConfig({}).limits, {
    json: { maxDepth: 32, maxKeys: 1000, maxString: 65536, maxArray: 10000 },
    twinMaxBytes: 262144,
  });
  const c = loadConfig({
    TWINMILL_JSON_MAX_DEPTH: "8",
    TWINMILL_JSON_MAX_KEYS: "50",
    TWINMILL_JSON_MAX_STRING: "1024",
    TWINMILL_JSON_MAX_ARRAY: "100",
    TWINMILL_TWIN_MAX_BYTES: "65536",
  });
  assert.deepEqual(c.limits, {
    json: { maxDepth: 8, maxKeys: 50, maxString: 1024, maxArray: 100 },
    twinMaxBytes: 65536,
  });
  const bad: Array<[string, string]> = [
    ["TWINMILL_JSON_MAX_DEPTH", "0"],
    ["TWINMILL_JSON_MAX_DEPTH", "257"], // recursive code after the intake relies on it
    ["TWINMILL_JSON_MAX_KEYS", "many"],
    ["TWINMILL_JSON_MAX_STRING", "-5"],
    ["TWINMILL_JSON_MAX_ARRAY", "1e3"],
    ["TWINMILL_TWIN_MAX_BYTES", "100"], // under 1 KiB
    ["TWINMILL_TWIN_MAX_BYTES", "256KiB"],
  ];
  for (const [variable, value] of bad) {
    assert.throws(
      () => loadConfig({ [variable]: value }),
      (e) => e instanceof ConfigError && e.variable === variable && e.message.includes(value),
      `${variable}=${value}`,
    );
  }
});

Deno.test("Sparkplug B: on by default with host id twinmill; off; bounds; bad values", () => {
  assert.deepEqual(loadConfig({}).sparkplug, {
    hostId: "twinmill",
    maxEdgeNodes: 10_000,
    maxDevices: 1_000,
    maxMetrics: 1_000,
  });
  assert.equal(loadConfig({ TWINMILL_SPARKPLUG: "off" }).sparkplug, undefined);
  assert.deepEqual(
    loadConfig({
      TWINMILL_SPARKPLUG_HOST_ID: "scada-1",
      TWINMILL_SPARKPLUG_MAX_EDGE_NODES: "5",
      TWINMILL_SPARKPLUG_MAX_DEVICES: "6",
      TWINMILL_SPARKPLUG_MAX_METRICS: "7",
    }).sparkplug,
    { hostId: "scada-1", maxEdgeNodes: 5, maxDevices: 6, maxMetrics: 7 },
  );
  const bad: Array<[string, string]> = [
    ["TWINMILL_SPARKPLUG", "yes"],
    ["TWINMILL_SPARKPLUG_HOST_ID", "a/b"], // a topic level
    ["TWINMILL_SPARKPLUG_HOST_ID", "+"],
    ["TWINMILL_SPARKPLUG_MAX_EDGE_NODES", "0"],
    ["TWINMILL_SPARKPLUG_MAX_METRICS", "lots"],
  ];
  for (const [variable, value] of bad) {
    assert.throws(
      () => loadConfig({ [variable]: value }),
      (e) => e instanceof ConfigError && e.variable === variable,
      `${variable}=${value}`,
    );
  }
});
