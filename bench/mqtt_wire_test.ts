import assert from "node:assert/strict";
import { connectPacket, PacketReader, publishPacket } from "./mqtt_wire.ts";

/** The packets a reader gives for `chunks`, as `[type, flags, body bytes]`. */
function read(chunks: Uint8Array[]): [number, number, number[]][] {
  const out: [number, number, number[]][] = [];
  const r = new PacketReader((type, flags, body) => out.push([type, flags, [...body]]));
  for (const c of chunks) r.push(c);
  return out;
}

const CONNACK = [0x20, 2, 0, 0];
const puback = (id: number) => [0x40, 2, id >> 8, id & 255];

Deno.test("mqtt wire: several packets in one chunk are each given", () => {
  const bytes = new Uint8Array([...CONNACK, ...puback(1), ...puback(300), 0xd0, 0]);
  assert.deepEqual(read([bytes]), [[2, 0, [0, 0]], [4, 0, [0, 1]], [4, 0, [1, 44]], [13, 0, []]]);
});

Deno.test("mqtt wire: a packet split anywhere, even inside its fixed header, is given once whole", () => {
  const bytes = [...CONNACK, ...puback(7), ...puback(65535)];
  for (let cut = 1; cut < bytes.length; cut++) {
    for (let cut2 = cut; cut2 < bytes.length; cut2++) {
      const chunks = [bytes.slice(0, cut), bytes.slice(cut, cut2), bytes.slice(cut2)]
        .map((b) => new Uint8Array(b));
      assert.deepEqual(read(chunks), [[2, 0, [0, 0]], [4, 0, [0, 7]], [4, 0, [255, 255]]]);
    }
  }
});

Deno.test("mqtt wire: a remaining length over several bytes, split between chunks", () => {
  const topic = new TextEncoder().encode("twins/fac-1/telemetry");
  const payload = new Uint8Array(200).fill(120); // remaining length 225: two bytes
  const p = publishPacket(topic, 513, payload);
  assert.deepEqual([...p.subarray(0, 3)], [0x32, 0x80 | (225 % 128), 1]);
  const [[type, flags, body]] = read([p.subarray(0, 2), p.subarray(2, 100), p.subarray(100)]);
  assert.equal(type, 3);
  assert.equal(flags, 2); // QoS 1
  assert.deepEqual(body.slice(0, 2), [0, topic.length]);
  assert.deepEqual(body.slice(2 + topic.length, 4 + topic.length), [2, 1]); // packet id 513
  assert.equal(body.length, 225);
});

Deno.test("mqtt wire: CONNECT is MQTT 3.1.1 with a clean session, keepalive and the client id", () => {
  const p = connectPacket("fac-12", 60);
  assert.deepEqual([...p], [
    0x10,
    18,
    0,
    4,
    77,
    81,
    84,
    84,
    4,
    0x02,
    0,
    60,
    0,
    6,
    ...new TextEncoder().encode("fac-12"),
  ]);
});

Deno.test("mqtt wire: a remaining length of more than 4 bytes is refused", () => {
  const r = new PacketReader(() => {});
  assert.throws(() => r.push(new Uint8Array([0x30, 0xff, 0xff, 0xff, 0xff, 0x01])), /malformed/);
});
