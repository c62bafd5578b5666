import assert from "node:assert/strict";
import { createLogger } from "./log.ts";

Deno.test("secret-looking fields are redacted at any depth; other fields are kept", () => {
  const lines: string[] = [];
  const log = createLogger("debug", "t", (l) => lines.push(l));
  log.info("x", {
    device: "press-7",
    password: "p4ss",
    headers: { Authorization: "Bearer abc", "x-api-key": "k3y", accept: "json" },
    nested: [{ token: "t0k" }],
  });
  const rec = JSON.parse(lines[0]);
  assert.equal(rec.device, "press-7");
  assert.equal(rec.password, "[redacted]");
  assert.deepEqual(rec.headers, {
    Authorization: "[redacted]",
    "x-api-key": "[redacted]",
    accept: "json",
  });
  assert.deepEqual(rec.nested, [{ token: "[redacted]" }]);
  for (const s of ["p4ss", "abc", "k3y", "t0k"]) assert.ok(!lines[0].includes(s));
});
