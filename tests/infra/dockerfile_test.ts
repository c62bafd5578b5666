/**
 * The container image (`infra/Dockerfile`), checked without a container engine: its command is
 * the `start` task, it runs as a non-root user, its health probe reaches `/healthz` (run here
 * against a real node started with the image's environment), its defaults are secure (no
 * start without API keys, devices must authenticate), and the build context (`.dockerignore`)
 * keeps every module the node loads.
 */
import assert from "node:assert/strict";
import { healthUrl } from "../../infra/healthcheck.ts";
import { publishQos1, REPO_ROOT, runNode, startNode } from "../harness/mod.ts";
import {
  configVariables,
  envOf,
  execForm,
  type Instruction,
  readDockerfile,
} from "./dockerfile.ts";

const API_KEY = "image-test-key-0123456789";

function one(ins: Instruction[], keyword: string): Instruction {
  const found = ins.filter((i) => i.keyword === keyword);
  assert.equal(found.length, 1, `infra/Dockerfile has exactly one ${keyword}`);
  return found[0];
}

/** The HEALTHCHECK's command, its `/app/` paths mapped into this repository. */
async function healthcheckArgv(): Promise<string[]> {
  const hc = one(await readDockerfile(), "HEALTHCHECK").args;
  const cmd = hc.indexOf("CMD ");
  assert.ok(cmd >= 0, `HEALTHCHECK has a CMD: ${hc}`);
  const argv = execForm(hc.slice(cmd + 4).trim(), "HEALTHCHECK CMD");
  assert.equal(argv[0], "deno", "the probe runs with the image's deno (the image has no curl)");
  return argv.slice(1).map((a) => a.replace(/^\/app\//, `${REPO_ROOT}/`));
}

async function probe(argv: string[], env: Record<string, string>): Promise<number> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: argv,
    cwd: REPO_ROOT,
    clearEnv: true,
    env: { PATH: Deno.env.get("PATH") ?? "", DENO_DIR: Deno.env.get("DENO_DIR") ?? "", ...env },
    stdout: "null",
    stderr: "null",
  }).output();
  return out.code;
}

Deno.test("image: the command is exactly deno.json's start task, in exec form", async () => {
  const ins = await readDockerfile();
  const deno = JSON.parse(await Deno.readTextFile(`${REPO_ROOT}/deno.json`));
  const start = String(deno.tasks.start).trim().split(/\s+/);
  assert.ok(!ins.some((i) => i.keyword === "ENTRYPOINT"), "the base image's tini entrypoint stays");
  assert.deepEqual(execForm(one(ins, "CMD").args, "CMD"), start);
  assert.equal(
    one(ins, "STOPSIGNAL").args,
    "SIGTERM",
    "docker stop sends SIGTERM: a graceful leave",
  );
});

Deno.test("image: official Deno image pinned to this Deno's version line, run as a non-root user", async () => {
  const ins = await readDockerfile();
  const arg = ins.find((i) => i.keyword === "ARG" && i.args.startsWith("DENO_VERSION="));
  assert.ok(arg, "ARG DENO_VERSION=x.y.z");
  const version = arg.args.slice("DENO_VERSION=".length);
  assert.match(version, /^\d+\.\d+\.\d+$/, "an exact version, not a moving tag");
  assert.equal(
    version.split(".")[0],
    Deno.version.deno.split(".")[0],
    "same major as the tested Deno",
  );
  assert.equal(one(ins, "FROM").args, "denoland/deno:${DENO_VERSION}");
  const users = ins.filter((i) => i.keyword === "USER").map((i) => i.args);
  assert.ok(users.length > 0, "a USER instruction");
  assert.ok(!["root", "0", "0:0"].includes(users.at(-1)!), `runs as "${users.at(-1)}", not root`);
  // the user switch comes before the dependencies are installed: no root-owned cache or modules
  const userAt = ins.findIndex((i) => i.keyword === "USER");
  const installs = ins.flatMap((i, n) =>
    i.keyword === "RUN" && /deno install/.test(i.args) ? [n] : []
  );
  assert.equal(installs.length, 2, "dependencies, then the entry points' module graphs");
  assert.ok(installs.every((n) => n > userAt && ins[n].args.includes("--frozen")));
  // deno.json and deno.lock alone are copied before the first install (a source change
  // does not download the dependencies again)
  const copies = ins.filter((i) => i.keyword === "COPY");
  assert.match(copies[0].args, /deno\.json deno\.lock \.\/$/);
  assert.ok(ins.indexOf(copies[0]) < installs[0] && installs[0] < ins.indexOf(copies[1]));
  assert.match(ins[installs[1]].args, /--entrypoint main\.ts infra\/healthcheck\.ts$/);
});

