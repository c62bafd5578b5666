import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import type { AedesPublishPacket, Client } from "aedes";
import { DeliveryAcks } from "./acks.ts";

/** A client with the aedes internals the acks read: its next packet id and its parser. */
function wire(nextId: number) {
  const parser = new EventEmitter();
  const c = { closed: false, _nextId: nextId, _parser: parser } as unknown as Client;
  return { c, parser, nextId: () => (c as unknown as { _nextId: number })._nextId };
}

const packet = (topic: string, qos: 0 | 1 = 1) => ({ topic, qos }) as AedesPublishPacket;

Deno.test("acks: a delivery is acknowledged by the PUBACK of the id it was given", async () => {
  const acks = new DeliveryAcks();
  const { c, parser, nextId } = wire(65535);
  const topic = "twins/a/commands/1";
  const acked = acks.expect(c, topic);
  assert.equal(acks.pending(c, topic), acked);
  // other messages keep the id aedes gives them
  assert.equal(acks.forward(c, packet("twins/a/desired")).messageId, undefined);
  assert.equal(acks.forward(c, packet(topic, 0)).messageId, undefined);
  const sent = acks.forward(c, packet(topic));
  assert.equal(sent.messageId, 65535);
  assert.equal(nextId(), 1, "the connection's next id wraps as aedes's does");
  parser.emit("packet", { cmd: "puback", messageId: 7 }); // someone else's
  parser.emit("packet", { cmd: "pubrec", messageId: 65535 });
  parser.emit("packet", { cmd: "puback", messageId: 65535, reasonCode: 0 });
  assert.equal(await acked, true);
  assert.equal(acks.pending(c, topic), undefined);
});

Deno.test("acks: a negative PUBACK or a lost connection is not a delivery", async () => {
  const acks = new DeliveryAcks();
  const { c, parser } = wire(10);
  const refused = acks.expect(c, "twins/a/commands/1");
  acks.forward(c, packet("twins/a/commands/1"));
  parser.emit("packet", { cmd: "puback", messageId: 10, reasonCode: 0x83 });
  assert.equal(await refused, false);

  const numbered = acks.expect(c, "twins/a/commands/2");
  acks.forward(c, packet("twins/a/commands/2"));
  const unsent = acks.expect(c, "twins/a/commands/3");
  acks.disconnected(c);
  assert.deepEqual(await Promise.all([numbered, unsent]), [false, false]);
});
