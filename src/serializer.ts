/**
 * How session data becomes the text a store keeps (Django's
 * `SESSION_SERIALIZER`).
 *
 * @module
 */

/** Session data: a plain object of JSON values, keyed by name. */
export type SessionData = Record<string, unknown>;

/**
 * Turns session data into text and back. The default, {@link JSON_SERIALIZER},
 * is Django's `JSONSerializer`.
 *
 * @example A serializer that records what it writes
 * ```ts
 * import { JSON_SERIALIZER, type Serializer } from "@tessera/sessions";
 *
 * const written: string[] = [];
 * const serializer: Serializer = {
 *   ...JSON_SERIALIZER,
 *   stringify(data) {
 *     const text = JSON_SERIALIZER.stringify(data);
 *     written.push(text);
 *     return text;
 *   },
 * };
 * ```
 */
export interface Serializer {
  /**
   * The data as text.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { JSON_SERIALIZER } from "@tessera/sessions";
   *
   * assert.equal(JSON_SERIALIZER.stringify({ a: 1 }), '{"a":1}');
   * ```
   */
  stringify(data: SessionData): string;
  /**
   * The data back from text; throws on text it did not write.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { JSON_SERIALIZER } from "@tessera/sessions";
   *
   * assert.deepEqual(JSON_SERIALIZER.parse('{"a":1}'), { a: 1 });
   * ```
   */
  parse(text: string): SessionData;
  /**
   * Throws a `TypeError` if `value` would not survive `stringify` then
   * `parse` unchanged. `Session.set()` calls it, so a bad value fails where
   * it is set, not at the end of the request.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { JSON_SERIALIZER } from "@tessera/sessions";
   *
   * assert.throws(() => JSON_SERIALIZER.validate("when", new Date()), TypeError);
   * ```
   */
  validate(name: string, value: unknown): void;
}

/**
 * Django's default serializer: compact JSON. It accepts exactly the values
 * JSON represents faithfully (strings, finite numbers, booleans, `null`,
 * arrays and plain objects of them) and rejects the rest: a function,
 * `undefined`, a `Date`, a `Map`, a `BigInt`, `NaN`, a sparse array, a cycle.
 *
 * @example Round trip
 * ```ts
 * import assert from "node:assert/strict";
 * import { JSON_SERIALIZER } from "@tessera/sessions";
 *
 * const text = JSON_SERIALIZER.stringify({ cart: [1, 2] });
 * assert.deepEqual(JSON_SERIALIZER.parse(text), { cart: [1, 2] });
 * ```
 */
export const JSON_SERIALIZER: Serializer = {
  stringify(data: SessionData): string {
    return JSON.stringify(data);
  },
  parse(text: string): SessionData {
    const value: unknown = JSON.parse(text);
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new TypeError("Cannot read session data as it is not a JSON object");
    }
    return value as SessionData;
  },
  validate(name: string, value: unknown): void {
    const problem = findUnfaithfulJson(value, name, []);
    if (problem !== null) {
      throw new TypeError(
        `Cannot store '${name}' in the session as JSON cannot represent it faithfully: ${problem}`,
      );
    }
  },
};

// Returns why `value` would change through JSON, or null when it would not.
function findUnfaithfulJson(
  value: unknown,
  path: string,
  ancestors: object[],
): string | null {
  switch (typeof value) {
    case "string":
    case "boolean":
      return null;
    case "number":
      return Number.isFinite(value) ? null : `${path} is ${value}`;
    case "object":
      break;
    default:
      return `${path} is ${typeof value === "undefined" ? "undefined" : `a ${typeof value}`}`;
  }
  if (value === null) return null;
  if (ancestors.includes(value)) return `${path} refers back to itself (a cycle)`;
  ancestors.push(value);
  try {
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        if (!(i in value)) return `${path}[${i}] is a hole in a sparse array`;
        const problem = findUnfaithfulJson(value[i], `${path}[${i}]`, ancestors);
        if (problem !== null) return problem;
      }
      return null;
    }
    const prototype = Object.getPrototypeOf(value);
    if (prototype !== Object.prototype && prototype !== null) {
      const kind = (value as { constructor?: { name?: string } }).constructor?.name ?? "object";
      return `${path} is a ${kind}, not a plain object (convert it first, e.g. a Date to an ISO string)`;
    }
    if (Object.getOwnPropertySymbols(value).length > 0) {
      return `${path} has symbol keys`;
    }
    for (const [key, item] of Object.entries(value)) {
      const problem = findUnfaithfulJson(item, `${path}.${key}`, ancestors);
      if (problem !== null) return problem;
    }
    return null;
  } finally {
    ancestors.pop();
  }
}
