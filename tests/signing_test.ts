// Django's django.core.signing, rebuilt: the format, the vectors and the
// behaviours of Django's own signing tests (tests/signing/tests.py), and
// what Tessera adds (rotation feedback, a bound on inflation).

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { deflateSync } from "node:zlib";
import {
  BadSignatureError,
  dumps,
  dumpsJson,
  loads,
  loadsJson,
  sign,
  SignatureExpiredError,
  unsign,
  verify,
} from "../mod.ts";
import * as signingSubpath from "../src/signing.ts";
import { decodeBase62, encodeBase62 } from "../src/_base62.ts";

const SECRET = "predictable-secret";
const NOW = Date.UTC(2030, 0, 1);

// Django's test_unsign_detects_tampering / test_decode_detects_tampering.
const TAMPERINGS: [string, (s: string) => string][] = [
  ["upper-cased", (s) => s.toUpperCase()],
  ["extended", (s) => s + "a"],
  ["first character changed", (s) => "a" + s.slice(1)],
  ["separators removed", (s) => s.replaceAll(":", "")],
];

function payloadOf(signed: string): string {
  return signed.split(":")[0]!;
}

function decodePayload(payload: string): string {
  return new TextDecoder().decode(Uint8Array.fromBase64(payload, { alphabet: "base64url" }));
}

describe("sign() and unsign()", () => {
  it("sign() with timestamp: false gives Django's Signer vector", async () => {
    // Django's test_valid_sep: Signer(key="predictable-secret").sign("foo").
    assert.equal(
      await sign("foo", { secret: SECRET, timestamp: false }),
      "foo:jZQoX_FtSO70jX9HLRGg2A_2s4kdDBxz1QoO_OpEQb0",
    );
  });

  it("sign() writes value:timestamp:signature with a base62 timestamp of whole seconds", async () => {
    const signed = await sign("hello", { secret: SECRET, now: NOW + 999 });
    const [value, timestamp, signature] = signed.split(":");
    assert.equal(value, "hello");
    assert.equal(timestamp, encodeBase62(NOW / 1000));
    assert.match(signature!, /^[A-Za-z0-9_-]{43}$/);
  });

  it("unsign() reverses sign() for Django's examples", async () => {
    // Django's test_sign_unsign.
    for (
      const example of [
        "q;wjmbk;wkmb",
        "3098247529087",
        "3098247:529:087:",
        "jkw osanteuh ,rcuh nthu aou oauh ,ud du",
        "\u2019",
      ]
    ) {
      for (const timestamp of [true, false]) {
        const signed = await sign(example, { secret: SECRET, timestamp });
        assert.notEqual(signed, example);
        assert.equal(await unsign(signed, { secret: SECRET, timestamp }), example);
      }
    }
  });

  for (const [name, tamper] of TAMPERINGS) {
    it(`unsign() rejects a signed value ${name} with BadSignatureError`, async () => {
      const signed = await sign("Another string", { secret: SECRET });
      await assert.rejects(unsign(tamper(signed), { secret: SECRET }), BadSignatureError);
    });
  }

  it("unsign() rejects a truncated value and a value with no separator", async () => {
    const signed = await sign("hello", { secret: SECRET });
    for (const cut of [1, 10, 43, 44, signed.length - 1]) {
      await assert.rejects(unsign(signed.slice(0, cut), { secret: SECRET }), BadSignatureError);
    }
    await assert.rejects(unsign("hello", { secret: SECRET }), {
      name: "BadSignatureError",
      message: 'No ":" found in the signed value',
    });
  });

  it("unsign() accepts only the canonical spelling of a signature, as Django compares text", async () => {
    const signed = await sign("hello", { secret: SECRET });
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const last = alphabet.indexOf(signed.at(-1)!);
    assert.equal(last & 3, 0);
    // Same 256 bits once decoded, but a different string.
    const variant = signed.slice(0, -1) + alphabet[last | 1];
    await assert.rejects(unsign(variant, { secret: SECRET }), BadSignatureError);
    await assert.rejects(unsign(signed + "=", { secret: SECRET }), BadSignatureError);
  });

  it("a salt separates uses of one secret", async () => {
    // Django's test_signature_with_salt.
    const one = await sign("hello", { secret: SECRET, salt: "one", timestamp: false });
    const two = await sign("hello", { secret: SECRET, salt: "two", timestamp: false });
    assert.notEqual(one, two);
    await assert.rejects(unsign(one, { secret: SECRET, salt: "two", timestamp: false }));
    assert.equal(await unsign(one, { secret: SECRET, salt: "one", timestamp: false }), "hello");
  });

  it("maxAge: accepted up to the limit, SignatureExpiredError past it", async () => {
    // Django's test_timestamp_signer, with freeze_time(123456789) then 123456800.
    const signed = await sign("hello", { secret: "predictable-key", now: 123456789_000 });
    const options = { secret: "predictable-key", now: 123456800_000 };
    assert.equal(await unsign(signed, { ...options, maxAge: 12 }), "hello");
    assert.equal(await unsign(signed, { ...options, maxAge: 11 }), "hello");
    await assert.rejects(unsign(signed, { ...options, maxAge: 10 }), {
      name: "SignatureExpiredError",
      message: "Signature age 11 > 10 seconds",
    });
    await assert.rejects(unsign(signed, { ...options, maxAge: 10 }), BadSignatureError);
  });

  it("a value signed without a timestamp does not pass as a timestamped one", async () => {
    const signed = await sign("hello", { secret: SECRET, timestamp: false, salt: "s" });
    await assert.rejects(unsign(signed, { secret: SECRET, salt: "s" }), BadSignatureError);
  });
});

