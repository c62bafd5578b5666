import assert from "node:assert/strict";
import { hostname } from "node:os";
import { ConfigError } from "./config_error.ts";
import { loadConfig } from "./config.ts";

const fails = (env: Record<string, string>, variable: string, message: RegExp) =>
  assert.throws(
    () => loadConfig(env),
    (e) => e instanceof ConfigError && e.variable === variable && message.test(e.message),
  );

Deno.test("bridge: off without TWINMILL_MQTT_URL; one node: a session named after the host, no shared subscriptions", () => {
  assert.equal(loadConfig({}).mqtt.bridge, undefined);
  const c = loadConfig({ TWINMILL_MQTT_URL: "mqtt://plant:1884" });
  assert.deepEqual(c.mqtt.bridge, {
    url: "mqtt://plant:1884",
    username: undefined,
    password: undefined,
    caFile: undefined,
    certFile: undefined,
    keyFile: undefined,
    clientId: `twinmill-${hostname().replace(/[^A-Za-z0-9_.-]/g, "_")}`,
    share: undefined,
    sessionExpirySec: 86_400,
  });
  assert.equal(c.mqtt.port, 1883, "the embedded broker stays on");
});

Deno.test("bridge: credentials from the URL are taken out of it (it is logged); a cluster shares by default", () => {
  const c = loadConfig({
    TWINMILL_MQTT_URL: "mqtts://tm:p%40ss@plant:8883",
    NATS_URL: "nats://n:4222",
    NATS_TOKEN: "t",
    TWINMILL_NODE_ID: "n1",
  }).mqtt.bridge!;
  assert.equal(c.url, "mqtts://plant:8883");
  assert.equal(c.username, "tm");
  assert.equal(c.password, "p@ss");
  assert.equal(c.clientId, "twinmill-n1");
  assert.equal(c.share, "twinmill");
  const off = loadConfig({
    TWINMILL_MQTT_URL: "mqtt://plant",
    NATS_URL: "nats://n:4222",
    NATS_TOKEN: "t",
    TWINMILL_MQTT_CLIENT_ID: "tm-a",
    TWINMILL_MQTT_SHARE: "off",
  }).mqtt.bridge!;
  assert.equal(off.share, undefined);
  assert.equal(off.clientId, "tm-a");
});

Deno.test("bridge: bad URLs, stray or mismatched companions, unreadable files are one clear error", () => {
  fails({ TWINMILL_MQTT_URL: "http://plant" }, "TWINMILL_MQTT_URL", /mqtt:\/\/host/);
  fails({ TWINMILL_MQTT_URL: "mqtt://plant/x" }, "TWINMILL_MQTT_URL", /no path/);
  fails({ TWINMILL_MQTT_USERNAME: "u" }, "TWINMILL_MQTT_USERNAME", /needs TWINMILL_MQTT_URL/);
  fails(
    { TWINMILL_MQTT_URL: "mqtt://plant", TWINMILL_MQTT_CA: "/etc/hostname" },
    "TWINMILL_MQTT_CA",
    /mqtts/,
  );
  fails(
    { TWINMILL_MQTT_URL: "mqtts://plant", TWINMILL_MQTT_CERT: "/etc/hostname" },
    "TWINMILL_MQTT_KEY",
    /go together/,
  );
  fails(
    { TWINMILL_MQTT_URL: "mqtts://plant", TWINMILL_MQTT_CA: "/nonexistent.pem" },
    "TWINMILL_MQTT_CA",
    /cannot read file/,
  );
  fails(
    { TWINMILL_MQTT_URL: "mqtt://plant", NATS_URL: "nats://n:4222" },
    "TWINMILL_MQTT_URL",
    /TWINMILL_NODE_ID/,
  );
  fails(
    { TWINMILL_MQTT_URL: "mqtt://plant", TWINMILL_MQTT_SHARE: "a/b" },
    "TWINMILL_MQTT_SHARE",
    /share name/,
  );
});

Deno.test("bridge: the password from a file, never both", async () => {
  const f = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(f, "from-file\n");
    const c = loadConfig({ TWINMILL_MQTT_URL: "mqtt://plant", TWINMILL_MQTT_PASSWORD_FILE: f });
    assert.equal(c.mqtt.bridge!.password, "from-file");
    fails(
      {
        TWINMILL_MQTT_URL: "mqtt://plant",
        TWINMILL_MQTT_PASSWORD: "x",
        TWINMILL_MQTT_PASSWORD_FILE: f,
      },
      "TWINMILL_MQTT_PASSWORD",
      /only one/,
    );
  } finally {
    await Deno.remove(f);
  }
});
