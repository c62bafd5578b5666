import assert from "node:assert/strict";
import { PacketSizeGuard } from "./packet_guard.ts";

Deno.test("packet guard: CONNECT over its limit is cut at the fixed header", () => {
  const g = new PacketSizeGuard(100, 1000);
  // 250 MB announced: 0x10, varint 250_000_000
  assert.equal(g.feed(Uint8Array.of(0x10, 0x80, 0xe5, 0x9a)), "connect_too_large");
});

Deno.test("packet guard: packets within limits pass, split anywhere; a later big one is cut", () => {
  const g = new PacketSizeGuard(100, 1000);
  const connect = [0x10, 50, ...new Array(50).fill(0)];
  const publish = [0x32, 0xe8, 0x07, ...new Array(1000).fill(1)]; // exactly 1000
  const all = [...connect, ...publish, ...publish];
  for (let i = 0; i < all.length; i += 7) {
    assert.equal(g.feed(Uint8Array.from(all.slice(i, i + 7))), null);
  }
  assert.equal(g.feed(Uint8Array.of(0x30, 0xe9, 0x07)), "packet_too_large");
  assert.equal(
    new PacketSizeGuard(1e9, 1e9).feed(Uint8Array.of(0x10, 0xff, 0xff, 0xff, 0xff)),
    "malformed_length",
  );
});
