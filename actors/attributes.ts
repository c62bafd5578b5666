/**
 * Attribute names. Attributes are matched by name everywhere (list filters, config and
 * campaign selectors, InfluxDB tags), so a name must be data and nothing else: the names every
 * JavaScript object already has — `__proto__` (assigning it changes the object's prototype),
 * `constructor`, `prototype` — are refused wherever an attribute name comes in, rather than
 * dropped or matched against object machinery.
 * @module
 */

/** Names refused as attribute names. */
export const RESERVED_ATTRIBUTE_NAMES: readonly string[] = [
  "__proto__",
  "constructor",
  "prototype",
];

const RESERVED = new Set(RESERVED_ATTRIBUTE_NAMES);

/** Longest attribute name. */
export const MAX_ATTRIBUTE_NAME = 128;

/** True for `__proto__`, `constructor` and `prototype`. */
export function isReservedAttributeName(name: string): boolean {
  return RESERVED.has(name);
}

/** Why `name` cannot be an attribute name, or undefined when it can. */
export function attributeNameProblem(name: string): string | undefined {
  if (name.length < 1 || name.length > MAX_ATTRIBUTE_NAME) {
    return `attribute names are 1-${MAX_ATTRIBUTE_NAME} characters`;
  }
  if (RESERVED.has(name)) {
    return `"${name}" is reserved (every JavaScript object has it), not an attribute name`;
  }
  return undefined;
}