describe("secret rotation", () => {
  it("the first secret signs and every secret verifies; verify() says which", async () => {
    // Django's test_verify_with_non_default_key and test_sign_unsign_multiple_keys.
    const secret = ["newsecret", "othersecret", "secret"];
    const old = await sign("abc", { secret: "secret" });
    assert.deepEqual(await verify(old, { secret, now: Date.now() }), {
      value: "abc",
      timestamp: decodeBase62(old.split(":")[1]!),
      secretIndex: 2,
    });
    const current = await sign("abc", { secret });
    assert.equal((await verify(current, { secret: "newsecret" })).secretIndex, 0);
    await assert.rejects(unsign(current, { secret: "secret" }), BadSignatureError);
  });

  it("a secret no longer listed no longer verifies", async () => {
    // Django's test_sign_unsign_ignore_secret_key_fallbacks.
    const signed = await sign("abc", { secret: "oldsecret" });
    await assert.rejects(unsign(signed, { secret: ["secret"] }), BadSignatureError);
  });

  it("verification makes no WebCrypto call and finds the secret at any position of the list", async () => {
    // Signatures are computed with node:crypto, synchronously: a WebCrypto
    // call costs tens of microseconds and a task hop.
    const proto = SubtleCrypto.prototype as unknown as Record<string, unknown>;
    const stubbed = ["sign", "verify", "importKey", "digest"];
    const originals = stubbed.map((name) => proto[name]);
    let calls = 0;
    for (const name of stubbed) {
      proto[name] = () => {
        calls++;
        throw new Error(`crypto.subtle.${name} was called`);
      };
    }
    try {
      const secret = ["first-secret", "second-secret", "third-secret"];
      for (const [index, one] of secret.entries()) {
        const signed = await sign("abc", { secret: one });
        assert.deepEqual(await verify(signed, { secret }), {
          value: "abc",
          timestamp: decodeBase62(signed.split(":")[1]!),
          secretIndex: index,
        });
        await assert.rejects(unsign(signed.replace("abc", "abd"), { secret }), BadSignatureError);
      }
      assert.equal(calls, 0);
    } finally {
      stubbed.forEach((name, i) => (proto[name] = originals[i]));
    }
  });
});

