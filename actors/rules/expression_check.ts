/**
 * Static checks of an expression AST: a light type inference that catches what is wrong
 * whatever the fields hold (`"a" * 2`, `x / 0`, `temp + 1` used as a condition) when the
 * profile is stored rather than on every message.
 * @module
 */
import { ExpressionError } from "./errors.ts";
import { type Expr, parseExpression } from "./expression.ts";

/** The static type of an expression; fields are `unknown` until evaluated. */
export type ExprType = "number" | "string" | "boolean" | "null" | "unknown";

/**
 * Infer the type of `e`.
 * @throws {ExpressionError} when an operator or function gets an operand of a wrong type.
 */
export function inferType(e: Expr): ExprType {
  switch (e.kind) {
    case "literal":
      return e.value === null ? "null" : typeof e.value as ExprType;
    case "field":
      return "unknown";
    case "unary":
      return need(inferType(e.operand), e.op === "!" ? "boolean" : "number", e.op, e.pos);
    case "call":
      for (const a of e.args) need(inferType(a), "number", `${e.fn}()`, e.pos);
      return "number";
    case "binary": {
      const l = inferType(e.left);
      const r = inferType(e.right);
      switch (e.op) {
        case "&&":
        case "||":
          need(l, "boolean", e.op, e.pos);
          need(r, "boolean", e.op, e.pos);
          return "boolean";
        case "==":
        case "!=":
          return "boolean";
        case "<":
        case "<=":
        case ">":
        case ">=":
          ordered(l, r, e.op, e.pos);
          return "boolean";
        case "+":
          return ordered(l, r, e.op, e.pos);
        default:
          need(l, "number", e.op, e.pos);
          need(r, "number", e.op, e.pos);
          if ((e.op === "/" || e.op === "%") && e.right.kind === "literal" && e.right.value === 0) {
            throw new ExpressionError("Division by zero", e.pos);
          }
          return "number";
      }
    }
  }
}

/**
 * Parse a rule condition: it must parse, type-check, and yield a boolean (or a value only
 * known once the fields are, such as a bare field name).
 * @throws {ExpressionError}
 */
export function parseCondition(src: string): Expr {
  const ast = parseExpression(src);
  const t = inferType(ast);
  if (t !== "boolean" && t !== "unknown") {
    throw new ExpressionError(`Expression yields a ${t}, not a boolean`, 0);
  }
  return ast;
}

function need(t: ExprType, want: "number" | "boolean", op: string, pos: number): ExprType {
  if (t !== "unknown" && t !== want) {
    throw new ExpressionError(`Operator "${op}" needs ${want}s, got ${t}`, pos);
  }
  return want;
}

/** Operands of `<`-like operators and `+`: two numbers or two strings. */
function ordered(l: ExprType, r: ExprType, op: string, pos: number): ExprType {
  for (const t of [l, r]) {
    if (t !== "unknown" && t !== "number" && t !== "string") {
      throw new ExpressionError(`Operator "${op}" needs numbers or strings, got ${t}`, pos);
    }
  }
  if (l !== "unknown" && r !== "unknown" && l !== r) {
    throw new ExpressionError(`Operator "${op}" cannot combine ${l} and ${r}`, pos);
  }
  return l !== "unknown" ? l : r;
}
