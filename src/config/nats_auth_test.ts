import assert from "node:assert/strict";
import { ConfigError } from "./config_error.ts";
import { loadConfig } from "./config.ts";
import { natsClientConfig, type NatsEnv, natsHost, secretOf } from "./nats_auth.ts";

const SEED = "SUAM" + "A".repeat(54);
const CREDS = `-----BEGIN NATS USER JWT-----
eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30.sig
------END NATS USER JWT------

-----BEGIN USER NKEY SEED-----
${SEED}
------END USER NKEY SEED------
`;
const files: Record<string, string> = {
  "/s/password": "pa55-word\n",
  "/s/token": "tok-123\r\n",
  "/s/seed": `${SEED}\n`,
  "/s/empty": "\n",
  "/s/node.creds": CREDS,
  "/s/not.creds": "hello",
  "/s/ca.pem": "-----BEGIN CERTIFICATE-----\n",
};
const assertEquals = (a: unknown, b: unknown) => assert.deepEqual(a, b);
/** The ConfigError `fn` throws. */
function assertThrows(fn: () => unknown, _: typeof ConfigError): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err;
  }
  throw new Error("did not throw");
}
const read = (p: string) => {
  if (p in files) return files[p];
  throw new Deno.errors.NotFound(p);
};
const cfg = (e: NatsEnv) => natsClientConfig({ NATS_URL: "nats://127.0.0.1:4222", ...e }, read);
const fails = (e: NatsEnv, name: string, part: string) => {
  const err = assertThrows(() => cfg(e), ConfigError);
  assertEquals(err.variable, name);
  if (!err.message.includes(part)) throw new Error(`"${err.message}" lacks "${part}"`);
  return err;
};

Deno.test("nats auth: each method, from the environment or from a file", () => {
  assertEquals(cfg({}).auth, { method: "none" });
  assertEquals(cfg({ NATS_USER: "node", NATS_PASSWORD: "pw" }).auth, {
    method: "user",
    user: "node",
    password: "pw",
  });
  assertEquals(cfg({ NATS_USER: "node", NATS_PASSWORD_FILE: "/s/password" }).auth, {
    method: "user",
    user: "node",
    password: "pa55-word",
  });
  assertEquals(cfg({ NATS_TOKEN_FILE: "/s/token" }).auth, { method: "token", token: "tok-123" });
  assertEquals(cfg({ NATS_TOKEN: "t" }).auth, { method: "token", token: "t" });
  assertEquals(cfg({ NATS_NKEY_FILE: "/s/seed" }).auth, { method: "nkey", seed: SEED });
  assertEquals(cfg({ NATS_NKEY: SEED }).auth, { method: "nkey", seed: SEED });
  assertEquals(cfg({ NATS_CREDS: "/s/node.creds" }).auth, {
    method: "creds",
    file: "/s/node.creds",
    creds: CREDS,
  });
});

Deno.test("nats auth: contradictions and unreadable secrets are one clear error", () => {
  fails({ NATS_PASSWORD: "a", NATS_PASSWORD_FILE: "/s/password" }, "NATS_PASSWORD", "not both");
  fails({ NATS_TOKEN: "a", NATS_TOKEN_FILE: "/s/token" }, "NATS_TOKEN", "not both");
  fails({ NATS_NKEY: SEED, NATS_NKEY_FILE: "/s/seed" }, "NATS_NKEY", "not both");
  fails({ NATS_TOKEN_FILE: "/s/missing" }, "NATS_TOKEN_FILE", 'cannot read file "/s/missing"');
  fails({ NATS_TOKEN_FILE: "/s/empty" }, "NATS_TOKEN_FILE", "is empty");
  fails({ NATS_USER: "node" }, "NATS_PASSWORD", "go together");
  fails({ NATS_PASSWORD: "pw" }, "NATS_USER", "go together");
  fails({ NATS_TOKEN: "t", NATS_NKEY: SEED }, "NATS_TOKEN", "one NATS authentication method");
  fails({ NATS_NKEY: "SUnope" }, "NATS_NKEY", "user nkey seed");
  fails({ NATS_CREDS: "/s/not.creds" }, "NATS_CREDS", "not a NATS credentials file");
  fails({ NATS_CREDS: "/s/none.creds" }, "NATS_CREDS", "cannot read");
  fails({ NATS_CERT: "/s/ca.pem" }, "NATS_KEY", "go together");
  fails({ NATS_CA: "/s/missing.pem" }, "NATS_CA", "cannot read");
});