describe("dumps() and loads()", () => {
  const OBJECTS = [["a", "list"], "a string \u2019", { a: "dictionary" }];

  it("loads() reverses dumps() for Django's objects, compressed or not", async () => {
    // Django's test_dumps_loads.
    for (const value of OBJECTS) {
      for (const compress of [false, true]) {
        const signed = await dumps(value, { secret: SECRET, compress });
        assert.deepEqual(await loads(signed, { secret: SECRET }), value);
      }
    }
  });

  for (const [name, tamper] of TAMPERINGS) {
    it(`loads() rejects a value ${name} with BadSignatureError`, async () => {
      const signed = await dumps({ foo: "bar", baz: 1 }, { secret: SECRET });
      await assert.rejects(loads(tamper(signed), { secret: SECRET }), BadSignatureError);
    });
  }

  it("compresses only when that saves more than one byte, and marks it with '.'", async () => {
    const texts = [
      "a",
      "ab".repeat(3),
      "abc".repeat(5),
      "abcdefgh".repeat(3),
      "the quick brown fox",
      "x".repeat(200),
    ];
    for (const text of texts) {
      const json = JSON.stringify(text);
      const saves = deflateSync(new TextEncoder().encode(json)).length < json.length - 1;
      const signed = await dumps(text, { secret: SECRET, compress: true });
      assert.equal(signed.startsWith("."), saves, text);
      assert.equal(await loads(signed, { secret: SECRET }), text);
    }
    const plain = await dumps("x".repeat(200), { secret: SECRET });
    assert.equal(plain.startsWith("."), false);
  });

  it("writes base64url without padding for every remainder", async () => {
    for (let length = 1; length <= 6; length++) {
      const signed = await dumps("é" + "a".repeat(length), { secret: SECRET });
      const payload = payloadOf(signed);
      assert.match(payload, /^[A-Za-z0-9_-]+$/);
      assert.equal(decodePayload(payload), `"\\u00e9${"a".repeat(length)}"`);
    }
  });

  it("writes compact JSON with non-ASCII escaped as Python's ensure_ascii does", async () => {
    const value = { name: "Zoë", snake: "\u{1F40D}", del: "\x7f", tab: "\t", line: "\u2028" };
    const signed = await dumps(value, { secret: SECRET });
    assert.equal(
      decodePayload(payloadOf(signed)),
      '{"name":"Zo\\u00eb","snake":"\\ud83d\\udc0d","del":"\\u007f","tab":"\\t","line":"\\u2028"}',
    );
    assert.deepEqual(await loads(signed, { secret: SECRET }), value);
  });

  it("loads() reads a payload of raw UTF-8 too, as newer Django does", async () => {
    const payload = new TextEncoder().encode('{"text":"héllo"}').toBase64({
      alphabet: "base64url",
      omitPadding: true,
    });
    const signed = await sign(payload, { secret: SECRET, salt: "django.core.signing" });
    assert.deepEqual(await loads(signed, { secret: SECRET }), { text: "héllo" });
  });

  it("loadsJson() gives the JSON text, the timestamp and the secret's index", async () => {
    const signed = await dumpsJson('{"a":"ü"}', { secret: "old-secret", now: NOW });
    assert.deepEqual(await loadsJson(signed, { secret: ["new-secret", "old-secret"] }), {
      json: '{"a":"\\u00fc"}',
      timestamp: NOW / 1000,
      secretIndex: 1,
    });
  });

  it("loads() checks maxAge", async () => {
    const signed = await dumps("x", { secret: SECRET, now: NOW });
    assert.equal(await loads(signed, { secret: SECRET, maxAge: 60, now: NOW + 60_000 }), "x");
    await assert.rejects(
      loads(signed, { secret: SECRET, maxAge: 60, now: NOW + 61_000 }),
      SignatureExpiredError,
    );
  });

  it("dumps() refuses a value with no JSON form", async () => {
    await assert.rejects(dumps(undefined, { secret: SECRET }), {
      name: "TypeError",
      message: /no JSON form/,
    });
    await assert.rejects(dumps(() => 1, { secret: SECRET }), TypeError);
  });
});

