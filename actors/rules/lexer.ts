/**
 * Tokenizer of the rule expression language (see `expression.ts`).
 * @module
 */
import { ExpressionError } from "./errors.ts";

/** A token: its type, its text (for `op`/`name`) or value, and its 0-based offset. */
export type Token =
  | { type: "number"; value: number; pos: number }
  | { type: "string"; value: string; pos: number }
  | { type: "name"; value: string; pos: number }
  | { type: "quoted"; value: string; pos: number }
  | { type: "op"; value: string; pos: number }
  | { type: "end"; value: ""; pos: number };

const TWO = new Set(["||", "&&", "==", "!=", "<=", ">="]);
const ONE = new Set(["!", "<", ">", "+", "-", "*", "/", "%", "(", ")", ","]);
const NUMBER_RE = /(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/y;
const NAME_RE = /[A-Za-z_$][A-Za-z0-9_$]*(?:\.[A-Za-z_$][A-Za-z0-9_$]*)*/y;
const ESCAPES: Record<string, string> = {
  n: "\n",
  t: "\t",
  r: "\r",
  "\\": "\\",
  "'": "'",
  '"': '"',
  "`": "`",
};

/**
 * Split `src` into tokens, ending with an `end` token.
 * Names are `[A-Za-z_$][A-Za-z0-9_$]*`, optionally dotted (`motor.temp`); a field whose name
 * has other characters is written in backticks (`` `line-1 temp` ``).
 * @throws {ExpressionError} on a character that starts no token, or an unterminated string.
 */
export function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (c === " " || c === "\t" || c === "\n" || c === "\r") {
      i++;
      continue;
    }
    const pos = i;
    if ((c >= "0" && c <= "9") || (c === "." && src[i + 1] >= "0" && src[i + 1] <= "9")) {
      NUMBER_RE.lastIndex = i;
      const m = NUMBER_RE.exec(src)!;
      i += m[0].length;
      out.push({ type: "number", value: Number(m[0]), pos });
      continue;
    }
    NAME_RE.lastIndex = i;
    const name = NAME_RE.exec(src);
    if (name) {
      i += name[0].length;
      if (src[i] === ".") throw new ExpressionError(`Unexpected character "."`, i);
      out.push({ type: "name", value: name[0], pos });
      continue;
    }
    if (c === "'" || c === '"' || c === "`") {
      const [value, end] = quoted(src, i);
      i = end;
      out.push({ type: c === "`" ? "quoted" : "string", value, pos });
      continue;
    }
    const two = src.slice(i, i + 2);
    if (TWO.has(two)) {
      out.push({ type: "op", value: two, pos });
      i += 2;
    } else if (ONE.has(c)) {
      out.push({ type: "op", value: c, pos });
      i++;
    } else {
      const hint = c === "="
        ? ' (did you mean "=="?)'
        : c === "&" || c === "|"
        ? ` (did you mean "${c}${c}"?)`
        : "";
      throw new ExpressionError(`Unexpected character ${JSON.stringify(c)}${hint}`, pos);
    }
  }
  out.push({ type: "end", value: "", pos: src.length });
  return out;
}

/** Read a quoted string starting at `start` (the quote); returns the value and the end. */
function quoted(src: string, start: number): [string, number] {
  const q = src[start];
  let value = "";
  let i = start + 1;
  while (i < src.length) {
    const c = src[i];
    if (c === q) {
      if (q === "`" && value === "") throw new ExpressionError("Empty field name", start);
      return [value, i + 1];
    }
    if (c === "\\") {
      const e = ESCAPES[src[i + 1]];
      if (e === undefined) throw new ExpressionError("Unknown escape sequence", i);
      value += e;
      i += 2;
    } else {
      value += c;
      i++;
    }
  }
  throw new ExpressionError("Unterminated string", start);
}
