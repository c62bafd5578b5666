/**
 * The errors of the config template store: not found, version conflict, concurrent change,
 * too many templates.
 * @module
 */
import { TwinmillError } from "../errors.ts";

/** No config template has this name (404 `config_not_found`). */
export class ConfigNotFoundError extends TwinmillError {
  override name = "ConfigNotFoundError";
  constructor(name: string) {
    super("config_not_found", 404, `Config "${name}" not found`);
  }
}

/** `If-Match` named a config version that is not the current one (412 `version_conflict`). */
export class ConfigVersionConflictError extends TwinmillError {
  override name = "ConfigVersionConflictError";
  constructor(name: string, expected: number, actual: number | null) {
    super(
      "version_conflict",
      412,
      actual === null
        ? `Config "${name}" does not exist, not at version ${expected}`
        : `Config "${name}" is at version ${actual}, not ${expected}: reload and retry`,
    );
  }
}

/** Concurrent writers kept changing the template (409 `config_conflict`). */
export class ConfigConflictError extends TwinmillError {
  override name = "ConfigConflictError";
  constructor(name: string) {
    super("config_conflict", 409, `Config "${name}" is being changed concurrently; retry`);
  }
}

/** `max` templates exist already (409 `too_many_configs`). */
export class TooManyConfigsError extends TwinmillError {
  override name = "TooManyConfigsError";
  constructor(max: number) {
    super("too_many_configs", 409, `At most ${max} configs: delete one first`);
  }
}
