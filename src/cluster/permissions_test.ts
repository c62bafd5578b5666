/**
 * The start-up permission check against a real nats-server running the shipped account
 * (`renderAuthConf`): the `node` user passes and its probes leave nothing behind; a user lacking
 * one permission is named; the `tools` user reads but cannot write, an anonymous client cannot
 * connect.
 */
import assert from "node:assert/strict";
import { connect, type NatsConnection, PermissionViolationError } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { startNats } from "../../tests/harness/mod.ts";
import { openBucket } from "../persistence/kv_bucket.ts";
import { ensureInboundStream, INBOUND_STREAM } from "./inbound.ts";
import { checkPermissions, NatsPermissionError } from "./permissions.ts";
import { renderAuthConf } from "./permission_list.ts";
import { type Drop, nodeUserWithout } from "../../tests/harness/nats_users.ts";
import { ignoreDiscardedSockets } from "../../tests/harness/discarded_sockets.ts";

// refused connections below: see tests/harness/discarded_sockets.ts
ignoreDiscardedSockets();

const PASSWORD = "permissions-test-password";

const LACKING: Record<string, { drop: Drop; error: string }> = {
  "no-inbound": {
    drop: { publish: ["tm.in.>"] },
    error: 'NATS user lacks permission to publish "tm.in.*"',
  },
  "no-leases-kv": {
    drop: { publish: ["$KV.tm_leases.>"] },
    error: 'NATS user lacks permission to publish "$KV.tm_leases.>"',
  },
  "no-nodes-info": {
    drop: { publish: ["$JS.API.STREAM.INFO.KV_tm_nodes"] },
    error: 'NATS user lacks permission to publish "$JS.API.STREAM.INFO.KV_tm_nodes"',
  },
  "no-profiles-pub": {
    drop: { publish: ["tm.profiles"] },
    error: 'NATS user lacks permission to publish "tm.profiles"',
  },
  "no-downlink-sub": {
    drop: { subscribe: ["tm.down.>"] },
    error: 'NATS user lacks permission to subscribe "tm.down.*"',
  },
  "no-inbox-sub": {
    drop: { subscribe: ["_INBOX.>"] },
    error: 'NATS user lacks permission to subscribe "_INBOX.>"',
  },
};

const extraUsers = Object.entries(LACKING).map(([name, l]) =>
  nodeUserWithout(name, PASSWORD, l.drop)
);

Deno.test("permissions: the shipped node user passes, each missing permission is named", async () => {
  await using nats = await startNats({
    jetstream: true,
    extra: renderAuthConf({ nodePassword: PASSWORD, toolsPassword: PASSWORD, extraUsers }),
  });
  const as = (user: string) => connect({ servers: nats.url, user, pass: PASSWORD });
  const node = await as("node");
  try {
    // the streams exist, as after a first node's start: probes must not write into them
    await ensureInboundStream(node, 1);
    const kv = await openBucket(node, "tm_leases", { history: 1 });
    await kv.put("shard-0", "held");
    const started = performance.now();
    await checkPermissions(node, { nodeId: "node-1" });
    assert.ok(performance.now() - started < 2_000, "quick");
    const jsm = await jetstreamManager(node);
    assert.equal((await jsm.streams.info(INBOUND_STREAM)).state.messages, 0, "nothing stored");
    assert.equal((await jsm.streams.info("KV_tm_leases")).state.messages, 1);
    assert.equal((await jsm.streams.info(INBOUND_STREAM)).state.consumer_count, 0);
    assert.equal((await kv.get("shard-0"))?.string(), "held");

    for (const [user, l] of Object.entries(LACKING)) {
      const nc = await as(user);
      try {
        const at = performance.now();
        await assert.rejects(
          () => checkPermissions(nc, { nodeId: "node-1" }),
          (err) => err instanceof NatsPermissionError && err.message === l.error,
          user,
        );
        assert.ok(performance.now() - at < 2_000, `${user}: no timeout`);
      } finally {
        await nc.close();
      }
    }
  } finally {
    await node.close();
  }
});

/** A permission refusal, as nats.js reports it (a `RequestError` around it for requests). */
function isViolation(err: unknown): boolean {
  return err instanceof PermissionViolationError ||
    (err as Error | undefined)?.cause instanceof PermissionViolationError;
}

/** Resolves with the error a JetStream publish gets (undefined when it is stored). */
async function publishError(nc: NatsConnection, subject: string): Promise<unknown> {
  return await jetstream(nc).publish(subject, "forged", { timeout: 2_000 }).then(
    () => undefined,
    (err) => err,
  );
}

Deno.test("permissions: the tools user reads streams and KV but cannot write; no anonymous client", async () => {
  await using nats = await startNats({
    jetstream: true,
    extra: renderAuthConf({ nodePassword: PASSWORD, toolsPassword: PASSWORD }),
  });
  const node = await connect({ servers: nats.url, user: "node", pass: PASSWORD });
  const tools = await connect({ servers: nats.url, user: "tools", pass: PASSWORD });
  try {
    await ensureInboundStream(node, 1);
    const twins = await openBucket(node, "tm_twins", { history: 1 });
    await twins.put("press-1", '{"version":3}');
    // reads: stream info, a KV value by subject (what `nats kv get` does)
    const jsm = await jetstreamManager(tools);
    assert.equal((await jsm.streams.info("KV_tm_twins")).state.messages, 1);
    const m = await jsm.streams.getMessage("KV_tm_twins", { last_by_subj: "$KV.tm_twins.press-1" });
    assert.equal(m?.string(), '{"version":3}');
    // writes: refused by the server
    for (const subject of ["tm.in.0", "$KV.tm_twins.press-1"]) {
      const err = await publishError(tools, subject);
      assert.ok(isViolation(err), `${subject}: ${err}`);
    }
    for (
      const write of [
        () => jsm.streams.delete("KV_tm_twins"),
        () => jsm.streams.purge(INBOUND_STREAM),
      ]
    ) {
      assert.ok(isViolation(await write().then(() => undefined, (err) => err)));
    }
    assert.equal((await jsm.streams.info(INBOUND_STREAM)).state.messages, 0);
    // no credentials: refused at connect
    await assert.rejects(() => connect({ servers: nats.url }), /authorization/i);
  } finally {
    await tools.close();
    await node.close();
  }
});
