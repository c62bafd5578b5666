/**
 * The two error conditions of the rules engine: a profile expression that does not parse,
 * and a rule that fails while it is evaluated.
 * @module
 */

/**
 * An expression that does not parse or is ill-typed. `pos` is the 0-based offset in the
 * source where the problem was found; the message names it too.
 *
 * @example
 * ```ts
 * // new ExpressionError('Unexpected token ")"', 14).message === 'Unexpected token ")" at 14'
 * ```
 */
export class ExpressionError extends Error {
  override name = "ExpressionError";
  /** Stable machine-readable code. */
  readonly code = "expression_invalid";
  /** Creates the error; `at {pos}` is appended to `message`. */
  constructor(message: string, readonly pos: number) {
    super(`${message} at ${pos}`);
  }
}

/**
 * A rule failed while it was evaluated (division by zero, a string where a number was
 * needed, ...). The engine marks the rule faulted and carries on with the other rules.
 */
export class RuleFault extends Error {
  override name = "RuleFault";
  /** Stable machine-readable code. */
  readonly code = "rule_fault";
  /** Creates the fault. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}