describe("decompression bombs", () => {
  // 16 MiB of zeros deflate to about 16 KB.
  const bomb = deflateSync(new Uint8Array(16 * 1024 * 1024)).toBase64({
    alphabet: "base64url",
    omitPadding: true,
  });

  it("a forged compressed payload is refused by its signature before any inflating", async () => {
    const forged = `.${bomb}:${encodeBase62(NOW / 1000)}:${"A".repeat(43)}`;
    // A RangeError would mean it was inflated first.
    await assert.rejects(loads(forged, { secret: SECRET }), BadSignatureError);
  });

  it("a correctly signed payload inflates no further than maxSize", async () => {
    const signed = await sign(`.${bomb}`, { secret: SECRET, salt: "django.core.signing" });
    await assert.rejects(loads(signed, { secret: SECRET }), {
      name: "RangeError",
      message: /over 'maxSize', 1048576 bytes/,
    });
    await assert.rejects(loads(signed, { secret: SECRET, maxSize: 1000 }), RangeError);
  });

  it("an uncompressed payload over maxSize is refused too", async () => {
    const signed = await dumps("x".repeat(2000), { secret: SECRET });
    await assert.rejects(loads(signed, { secret: SECRET, maxSize: 1000 }), RangeError);
    assert.equal(await loads(signed, { secret: SECRET, maxSize: 2002 }), "x".repeat(2000));
  });

  it("a correctly signed payload that is not base64, zlib or JSON is an error, not a crash", async () => {
    const options = { secret: SECRET, salt: "django.core.signing" };
    await assert.rejects(loads(await sign("not*base64", options), options), TypeError);
    await assert.rejects(loads(await sign(".bm90IHpsaWI", options), options), TypeError);
    await assert.rejects(loads(await sign("bm90IEpTT04", options), options), SyntaxError);
  });
});

describe("options of the signing functions", () => {
  it("a missing or empty secret is a TypeError that shows no secret", async () => {
    for (const secret of [undefined, "", [], [""], [1]]) {
      await assert.rejects(sign("x", { secret: secret as string }), {
        name: "TypeError",
        message: /'secret' must be a non-empty string/,
      });
    }
    await assert.rejects(unsign("x:y", { secret: [] }), TypeError);
  });

  it("a bad salt, maxAge, maxSize or now is a TypeError naming it", async () => {
    const signed = await dumps(1, { secret: SECRET });
    await assert.rejects(sign("x", { secret: SECRET, salt: 1 as unknown as string }), /'salt'/);
    await assert.rejects(loads(signed, { secret: SECRET, maxAge: -1 }), /'maxAge'/);
    await assert.rejects(loads(signed, { secret: SECRET, maxSize: 1.5 }), /'maxSize'/);
    await assert.rejects(sign("x", { secret: SECRET, now: Number.NaN }), /'now'/);
  });

  it("the ./signing subpath exports the same functions", () => {
    assert.equal(signingSubpath.dumps, dumps);
    assert.equal(signingSubpath.BadSignatureError, BadSignatureError);
  });
});

describe("base62", () => {
  it("round-trips Django's TestBase62 numbers", () => {
    const numbers = [-(10 ** 10), 10 ** 10, 1620378259];
    for (let i = -100; i < 100; i++) numbers.push(i);
    for (const n of numbers) assert.equal(decodeBase62(encodeBase62(n)), n);
  });

  it("uses Django's alphabet 0-9A-Za-z", () => {
    assert.equal(encodeBase62(0), "0");
    assert.equal(encodeBase62(61), "z");
    assert.equal(encodeBase62(62), "10");
    assert.equal(encodeBase62(-62), "-10");
    assert.equal(encodeBase62(1717171717), "1sD4o1");
  });

  it("decodes nothing that is not base62 or past the safe integers", () => {
    for (const text of ["", "-", "1.5", "a b", "+1", "zzzzzzzzzzzz"]) {
      assert.equal(decodeBase62(text), null, text);
    }
  });
});
