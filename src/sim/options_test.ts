import assert from "node:assert/strict";
import { DEFAULT_FAULTS, parseOptions, type SimOptions, UsageError } from "./options.ts";

const parse = (args: string[], env: Record<string, string> = {}) =>
  parseOptions(args, env) as SimOptions;

Deno.test("options: defaults", () => {
  const o = parse([]);
  assert.equal(o.devices, 100);
  assert.equal(o.rate, 100);
  assert.equal(o.duration, 60);
  assert.deepEqual(o.mqtt, ["mqtt://127.0.0.1:1883"]);
  assert.equal(o.http, "http://127.0.0.1:8080");
  assert.equal(o.qos, 1);
  assert.equal(o.faultSpec, DEFAULT_FAULTS);
  assert.equal(o.faults.malformed, 0, "malformed only when asked for");
  assert.ok(o.faults.storm && o.faults.dropout && o.faults.overheat && o.faults.stuck);
  assert.equal(o.apiKey, undefined);
  assert.equal(o.auth || o.verify || o.json, false);
});

Deno.test("options: every flag; a cluster; the API key from the environment", () => {
  const o = parse([
    "--devices=20",
    "--rate",
    "250.5",
    "--duration",
    "0",
    "--mqtt",
    "mqtt://a:1883, mqtt://b:1884/",
    "--http",
    "https://gw:8443/",
    "--sites",
    "3",
    "--lines",
    "2",
    "--seed",
    "7",
    "--faults",
    "none",
    "--qos",
    "0",
    "--auth",
    "--prefix",
    "sim-",
    "--shift",
    "60",
    "--inflight",
    "4",
    "--verify",
    "--json",
  ], { TWINMILL_API_KEY: "from-env-0123456789" });
  assert.deepEqual(
    { ...o, faults: undefined },
    {
      devices: 20,
      rate: 250.5,
      duration: 0,
      mqtt: ["mqtt://a:1883", "mqtt://b:1884"],
      http: "https://gw:8443",
      apiKey: "from-env-0123456789",
      sites: 3,
      lines: 2,
      seed: 7,
      faults: undefined,
      faultSpec: "none",
      qos: 0,
      auth: true,
      prefix: "sim-",
      json: true,
      verify: true,
      shift: 60,
      inflight: 4,
    },
  );
  assert.equal(parse(["--api-key", "flag-key"], { TWINMILL_API_KEY: "env" }).apiKey, "flag-key");
  assert.equal(parseOptions(["--help"], {}), "help");
  assert.equal(parseOptions(["-h"], {}), "help");
});

Deno.test("options: a bad flag is one clear line", () => {
  const bad: Array<[string[], RegExp]> = [
    [["--bogus"], /Unknown option '--bogus'/],
    [["extra"], /positional/i],
    [["--devices", "0"], /--devices: expected an integer from 1 to 100000, got "0"/],
    [["--devices", "2.5"], /--devices: expected an integer/],
    [["--rate", "fast"], /--rate: expected a number/],
    [["--duration=-1"], /--duration: expected a number from 0/],
    [["--duration", "-1"], /Option '--duration' argument is ambiguous/],
    [["--qos", "2"], /--qos: expected 0 or 1, got "2"/],
    [["--mqtt", "http://x"], /--mqtt: "http:\/\/x" must start with mqtt: or mqtts: or tcp:/],
    [["--mqtt", ","], /--mqtt: at least one broker URL/],
    [["--http", "nope"], /--http: "nope" is not a URL/],
    [["--sites", "27"], /--sites: expected an integer from 1 to 26/],
    [["--prefix", "a/b"], /--prefix: at most 80 of/],
    [["--faults", "fire"], /unknown fault "fire"/],
    [["--devices"], /argument missing|requires a value|devices/],
  ];
  for (const [args, re] of bad) {
    assert.throws(
      () => parseOptions(args, {}),
      (e) => e instanceof UsageError && re.test(e.message) && !e.message.includes("\n"),
      args.join(" "),
    );
  }
});
