// The signed-cookie engine signs and verifies synchronously, with
// node:crypto: no WebCrypto call on a load or a save (each costs tens of
// microseconds of CPU and a task hop). Every WebCrypto method is replaced
// here by a stub that counts and throws, and the cookies that the earlier
// WebCrypto implementation and Django 3.2 signed must still load.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  CookieStore,
  dumpsJson,
  getSession,
  loads,
  sign,
  type StoredSession,
  unsign,
  withSessions,
} from "../../mod.ts";
import { RecordingLogger } from "../_config.ts";

const SECRET = "cookie-store-test-secret-of-at-least-32-bytes";
const OLD_SECRET = "the-previous-secret-also-of-at-least-32-bytes";
const FAR_EXPIRY = "2999-01-01T00:00:00.000Z";
// Long enough that the committed 2024 Django vectors are judged by their own expiry only.
const CENTURY = 3_155_760_000;

// Signed by the WebCrypto implementation at 2030-01-01T00:00:00Z, with the
// engine's salt; the custom expiry keeps them loadable until 2999.
const SMALL_JSON = JSON.stringify({ a: 1, name: "Zoë", _session_expiry: FAR_EXPIRY });
const SMALL_ESCAPED = SMALL_JSON.replace("ë", "\\u00eb");
const BIG_JSON = JSON.stringify({
  list: Array.from({ length: 40 }, (_, i) => i),
  _session_expiry: FAR_EXPIRY,
});
const WEBCRYPTO_SMALL =
  "eyJhIjoxLCJuYW1lIjoiWm9cdTAwZWIiLCJfc2Vzc2lvbl9leHBpcnkiOiIyOTk5LTAxLTAxVDAwOjAwOjAwLjAwMFoifQ:248kOu:c9GICjF0DSKdlO40bjQEfVykhLWp1gHZKnn9u0W4PO0";
const WEBCRYPTO_BIG =
  ".eJwdwjsKwlAQhtG93PpT5p-5z6zDSpFUKQKiYiwUce-Ch_NJl3V7pulkCCfIFCqNzkCGhBwFyqigihrqaOCGC3c88IwXvOIN7_ggjBDhRBCZKEQlGtGJcSbN27Jt6-06L6_7-ninKfkYY2famQ5m0__ezI7p-wONdyT5:248kOu:igYXWSbcjxj5MDtiH5ah5b1ppapXUm_jeqOp_Vti18g";
const WEBCRYPTO_OLD_SECRET =
  "eyJhIjoxLCJuYW1lIjoiWm9cdTAwZWIiLCJfc2Vzc2lvbl9leHBpcnkiOiIyOTk5LTAxLTAxVDAwOjAwOjAwLjAwMFoifQ:248kOu:ftGCEVDzk0hFweIrPTx8JV6FXPTntAErHqDZrHChwoo";
const SIGNED_AT = Date.UTC(2030, 0, 1);

interface Vector {
  name: string;
  kind: "sign" | "signer" | "dumps" | "session";
  secret: string;
  salt?: string;
  value: unknown;
  expiry?: number | string;
  signed: string;
  verify: { expect: string; now?: number; max_age?: number; salt?: string };
}

const DJANGO = JSON.parse(
  readFileSync(new URL("../fixtures/django_signed_vectors.json", import.meta.url), "utf8"),
) as { secret: string; vectors: Vector[] };

const STUBBED = ["sign", "verify", "importKey", "digest", "encrypt", "decrypt"] as const;

/**
 * Runs `run` with every WebCrypto method of `STUBBED` throwing, and returns
 * how many calls were made to them, restoring them in every case.
 */
async function webCryptoCallsDuring(run: () => Promise<void>): Promise<number> {
  const proto = SubtleCrypto.prototype as unknown as Record<string, unknown>;
  const originals = STUBBED.map((name) => proto[name]);
  let calls = 0;
  for (const name of STUBBED) {
    proto[name] = () => {
      calls++;
      throw new Error(`crypto.subtle.${name} was called`);
    };
  }
  try {
    await run();
  } finally {
    STUBBED.forEach((name, i) => (proto[name] = originals[i]));
  }
  return calls;
}

function configured(secrets: string[] = [SECRET], cookieAge = 1_209_600): {
  store: CookieStore;
  logger: RecordingLogger;
} {
  const store = new CookieStore();
  const logger = new RecordingLogger();
  store.configure({ cookieName: "sessionid", cookieAge, secrets, logger });
  return { store, logger };
}

function record(data: string): StoredSession {
  return { data, expiresAt: Date.now() + 60_000 };
}

