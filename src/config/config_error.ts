/**
 * The one error of configuration: which variable is wrong, and why.
 * @module
 */
/** A configuration problem, naming the variable. */
export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(readonly variable: string, message: string) {
    super(`Invalid configuration: ${variable}: ${message}`);
  }
}
