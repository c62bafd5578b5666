import assert from "node:assert/strict";
import { compile, Twin } from "./testing.ts";

Deno.test("deadband: changes smaller than the band from the last written value are dropped", () => {
  const t = new Twin(compile({ id: "db", kind: "deadband", field: "temp", band: 0.5 }));
  const sup = (sec: number, temp: number) => t.msg(sec, { temp, rpm: 1 }).suppressed;
  assert.deepEqual(sup(1, 20), []); // the first value is written
  assert.deepEqual(sup(2, 20.3), ["temp"]);
  assert.deepEqual(sup(3, 20.45), ["temp"]); // 0.15 from 20.3 but 0.45 from 20 (written)
  assert.deepEqual(sup(4, 20.5), []); // exactly the band: written
  assert.deepEqual(sup(5, 20.1), ["temp"]);
  assert.deepEqual(sup(6, 19.9), []);
  assert.equal(t.state!.rules.db.written, 19.9);
  assert.deepEqual(t.msg(7, { rpm: 2 }).suppressed, []); // no temp: nothing to judge
});

Deno.test("deadband maxSeconds writes anyway after that long", () => {
  const t = new Twin(
    compile({ id: "db", kind: "deadband", field: "temp", band: 1, maxSeconds: 60 }),
  );
  assert.deepEqual(t.msg(0, { temp: 20 }).suppressed, []);
  assert.deepEqual(t.msg(59, { temp: 20 }).suppressed, ["temp"]);
  assert.deepEqual(t.msg(60, { temp: 20 }).suppressed, []);
  assert.deepEqual(t.msg(61, { temp: 20.1 }).suppressed, ["temp"]);
  assert.equal(t.state!.rules.db.writtenAt, 60_000);
});

Deno.test("deadband band 0 drops repeats only; strings and booleans by equality", () => {
  const t = new Twin(compile(
    { id: "a", kind: "deadband", field: "x", band: 0 },
    { id: "b", kind: "deadband", field: "mode", band: 5 },
  ));
  assert.deepEqual(t.msg(0, { x: 1, mode: "auto" }).suppressed, []);
  assert.deepEqual(t.msg(1, { x: 1, mode: "auto" }).suppressed, ["x", "mode"]);
  assert.deepEqual(t.msg(2, { x: 1.0001, mode: "manual" }).suppressed, []);
  assert.deepEqual(t.msg(3, { x: true, mode: "manual" }).suppressed, ["mode"]);
});
