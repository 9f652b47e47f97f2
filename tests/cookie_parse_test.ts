// The Cookie parser's work per byte: an attacker chooses the header, so the
// characters the parser examines must grow linearly with its length, whatever
// its shape (SPEC section 6). Wall-clock figures are in
// bench/cookie_parse_bench.ts; this counts work, not time.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { readCookie } from "../src/cookie.ts";

/**
 * A header that counts the characters the String methods called on it
 * examine. Any other way of reading it (a RegExp, a template literal, a
 * comparison) converts it to a primitive, which throws, so no work escapes
 * the count.
 */
class MeteredHeader extends String {
  examined = 0;
  readonly #text: string;

  constructor(text: string) {
    super(text);
    this.#text = text;
  }

  #scanned(from: number, found: number, needle: string): number {
    const start = Math.max(0, Math.min(from, this.#text.length));
    this.examined += (found === -1 ? this.#text.length : found + needle.length) - start;
    return found;
  }

  override indexOf(needle: string, from = 0): number {
    return this.#scanned(from, this.#text.indexOf(needle, from), needle);
  }

  override includes(needle: string, from = 0): boolean {
    return this.#scanned(from, this.#text.indexOf(needle, from), needle) !== -1;
  }

  override lastIndexOf(needle: string, from = Infinity): number {
    const found = this.#text.lastIndexOf(needle, from);
    const start = Math.min(from, this.#text.length - 1);
    this.examined += start - (found === -1 ? -1 : found) + 1;
    return found;
  }

  override charCodeAt(index: number): number {
    this.examined++;
    return this.#text.charCodeAt(index);
  }

  override slice(start?: number, end?: number): string {
    const piece = this.#text.slice(start, end);
    this.examined += piece.length;
    return piece;
  }

  override startsWith(needle: string, at = 0): boolean {
    this.examined += needle.length;
    return this.#text.startsWith(needle, at);
  }

  override valueOf(): string {
    throw new Error("The parser read the header without a metered String method");
  }

  override toString(): string {
    return this.valueOf();
  }
}

function work(text: string, name = "sessionid"): { value: string | undefined; perByte: number } {
  const header = new MeteredHeader(text);
  const value = readCookie(header as unknown as string, name);
  return { value, perByte: header.examined / text.length };
}

// About 120 KB each, the largest Cookie header a server is likely to accept.
const SIZE = 120_000;
const fill = (unit: string, tail: string) =>
  unit.repeat(Math.ceil((SIZE - tail.length) / unit.length)) + tail;

const hostile: [string, string, string | undefined][] = [
  ["segments without '=' before the cookie", fill("x;", "sessionid=k"), "k"],
  ["segments without '=' and no cookie", fill("x;", " sessionid"), undefined],
  ["empty segments", fill(";", "sessionid=k"), "k"],
  ["'=' only at the very end", fill("sessionid;", "="), undefined],
  ["long names that contain the name", fill("sessionidsessionid=;", "sessionid=k"), "k"],
  ["the name as a whole segment, again and again", fill("sessionid;", "sessionid=k"), "k"],
  ["whitespace around every segment", fill("  ;  ", "sessionid=k"), "k"],
  ["many '=' in one value", `a=${"=".repeat(SIZE)}; sessionid=k`, "k"],
  ["one huge name", `${"s".repeat(SIZE)}=1; sessionid=k`, "k"],
];

describe("readCookie(): work per byte of the header", () => {
  for (const [shape, text, expected] of hostile) {
    it(`examines each byte a bounded number of times: ${shape}`, () => {
      const { value, perByte } = work(text);
      assert.equal(value, expected);
      console.log(`${shape}: ${perByte.toFixed(2)} characters examined per byte`);
      assert.ok(perByte <= 4, `${perByte.toFixed(1)} characters examined per byte`);
    });
  }

  it("does the same work per byte at 1 KB, 12 KB and 120 KB (linear, not quadratic)", () => {
    const perByte = [1_000, 12_000, 120_000].map((size) =>
      work("x;".repeat(size / 2) + "sessionid=k").perByte
    );
    console.log(`per byte at 1 KB, 12 KB, 120 KB: ${perByte.map((n) => n.toFixed(2)).join(", ")}`);
    assert.ok(perByte[2]! <= perByte[0]! * 1.1, perByte.join(", "));
  });

  it("examines a normal header of the same size within the same bound", () => {
    const pairs = [];
    for (let size = 0; size < SIZE; size += 50) {
      pairs.push(`pref_${pairs.length}=${"v".repeat(40)}`);
    }
    pairs.push("sessionid=k");
    const normal = work(pairs.join("; "));
    assert.equal(normal.value, "k");
    console.log(`a normal header: ${normal.perByte.toFixed(2)} characters examined per byte`);
    assert.ok(normal.perByte <= 4, `${normal.perByte.toFixed(1)} per byte`);
  });
});

// The parser before it was made linear: it searched for "=" from the start
// of every segment. Its answers are the behaviour to keep.
function quadraticReadCookie(header: string | null, name: string): string | undefined {
  if (header === null || !header.includes(name)) return undefined;
  let start = 0;
  while (start < header.length) {
    let end = header.indexOf(";", start);
    if (end === -1) end = header.length;
    const equals = header.indexOf("=", start);
    if (equals !== -1 && equals < end && header.slice(start, equals).trim() === name) {
      const value = header.slice(equals + 1, end).trim();
      return value.length >= 2 && value.startsWith('"') && value.endsWith('"')
        ? value.slice(1, -1)
        : value;
    }
    start = end + 1;
  }
  return undefined;
}

describe("readCookie(): the same answers as before", () => {
  it("agrees with the previous parser on any header made of cookie syntax", () => {
    // Few characters, so that names, quotes, spaces and separators collide often.
    const piece = fc.constantFrom("s", "sid", "x", "=", ";", " ", "\t", '"', "a", "; ", "sid=");
    const header = fc.array(piece, { maxLength: 40 }).map((parts) => parts.join(""));
    let found = 0;
    fc.assert(
      fc.property(header, fc.constantFrom("sid", "s", "x"), (text, name) => {
        const value = readCookie(text, name);
        if (value !== undefined) found++;
        assert.equal(value, quadraticReadCookie(text, name), JSON.stringify(text));
      }),
      { numRuns: 20_000, seed: 12 },
    );
    console.log(`20000 headers, ${found} with the cookie found, 0 disagreements`);
  });
});
