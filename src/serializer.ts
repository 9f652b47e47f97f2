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
   * The data as text. Throws a `TypeError` if a value no longer survives the
   * round trip (it was changed in place after `set()`): the save then fails
   * rather than store something else.
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
 * `undefined`, a `Date`, a `Map`, a `BigInt`, `NaN`, a sparse array, an
 * array with properties besides its items, a property that is not
 * enumerable, a cycle. `-0` is accepted and comes back as `0`, as JSON has
 * no negative zero (the two are `===`).
 *
 * `stringify` checks the whole data again, since a value can be changed in
 * place after `set()` checked it: a session that no longer fits JSON fails
 * to save with a `TypeError` naming the key, instead of being written
 * changed.
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
    // A value can be changed in place after set() checked it; check it again
    // here rather than write what JSON.stringify would silently turn a Date
    // into or drop a function from.
    for (const [name, value] of Object.entries(data)) {
      const problem = findUnfaithfulJson(value, name, []);
      if (problem !== null) {
        throw new TypeError(
          `Cannot save the session as JSON cannot represent '${name}' faithfully, which was changed in place after set(): ${problem}`,
        );
      }
    }
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
      if (Object.getPrototypeOf(value) !== Array.prototype) {
        const kind = (value as { constructor?: { name?: string } }).constructor?.name ?? "array";
        return `${path} is a ${kind}, not a plain array (copy it first with [...array])`;
      }
      for (let i = 0; i < value.length; i++) {
        if (!(i in value)) return `${path}[${i}] is a hole in a sparse array`;
        const problem = findUnfaithfulJson(value[i], `${path}[${i}]`, ancestors);
        if (problem !== null) return problem;
      }
      // JSON keeps an array's items only: "length" is the one other own
      // property a plain array has.
      const names = Object.getOwnPropertyNames(value);
      if (names.length !== value.length + 1) {
        const extra = names.find((name) => name !== "length" && !isIndex(name, value.length));
        return `${path} is an array with a property '${extra}' that JSON leaves out (copy the items first with [...array])`;
      }
      if (Object.getOwnPropertySymbols(value).length > 0) return `${path} has symbol keys`;
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
    const entries = Object.entries(value);
    const names = Object.getOwnPropertyNames(value);
    if (names.length !== entries.length) {
      const hidden = names.find((name) => !Object.prototype.propertyIsEnumerable.call(value, name));
      return `${path} has a property '${hidden}' that is not enumerable, which JSON leaves out`;
    }
    for (const [key, item] of entries) {
      const problem = findUnfaithfulJson(item, `${path}.${key}`, ancestors);
      if (problem !== null) return problem;
    }
    return null;
  } finally {
    ancestors.pop();
  }
}

function isIndex(name: string, length: number): boolean {
  const index = Number(name);
  return Number.isInteger(index) && index >= 0 && index < length && String(index) === name;
}
