import assert from "node:assert/strict";
import { parseBasic, parseRange } from "./firmware_http.ts";

Deno.test("parseRange: the forms of RFC 9110 for one range", () => {
  const size = 1000;
  const cases: [string | undefined, ReturnType<typeof parseRange>][] = [
    [undefined, null],
    ["bytes=0-499", { start: 0, end: 499 }],
    ["bytes=500-", { start: 500, end: 999 }],
    ["bytes=500-5000", { start: 500, end: 999 }],
    ["bytes=-200", { start: 800, end: 999 }],
    ["bytes=-5000", { start: 0, end: 999 }],
    ["bytes=999-999", { start: 999, end: 999 }],
    ["bytes=1000-", "unsatisfiable"],
    ["bytes=1000-1200", "unsatisfiable"],
    ["bytes=-0", "unsatisfiable"],
    // ignored: the whole image is sent
    ["bytes=5-1", null],
    ["bytes=-", null],
    ["bytes=0-1,5-6", null],
    ["items=0-1", null],
    ["bytes=a-b", null],
  ];
  for (const [h, want] of cases) assert.deepEqual(parseRange(h, size), want, String(h));
});

Deno.test("parseBasic: user and password; malformed is null, absent is undefined", () => {
  assert.deepEqual(parseBasic(`Basic ${btoa("press-1:t0k:en")}`), {
    user: "press-1",
    pass: "t0k:en",
  });
  assert.equal(parseBasic(undefined), undefined);
  assert.equal(parseBasic("Bearer abc"), undefined);
  assert.equal(parseBasic("Basic !!!"), null);
  assert.equal(parseBasic(`Basic ${btoa("no-colon")}`), null);
});