Deno.test("image: data volume, ports and defaults are contract variables", async () => {
  const ins = await readDockerfile();
  const env = envOf(ins);
  const known = await configVariables();
  for (const k of Object.keys(env)) {
    assert.ok(known.has(k), `ENV ${k} is read by src/config/env_schema.ts`);
  }
  assert.equal(env.TWINMILL_DATA_DIR, "/data");
  assert.equal(one(ins, "VOLUME").args, "/data");
  assert.deepEqual(
    one(ins, "EXPOSE").args.split(/\s+/).sort(),
    [env.TWINMILL_HTTP_PORT, env.TWINMILL_MQTT_PORT].sort(),
  );
  assert.equal(env.TWINMILL_MQTT_AUTH, "on");
  for (const secret of ["TWINMILL_API_KEYS", "TWINMILL_JWT_SECRET", "INFLUX_TOKEN"]) {
    assert.ok(!(secret in env), `no ${secret} baked into the image`);
  }
});

Deno.test("image: without API keys the image's environment refuses to start, naming why", async () => {
  const { TWINMILL_DATA_DIR: _, ...env } = envOf(await readDockerfile());
  const { code, stderr } = await runNode({
    ...env,
    TWINMILL_HTTP_PORT: "0",
    TWINMILL_MQTT_PORT: "0",
  });
  assert.equal(code, 2, stderr);
  assert.match(stderr, /TWINMILL_HTTP_HOST: binding to non-loopback address "0\.0\.0\.0" requires/);
});

Deno.test("image: with a key its environment serves, devices must authenticate, the probe passes", async () => {
  const env = envOf(await readDockerfile());
  const argv = await healthcheckArgv();
  assert.equal(healthUrl(env), "http://127.0.0.1:8080/healthz", "the probe targets /healthz");
  const { TWINMILL_DATA_DIR: _, ...imageEnv } = env;
  await using node = await startNode({
    ...imageEnv,
    TWINMILL_HTTP_PORT: "0",
    TWINMILL_MQTT_PORT: "0",
    TWINMILL_API_KEYS: `${API_KEY}:admin`,
  });
  {
    const probeEnv = { ...env, TWINMILL_HTTP_PORT: String(node.httpPort) };
    assert.equal(await probe(argv, probeEnv), 0, "healthy while the node serves");

    const anon = await fetch(`${node.httpUrl}/v1/twins`);
    await anon.body?.cancel();
    assert.equal(anon.status, 401, "the API needs a key");
    const keyed = await fetch(`${node.httpUrl}/v1/twins`, {
      headers: { authorization: `Bearer ${API_KEY}` },
    });
    await keyed.body?.cancel();
    assert.equal(keyed.status, 200);

    const pub = await publishQos1(node, "twins/press-7/telemetry", '{"temp":1}', [
      "-i",
      "anonymous-device",
    ]);
    assert.notEqual(pub.code, 0, "an unauthenticated device is refused");
    assert.match(pub.stderr, /not authori[sz]ed|Connection Refused/i);

    assert.equal(await node.kill("SIGTERM"), 0, "SIGTERM is a clean exit");
    assert.equal(await probe(argv, probeEnv), 1, "unhealthy once the node is gone");
  }
});

/** `.dockerignore` patterns → a matcher with Docker's rules (last match wins, `!` re-includes). */
function ignoreMatcher(text: string): (path: string) => boolean {
  const rules = text.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"))
    .map((l) => {
      const negate = l.startsWith("!");
      const pat = (negate ? l.slice(1) : l).replace(/^\/+/, "").replace(/\/+$/, "");
      const re = pat.split("/").map((seg) =>
        seg === "**" ? ".*" : seg.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[^/]*")
          .replace(/\?/g, "[^/]")
      ).join("/").replace(/\.\*\//g, "(?:.*/)?");
      // a pattern matching a directory excludes everything under it
      return { negate, re: new RegExp(`^${re}(?:/.*)?$`) };
    });
  return (path) => {
    let ignored = false;
    for (const r of rules) if (r.re.test(path)) ignored = !r.negate;
    return ignored;
  };
}

Deno.test("build context: .dockerignore keeps every module the node loads, drops secrets", async () => {
  const ignored = ignoreMatcher(await Deno.readTextFile(`${REPO_ROOT}/.dockerignore`));
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "main.ts"],
    cwd: REPO_ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout));
  const prefix = `file://${REPO_ROOT}/`;
  const local: string[] = info.modules.map((m: { specifier: string }) => m.specifier)
    .filter((s: string) => s.startsWith(prefix)).map((s: string) => s.slice(prefix.length));
  assert.ok(local.length > 50, `main.ts loads ${local.length} local modules`);
  // the console's files are read, not imported: not in the module graph
  const served = ["console/index.html", "console/js/main.js"];
  for (const f of [...local, ...served, "deno.json", "deno.lock", "infra/healthcheck.ts"]) {
    assert.ok(!ignored(f), `${f} is in the build context`);
  }
  for (const f of [".env", "infra/.env", ".git/config", "node_modules/x", "data/twinmill.kv"]) {
    assert.ok(ignored(f), `${f} is kept out of the build context`);
  }
  assert.ok(ignored("tests/harness/mod.ts") && ignored("infra/compose.yaml"));
});