describe("CookieStore signs without WebCrypto", () => {
  it("create(), save() and load() make no call to crypto.subtle", async () => {
    const { store, logger } = configured([SECRET, OLD_SECRET]);
    const calls = await webCryptoCallsDuring(async () => {
      const key = await store.create(record('{"a":1}'));
      assert.deepEqual((await store.load(key))?.data, '{"a":1}');
      const big = JSON.stringify({ list: Array.from({ length: 200 }, (_, i) => i) });
      const next = await store.save(key, record(big));
      assert.ok(next.startsWith("."), "a large session is compressed");
      assert.equal((await store.load(next))?.data, big);
      // Refusals take the same path: a tampered cookie and a foreign secret.
      assert.equal(await store.load(key.replace("eyJh", "eyJi")), null);
      const foreign = await configured(["a-third-secret-of-at-least-32-bytes!!"]).store.create(
        record('{"a":1}'),
      );
      assert.equal(await store.load(foreign), null);
    });
    assert.equal(calls, 0);
    assert.equal(logger.warnings.length, 2);
  });

  it("a request through withSessions reads and writes the cookie with no call to crypto.subtle", async () => {
    const handler = withSessions(async (req) => {
      const session = await getSession<{ visits: number }>(req);
      session.set("visits", (session.get("visits") ?? 0) + 1);
      return new Response(String(session.get("visits")));
    }, { store: new CookieStore(), secret: SECRET });
    let requests = 0;
    const calls = await webCryptoCallsDuring(async () => {
      let cookie = "";
      for (let i = 1; i <= 20; i++) {
        const response = await handler(
          new Request("http://localhost/", cookie === "" ? {} : { headers: { cookie } }),
        );
        requests++;
        assert.equal(response.status, 200);
        assert.equal(await response.text(), String(i));
        cookie = response.headers.get("set-cookie")!.split(";")[0]!;
      }
    });
    console.log(`${requests} requests, ${calls} WebCrypto calls`);
    assert.equal(calls, 0);
  });
});

describe("cookies signed before still load", () => {
  it("cookies the WebCrypto implementation signed load unchanged, an old secret's marked for refresh", async () => {
    const { store, logger } = configured([SECRET, OLD_SECRET]);
    const calls = await webCryptoCallsDuring(async () => {
      assert.deepEqual(await store.load(WEBCRYPTO_SMALL), {
        data: SMALL_ESCAPED,
        expiresAt: Date.parse(FAR_EXPIRY),
      });
      assert.deepEqual(await store.load(WEBCRYPTO_BIG), {
        data: BIG_JSON,
        expiresAt: Date.parse(FAR_EXPIRY),
      });
      assert.deepEqual(await store.load(WEBCRYPTO_OLD_SECRET), {
        data: SMALL_ESCAPED,
        expiresAt: Date.parse(FAR_EXPIRY),
        refresh: true,
      });
    });
    assert.equal(calls, 0);
    assert.deepEqual(logger.warnings, []);
  });

  it("signing the same data at the same instant gives the same cookie as before", async () => {
    const calls = await webCryptoCallsDuring(async () => {
      // Django's Signer(key="predictable-secret").sign("foo").
      const vector = "foo:jZQoX_FtSO70jX9HLRGg2A_2s4kdDBxz1QoO_OpEQb0";
      assert.equal(await sign("foo", { secret: "predictable-secret", timestamp: false }), vector);
      assert.equal(
        await unsign(vector, { secret: "predictable-secret", timestamp: false }),
        "foo",
      );
      assert.equal(
        await dumpsJson(SMALL_JSON, {
          secret: SECRET,
          salt: "django.contrib.sessions.backends.signed_cookies",
          compress: true,
          now: SIGNED_AT,
        }),
        WEBCRYPTO_SMALL,
      );
    });
    assert.equal(calls, 0);
  });

  it("Django 3.2's signed values and session cookies load with no call to crypto.subtle", async () => {
    let loaded = 0;
    let refused = 0;
    const calls = await webCryptoCallsDuring(async () => {
      for (const vector of DJANGO.vectors) {
        if (vector.kind === "dumps" && vector.verify.expect === "ok") {
          const options = {
            secret: vector.secret,
            ...(vector.salt === undefined ? {} : { salt: vector.salt }),
            ...(vector.verify.max_age === undefined ? {} : {
              maxAge: vector.verify.max_age,
              now: vector.verify.now! * 1000,
            }),
          };
          assert.deepEqual(await loads(vector.signed, options), vector.value, vector.name);
          loaded++;
        } else if (vector.kind === "session") {
          // One vector is signed with another secret: it must be refused.
          const { store } = configured([DJANGO.secret], CENTURY);
          const session = await store.load(vector.signed);
          if (vector.verify.expect === "ok") {
            const data = vector.value as Record<string, unknown>;
            const expected = vector.expiry === undefined
              ? data
              : { ...data, _session_expiry: vector.expiry };
            assert.deepEqual(JSON.parse(session!.data), expected, vector.name);
            loaded++;
          } else {
            assert.equal(session, null, vector.name);
            refused++;
          }
        }
      }
    });
    console.log(`${loaded} Django vectors loaded, ${refused} refused, ${calls} WebCrypto calls`);
    assert.equal(calls, 0);
    assert.ok(loaded >= 12 && refused >= 2, `${loaded} loaded, ${refused} refused`);
  });
});
