import assert from "node:assert/strict";
import { runNode, startNode } from "./mod.ts";

// The real main.ts is tested in tests/integration/; these check the harness itself.
const main = new URL("./testdata/fake_node.ts", import.meta.url).pathname;

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("startNode resolves on the ready line with its ports", async () => {
  let dataDir: string;
  {
    await using node = await startNode({ TWINMILL_LOG: "debug" }, { main });
    dataDir = node.dataDir;
    assert.equal(node.httpUrl, `http://127.0.0.1:${node.httpPort}`);
    assert.equal(node.mqttUrl, `mqtt://127.0.0.1:${node.mqttPort}`);
    assert.equal(await (await fetch(node.httpUrl)).text(), "1");
    const starting = await node.waitForLog((r) => r.msg === "starting");
    assert.equal(starting.starts, 1);
    assert.ok(node.logs.some((l) => l.includes('"msg":"ready"')));
    assert.equal(await node.kill(), 0);
    await assert.rejects(node.waitForLog((r) => r.msg === "never", 5_000), /exited with code 0/);
  }
  assert.equal(await exists(dataDir), false, "the temp data dir is removed on dispose");
});

Deno.test("restart() keeps the data dir and picks new ports", async () => {
  await using first = await startNode({ FAKE_NO_MQTT: "1" }, { main });
  assert.equal(first.mqttPort, undefined);
  assert.equal(first.mqttUrl, undefined);
  await using second = await first.restart();
  assert.notEqual(second.pid, first.pid);
  assert.equal(second.dataDir, first.dataDir);
  assert.equal(await (await fetch(second.httpUrl)).text(), "2");
});

Deno.test("startNode rejects with the node's stderr when it exits before ready", async () => {
  await assert.rejects(
    startNode({ FAKE_EXIT: "3" }, { main }),
    (err: Error) => {
      assert.match(err.message, /^Cannot start twinmill node: .*exited with code 3/);
      assert.match(err.message, /FAKE_EXIT is set/);
      return true;
    },
  );
});

Deno.test("runNode returns the exit code and output", async () => {
  const res = await runNode({ FAKE_EXIT: "2" }, ["--flag"], { main });
  assert.equal(res.code, 2);
  assert.equal(JSON.parse(res.stderr.trim()).args[0], "--flag");
  assert.equal(res.stdout, "");
});
