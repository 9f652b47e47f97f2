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
    [
      "an array with a property",
      Object.assign([1, 2], { extra: 3 }),
      /x is an array with a property 'extra' that JSON leaves out/,
    ],
    [
      "a RegExp match (index, input, groups)",
      /b/.exec("abc"),
      /x is an array with a property 'index'/,
    ],
    ["an array with a symbol key", Object.assign([1], { [Symbol("k")]: 1 }), /x has symbol keys/],
    ["an Array subclass", new (class Stack extends Array {})(), /x is a Stack, not a plain array/],
    [
      "a property that is not enumerable",
      Object.defineProperty({ a: 1 }, "hidden", { value: 2, enumerable: false }),
      /x has a property 'hidden' that is not enumerable/,
    ],
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

describe("JSON_SERIALIZER.stringify()", () => {
  it("refuses data whose values were changed in place into what JSON cannot hold", () => {
    const cart: unknown[] = [1];
    const data = { cart };
    JSON_SERIALIZER.validate("cart", cart);
    for (
      const [change, message] of [
        [() => cart.push(cart), /'cart'.*cart\[1\] refers back to itself \(a cycle\)/],
        [() => cart.splice(1, 1, new Date(0)), /'cart'.*cart\[1\] is a Date/],
        [() => cart.splice(1, 1, () => 1), /'cart'.*cart\[1\] is a function/],
      ] as const
    ) {
      change();
      assert.throws(() => JSON_SERIALIZER.stringify(data), {
        name: "TypeError",
        message: new RegExp(`^Cannot save the session as JSON cannot represent ${message.source}`),
      });
    }
  });

  it("writes -0 as 0, which parses back equal to it", () => {
    JSON_SERIALIZER.validate("n", -0);
    const back = JSON_SERIALIZER.parse(JSON_SERIALIZER.stringify({ n: -0 })).n;
    assert.ok(Object.is(back, 0));
    assert.equal(back, 0); // and -0 == 0, so code that compares sees no change
  });

  it("keeps an array that is only its items, and an array with a length but no extras", () => {
    const grown = [1, 2];
    grown.length = 2;
    const text = JSON_SERIALIZER.stringify({ list: [[1], [], grown] });
    assert.equal(text, '{"list":[[1],[],[1,2]]}');
  });
});

describe("JSON_SERIALIZER.parse()", () => {
  it("rejects JSON that is not an object", () => {
    for (const text of ["[]", "1", '"s"', "null"]) {
      assert.throws(() => JSON_SERIALIZER.parse(text), TypeError, text);
    }
  });
});
