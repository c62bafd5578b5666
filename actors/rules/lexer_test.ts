import assert from "node:assert/strict";
import { tokenize } from "./lexer.ts";
import { ExpressionError } from "./errors.ts";

const types = (src: string) => tokenize(src).map((t) => `${t.type}:${t.value}@${t.pos}`);

Deno.test("tokenize: numbers, names, strings, operators, positions", () => {
  assert.deepEqual(types("motor.temp >= 1.5e2 && !on"), [
    "name:motor.temp@0",
    "op:>=@11",
    "number:150@14",
    "op:&&@20",
    "op:!@23",
    "name:on@24",
    "end:@26",
  ]);
  assert.deepEqual(types(`'a\\'b' "c" .5 \`x-y z\``), [
    "string:a'b@0",
    "string:c@7",
    "number:0.5@11",
    "quoted:x-y z@14",
    "end:@21",
  ]);
});

Deno.test("tokenize: bad characters and strings name their position", () => {
  assert.throws(() => tokenize("a = 1"), (e) =>
    e instanceof ExpressionError && e.pos === 2 &&
    e.message === 'Unexpected character "=" (did you mean "=="?) at 2');
  assert.throws(() => tokenize("a & b"), /did you mean "&&"\?\) at 2/);
  assert.throws(() => tokenize("x == 'abc"), /Unterminated string at 5/);
  assert.throws(() => tokenize("'\\q'"), /Unknown escape sequence at 1/);
  assert.throws(() => tokenize("a. b"), /Unexpected character "." at 1/);
  assert.throws(() => tokenize("``"), /Empty field name at 0/);
  assert.throws(() => tokenize("a # b"), /Unexpected character "#" at 2/);
});