Deno.test("nats auth: an error never holds the secret", () => {
  const err = fails({ NATS_NKEY: "SUsecret-ish" }, "NATS_NKEY", "seed");
  assertEquals(err.message.includes("SUsecret-ish"), false);
  const both = fails(
    { NATS_PASSWORD: "hunter2", NATS_PASSWORD_FILE: "/s/password" },
    "NATS_PASSWORD",
    "",
  );
  assertEquals(both.message.includes("hunter2") || both.message.includes("pa55"), false);
});

Deno.test("nats auth: TLS is on for tls:// URLs, NATS_CA or a client certificate", () => {
  assertEquals(cfg({}).tls, undefined);
  assertEquals(natsClientConfig({ NATS_URL: "tls://127.0.0.1:4222" }, read).tls, {
    caFile: undefined,
    certFile: undefined,
    keyFile: undefined,
  });
  assertEquals(cfg({ NATS_CA: "/s/ca.pem" }).tls?.caFile, "/s/ca.pem");
  assertEquals(cfg({ NATS_CERT: "/s/ca.pem", NATS_KEY: "/s/ca.pem" }).tls?.certFile, "/s/ca.pem");
});

Deno.test("nats auth: a remote NATS without authentication is refused unless insecure", () => {
  const remote = "nats://nats-1:4222,nats://127.0.0.1:4223";
  const err = assertThrows(
    () => natsClientConfig({ NATS_URL: remote }, read),
    ConfigError,
  );
  assertEquals(err.variable, "NATS_URL");
  assertEquals(
    err.message.includes("nats-1") && err.message.includes("TWINMILL_NATS_INSECURE=1"),
    true,
  );
  const ok = natsClientConfig({ NATS_URL: remote, TWINMILL_NATS_INSECURE: "1" }, read);
  assertEquals(ok.insecure, true);
  for (
    const e of [
      { NATS_TOKEN: "t" },
      { NATS_CERT: "/s/ca.pem", NATS_KEY: "/s/ca.pem" },
    ] satisfies NatsEnv[]
  ) {
    assertEquals(natsClientConfig({ NATS_URL: remote, ...e }, read).insecure, false);
  }
  // credentials in the URL count; loopback needs none
  assertEquals(natsClientConfig({ NATS_URL: "nats://u:p@nats-1:4222" }, read).insecure, false);
  for (const u of ["nats://localhost:4222", "127.0.0.1:4222", "tls://[::1]:4222"]) {
    assertEquals(natsClientConfig({ NATS_URL: u }, read).insecure, false);
  }
  assertEquals(natsHost("nats://a:b@nats-2:4222"), "nats-2");
  assertEquals(natsHost("nats-3:4222"), "nats-3");
});

Deno.test("nats auth: secretOf reads X or X_FILE, trailing newline trimmed", () => {
  assertEquals(secretOf({ X: "v" }, "X", read), "v");
  assertEquals(secretOf({ X_FILE: "/s/password" }, "X", read), "pa55-word");
  assertEquals(secretOf({}, "X", read), undefined);
});

Deno.test("config: NATS and InfluxDB secrets from files, at start", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/pw`, "from-file\n");
    await Deno.writeTextFile(`${dir}/tok`, "influx-tok\n");
    const c = loadConfig({
      NATS_URL: "nats://10.0.0.5:4222",
      NATS_USER: "node",
      NATS_PASSWORD_FILE: `${dir}/pw`,
      INFLUX_URL: "https://influx:8086",
      INFLUX_API: "v1",
      INFLUX_TOKEN_FILE: `${dir}/tok`,
    });
    assertEquals(c.nats?.auth, { method: "user", user: "node", password: "from-file" });
    assertEquals(c.influx?.token, "influx-tok");
    const err = assertThrows(
      () =>
        loadConfig({
          INFLUX_URL: "https://influx:8086",
          INFLUX_API: "v1",
          INFLUX_TOKEN: "a",
          INFLUX_TOKEN_FILE: `${dir}/tok`,
        }),
      ConfigError,
    );
    assertEquals(err.variable, "INFLUX_TOKEN");
    const ca = assertThrows(
      () => loadConfig({ INFLUX_URL: "https://influx:8086", INFLUX_CA: `${dir}/none.pem` }),
      ConfigError,
    );
    assertEquals(ca.variable, "INFLUX_CA");
    // a malformed NATS_URL is named without its user info
    const url = assertThrows(
      () => loadConfig({ NATS_URL: "http://node:pw-in-url@10.0.0.5:4222" }),
      ConfigError,
    );
    assertEquals(url.message.includes("pw-in-url"), false);
    assertEquals(url.message.includes('"http://10.0.0.5:4222"'), true);
    // single mode: the NATS settings are not read at all
    assertEquals(loadConfig({ NATS_TOKEN_FILE: `${dir}/none` }).nats, undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
