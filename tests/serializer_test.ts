import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { JSON_SERIALIZER } from "../mod.ts";

describe("JSON_SERIALIZER.validate()", () => {
  it("accepts every JSON value, nested", () => {
    const value = {
      s: "é ✓ \u2028",
      n: -1.5,
      z: 0,
      b: true,
      nothing: null,
      list: [1, "two", { three: [3] }],
      bare: Object.assign(Object.create(null), { x: 1 }),
    };
    JSON_SERIALIZER.validate("value", value);
    assert.deepEqual(
      JSON_SERIALIZER.parse(JSON_SERIALIZER.stringify({ value })),
      JSON.parse(JSON.stringify({ value })),
    );
  });

  const rejected: [string, unknown, RegExp][] = [
    ["a function", () => 1, /a function/],
    ["undefined", undefined, /undefined/],
    ["a nested undefined", { a: { b: undefined } }, /x\.a\.b is undefined/],
    ["a Date", new Date(), /Date, not a plain object/],
    ["a Map", new Map(), /Map, not a plain object/],
    ["a Set in an array", [new Set()], /x\[0\] is a Set/],
    ["a BigInt", 10n, /a bigint/],
    ["a symbol", Symbol("s"), /a symbol/],
    ["NaN", NaN, /NaN/],
    ["Infinity", { n: Infinity }, /Infinity/],
    ["a sparse array", [1, , 3], /hole/],
    ["a class instance", new (class Point {})(), /Point, not a plain object/],
    ["symbol keys", { [Symbol("k")]: 1 }, /symbol keys/],
  ];
  for (const [what, value, message] of rejected) {
    it(`rejects ${what} with a TypeError`, () => {
      assert.throws(() => JSON_SERIALIZER.validate("x", value), {
        name: "TypeError",
        message,
      });
    });
  }

  it("rejects a cycle", () => {
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    assert.throws(() => JSON_SERIALIZER.validate("x", cycle), {
      name: "TypeError",
      message: /cycle/,
    });
  });

  it("accepts the same object twice when it is not a cycle", () => {
    const shared = { a: 1 };
    JSON_SERIALIZER.validate("x", [shared, shared]);
  });
});

describe("JSON_SERIALIZER.parse()", () => {
  it("rejects JSON that is not an object", () => {
    for (const text of ["[]", "1", '"s"', "null"]) {
      assert.throws(() => JSON_SERIALIZER.parse(text), TypeError, text);
    }
  });
});
