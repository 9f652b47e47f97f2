import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { generateKey, isValidKey, KEY_ALPHABET } from "../src/_key.ts";

describe("generateKey()", () => {
  it("gives 32 characters of a-z0-9", () => {
    for (let i = 0; i < 200; i++) assert.match(generateKey(), /^[a-z0-9]{32}$/);
  });

  it("gives a different key every time", () => {
    const keys = new Set(Array.from({ length: 5000 }, generateKey));
    assert.equal(keys.size, 5000);
  });

  it("uses every character of the alphabet about equally (no modulo bias)", () => {
    const counts = new Map<string, number>();
    const samples = 4000;
    for (let i = 0; i < samples; i++) {
      for (const char of generateKey()) counts.set(char, (counts.get(char) ?? 0) + 1);
    }
    const expected = (samples * 32) / KEY_ALPHABET.length;
    assert.equal(counts.size, KEY_ALPHABET.length);
    for (const [char, count] of counts) {
      // 6 standard deviations of a binomial count: a biased generator
      // (byte % 36 without rejection) puts 'a'-'d' about 14% high and fails.
      const sigma = Math.sqrt(expected * (1 - 1 / KEY_ALPHABET.length));
      assert.ok(Math.abs(count - expected) < 6 * sigma, `${char}: ${count} vs ${expected}`);
    }
  });
});

describe("isValidKey()", () => {
  it("accepts 8 to 40 characters of a-z0-9 (Django keeps '12345678')", () => {
    assert.equal(isValidKey("12345678"), true);
    assert.equal(isValidKey("a".repeat(40)), true);
    assert.equal(isValidKey(generateKey()), true);
  });

  it("rejects empty, short, long, and anything outside the alphabet", () => {
    for (
      const value of [
        "",
        "1234567",
        "a".repeat(41),
        "ABCDEFGH12345678",
        "abcdefgh/2345678",
        "abcdefgh\\2345678",
        "../../../etc/passwd",
        "abcdefgh.2345678",
        "abcdefgh\u00002345678",
        "abcdefghé2345678",
        "abcdefgh 2345678",
        null,
        undefined,
        12345678,
      ]
    ) {
      assert.equal(isValidKey(value), false, JSON.stringify(value));
    }
  });
});
