import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { Duplex } from "node:stream";
import { readWholeBuffer } from "./listeners.ts";

/** A stream whose `_read` pushes at once, as Deno's `node:net` can when bytes are waiting. */
function eagerStream(): Duplex {
  const waiting = [Buffer.alloc(100, 1), Buffer.alloc(100, 2)];
  const d = new Duplex({
    read() {
      const b = waiting.shift();
      if (b) this.push(b);
    },
    write(_chunk, _enc, cb) {
      cb();
    },
  });
  d.push(Buffer.alloc(50, 0));
  return d;
}

Deno.test("readWholeBuffer: one read() returns everything, including what arrives during it", () => {
  // the problem: a plain read() leaves what was pushed during it in the buffer
  const plain = eagerStream();
  assert.equal(plain.read()?.length, 50);
  assert.equal(plain.readableLength, 100, "left behind; aedes would wait for a 'readable'");

  const whole = readWholeBuffer(eagerStream());
  const got = whole.read() as Buffer;
  assert.equal(got.length, 250);
  assert.equal(whole.readableLength, 0);
  assert.deepEqual([got[0], got[50], got[150]], [0, 1, 2], "in order");
  assert.equal(whole.read(), null, "nothing more");
  assert.equal(readWholeBuffer(eagerStream()).read(10)?.length, 10, "a sized read is untouched");
});
