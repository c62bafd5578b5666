/**
 * Tree evaluator of expression ASTs over a twin's fields. Field lookup is the only access
 * to data: own properties of plain objects, never prototypes.
 * @module
 */
import { RuleFault } from "./errors.ts";
import type { Expr, Value } from "./expression.ts";

/** The data an expression sees: the message's fields, then the twin's `reported` state. */
export interface FieldScope {
  /** Telemetry fields of the message (flat names, looked up by the name as written). */
  fields: Readonly<Record<string, unknown>>;
  /** The twin's reported state (dotted names walk nested objects). */
  reported: unknown;
}

/**
 * Evaluate `e`. Returns `undefined` when a field it needs is missing (the rule is then not
 * evaluated this time). `&&` and `||` follow three-valued logic: `false && missing` is
 * `false`, `true || missing` is `true`.
 *
 * @example
 * ```ts
 * evaluateExpression(parseExpression("temp > 80"), { fields: { temp: 90 }, reported: {} }); // true
 * ```
 * @throws {RuleFault} on division or modulo by zero, a non-finite result, or an operand of
 * the wrong type (`"a" * 2`, `1 < "b"`, `!3`).
 */
export function evaluateExpression(e: Expr, scope: FieldScope): Value | undefined {
  switch (e.kind) {
    case "literal":
      return e.value;
    case "field":
      return lookupField(e.name, e.path, scope);
    case "unary": {
      const v = evaluateExpression(e.operand, scope);
      if (v === undefined) return undefined;
      if (e.op === "!") return !bool(v, "!", e.pos);
      return -num(v, "-", e.pos);
    }
    case "binary":
      return binary(e, scope);
    case "call":
      return call(e, scope);
  }
}

/**
 * Look a field up: first `fields[name]`, then the `path` through nested objects of
 * `reported`. Missing → `undefined`.
 * @throws {RuleFault} when the field holds an object or array rather than a value.
 */
export function lookupField(name: string, path: string[], scope: FieldScope): Value | undefined {
  const f = scope.fields[name];
  if (typeof f === "number" || typeof f === "string" || typeof f === "boolean") return f;
  let cur: unknown = scope.reported;
  for (const seg of path) {
    if (cur === null || typeof cur !== "object" || Array.isArray(cur) || !Object.hasOwn(cur, seg)) {
      return undefined;
    }
    cur = (cur as Record<string, unknown>)[seg];
  }
  if (cur === undefined) return undefined;
  if (
    cur === null || typeof cur === "number" || typeof cur === "string" || typeof cur === "boolean"
  ) {
    return cur;
  }
  throw new RuleFault(
    `Field "${name}" holds ${Array.isArray(cur) ? "an array" : "an object"}, not a value`,
  );
}

function binary(e: Extract<Expr, { kind: "binary" }>, scope: FieldScope): Value | undefined {
  const op = e.op;
  if (op === "&&" || op === "||") {
    const stop = op === "||"; // the value that decides the result on its own
    const a = evaluateExpression(e.left, scope);
    if (a !== undefined && bool(a, op, e.pos) === stop) return stop;
    const b = evaluateExpression(e.right, scope);
    if (b !== undefined && bool(b, op, e.pos) === stop) return stop;
    return a === undefined || b === undefined ? undefined : !stop;
  }
  const a = evaluateExpression(e.left, scope);
  if (a === undefined) return undefined;
  const b = evaluateExpression(e.right, scope);
  if (b === undefined) return undefined;
  switch (op) {
    case "==":
      return a === b;
    case "!=":
      return a !== b;
    case "<":
    case "<=":
    case ">":
    case ">=":
      if (
        (typeof a !== "number" || typeof b !== "number") &&
        (typeof a !== "string" || typeof b !== "string")
      ) {
        throw mismatch(op, a, b, e.pos);
      }
      return op === "<" ? a < b : op === "<=" ? a <= b : op === ">" ? a > b : a >= b;
    case "+":
      if (typeof a === "string" && typeof b === "string") return a + b;
      if (typeof a !== "number" || typeof b !== "number") throw mismatch(op, a, b, e.pos);
      return finite(a + b, e.pos);
    default: {
      const x = num(a, op, e.pos);
      const y = num(b, op, e.pos);
      if ((op === "/" || op === "%") && y === 0) {
        throw new RuleFault(`Division by zero at ${e.pos}`);
      }
      return finite(op === "-" ? x - y : op === "*" ? x * y : op === "/" ? x / y : x % y, e.pos);
    }
  }
}

function call(e: Extract<Expr, { kind: "call" }>, scope: FieldScope): Value | undefined {
  const args = e.args;
  const first = evaluateExpression(args[0], scope);
  if (first === undefined) return undefined;
  let acc = num(first, `${e.fn}()`, e.pos);
  switch (e.fn) {
    case "abs":
      return Math.abs(acc);
    case "sqrt":
      if (acc < 0) throw new RuleFault(`sqrt() of a negative number at ${e.pos}`);
      return Math.sqrt(acc);
  }
  for (let i = 1; i < args.length; i++) {
    const v = evaluateExpression(args[i], scope);
    if (v === undefined) return undefined;
    const n = num(v, `${e.fn}()`, e.pos);
    acc = e.fn === "min" ? Math.min(acc, n) : Math.max(acc, n);
  }
  return acc;
}

function num(v: Value, op: string, pos: number): number {
  if (typeof v !== "number") {
    throw new RuleFault(`Operator "${op}" needs a number, got ${typeName(v)} at ${pos}`);
  }
  return v;
}

function bool(v: Value, op: string, pos: number): boolean {
  if (typeof v !== "boolean") {
    throw new RuleFault(`Operator "${op}" needs a boolean, got ${typeName(v)} at ${pos}`);
  }
  return v;
}

function finite(n: number, pos: number): number {
  if (!Number.isFinite(n)) throw new RuleFault(`Result is not a finite number at ${pos}`);
  return n;
}

function mismatch(op: string, a: Value, b: Value, pos: number): RuleFault {
  return new RuleFault(
    `Operator "${op}" cannot combine ${typeName(a)} and ${typeName(b)} at ${pos}`,
  );
}

function typeName(v: Value): string {
  return v === null ? "null" : typeof v;
}
