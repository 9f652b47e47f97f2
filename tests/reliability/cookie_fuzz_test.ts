// Hostile input for the signed-cookie engine, property-based: arbitrary
// signed values, and session cookies the engine would issue, mutated the
// ways a forger would try, sent as the session cookie to a withSessions
// handler on CookieStore. None may make it throw or answer an error, adopt
// data that no configured secret signed, pass forged data on in a cookie it
// signs, or log the cookie or a secret; every refused cookie that looks
// signed is logged with a warning, and an untouched live cookie loads.
//
// What was signed, and with which secret, is judged by _signed.ts (Django's
// algorithm written on node:crypto, apart from the code under test). The
// cookies are signed relative to the time of the run, so a seed replays the
// same mutations of the same data, not byte-identical cookies.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { CookieStore, getSession, type SessionOptions, withSessions } from "../../mod.ts";
import { RecordingLogger } from "../_config.ts";
import { RUNTIME } from "../_server.ts";
import {
  type Action,
  action,
  expiryValue,
  headerChar,
  perform,
  runs,
  SEED,
  sessionValue,
  storedData,
} from "./_hostile.ts";
import {
  asciiJson,
  base62,
  COOKIE_SALT,
  fromBase62,
  judge,
  payloadOf,
  signJson,
  signPayload,
} from "./_signed.ts";

// Every secret carries the marker, so that a fragment of one in a log is found too.
const MARKER = "Kv7Qp";
const SECRET = `current-${MARKER}-cookie-secret-0123456789`;
const OLD_SECRET = `previous-${MARKER}-cookie-secret-9876543210`;
const OTHER_SECRET = `unknown-${MARKER}-cookie-secret-5555555555`;
const SECRETS = [SECRET, OLD_SECRET];
const AGE = 1_209_600;
const NOW = Math.floor(Date.now() / 1000);
const RUNS = runs(10_000);

// What CookieStore.isValidKey() lets through to the signature check.
const SIGNED_SHAPE = /^[A-Za-z0-9_.:-]{8,4096}$/;
const SIGNED_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.:";
const BASE64URL_ALPHABET = SIGNED_ALPHABET.slice(0, 64);
const HTTP_DATE = "[A-Z][a-z]{2}, \\d{2} [A-Z][a-z]{2} \\d{4} \\d{2}:\\d{2}:\\d{2} GMT";
const ISSUED = new RegExp(
  `^sessionid=([A-Za-z0-9_.:-]+)(; Expires=${HTTP_DATE}; Max-Age=\\d+)?; Path=/; HttpOnly; SameSite=Lax$`,
);
const DELETED =
  "sessionid=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; HttpOnly; SameSite=Lax";
// What the handler below may write into a session it did not load.
const HANDLER_KEYS = new Set(["touched", "cycled", "_session_expiry"]);

const CONFIGS: SessionOptions[] = [{}, { saveEveryRequest: true }, { expireAtBrowserClose: true }];

const encoder = new TextEncoder();

const text = (alphabet: string, minLength: number, maxLength: number) =>
  fc.string({ unit: fc.constantFrom(...alphabet), minLength, maxLength });

/** A secret to sign with: the two configured ones, or one that is not. */
const signer = fc.constantFrom(SECRET, OLD_SECRET, OTHER_SECRET);

/** A signing time: recent, long past, in the future, or absurd. */
const signedAt = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: NOW - 3600, max: NOW }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      0,
      -1,
      NOW - AGE - 1,
      NOW - AGE + 60,
      NOW + 86_400,
      NOW + 1_000_000_000,
      Number.MAX_SAFE_INTEGER,
      -Number.MAX_SAFE_INTEGER,
    ),
  },
  { weight: 1, arbitrary: fc.integer() },
);

/** Session data as a Django app would keep it, with any expiry in it now and then. */
const sessionData = fc.tuple(
  fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 6 }),
  fc.option(expiryValue, { freq: 8 }),
).map(([data, expiry]) =>
  JSON.stringify(expiry === null ? data : { ...data, _session_expiry: expiry })
);

/**
 * Arbitrary signed values: random text in the shape of one (or not), and
 * payloads of any bytes or JSON, correctly signed with any of the secrets,
 * at any time, compressed or not.
 */
const signedValue: fc.Arbitrary<string> = fc.oneof(
  { weight: 2, arbitrary: text(SIGNED_ALPHABET, 0, 120) },
  {
    weight: 2,
    arbitrary: fc.tuple(
      fc.constantFrom("", "."),
      text(BASE64URL_ALPHABET, 0, 80),
      fc.oneof(signedAt.map(base62), text(SIGNED_ALPHABET, 0, 8)),
      // 43 characters: the length of a signature, so that it is checked.
      text(BASE64URL_ALPHABET, 43, 43),
    ).map(([dot, payload, timestamp, signature]) => `${dot}${payload}:${timestamp}:${signature}`),
  },
  { weight: 2, arbitrary: sessionValue },
  { weight: 1, arbitrary: text(SIGNED_ALPHABET, 4090, 4100) },
  {
    weight: 4,
    arbitrary: fc.tuple(
      fc.oneof(storedData, sessionData.map((json) => encoder.encode(asciiJson(json)))),
      fc.boolean(),
      signedAt,
      signer,
    ).map(([bytes, compress, seconds, secret]) =>
      signPayload(payloadOf(bytes, compress), seconds, secret)
    ),
  },
  {
    weight: 1,
    arbitrary: fc.tuple(text(SIGNED_ALPHABET, 0, 60), signedAt, signer).map(
      ([payload, seconds, secret]) => signPayload(payload, seconds, secret),
    ),
  },
);

/** A session cookie as the engine issues it: live data, signed lately with a configured secret. */
interface Issued {
  cookie: string;
  json: string;
  secret: string;
}

const issued: fc.Arbitrary<Issued> = fc.tuple(
  fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 2 }), {
    minKeys: 1,
    maxKeys: 6,
  }),
  fc.boolean(),
  fc.integer({ min: 0, max: 3600 }),
  fc.constantFrom(SECRET, OLD_SECRET),
).map(([data, compress, age, secret]) => {
  const json = JSON.stringify(data);
  return { cookie: signJson(json, NOW - age, secret, { compress }), json, secret };
});

function parts(cookie: string): [string, string, string] {
  const end = cookie.lastIndexOf(":");
  const middle = cookie.lastIndexOf(":", end - 1);
  return [cookie.slice(0, middle), cookie.slice(middle + 1, end), cookie.slice(end + 1)];
}

function bytesOf(payload: string): Uint8Array {
  const compressed = payload.startsWith(".");
  const raw = Uint8Array.fromBase64(compressed ? payload.slice(1) : payload, {
    alphabet: "base64url",
  });
  return raw;
}

// A payload that inflates to 2 MiB, twice the engine's limit.
const BOMB = payloadOf(encoder.encode(`{"a":"${" ".repeat(2_097_152)}"}`), true);

const MUTATIONS = [
  "untouched",
  "flip",
  "flip any",
  "truncate end",
  "truncate start",
  "drop a part",
  "swap parts",
  "splice",
  "re-encode",
  "toggle compression",
  "change data",
  "timestamp",
  "another secret",
  "another salt",
  "junk compressed",
  "bomb",
  "quoted",
  "append",
  "letter case",
  "twice",
] as const;
type Mutation = (typeof MUTATIONS)[number];

/** A cookie the engine issued, changed the way a forger would try. */
const mutated: fc.Arbitrary<{ cookie: string; how: Mutation; base: Issued }> = fc.tuple(
  issued,
  issued,
  fc.constantFrom(...MUTATIONS),
  fc.nat(),
  fc.nat(),
  fc.string({ unit: fc.constantFrom(...SIGNED_ALPHABET), minLength: 1, maxLength: 8 }),
  fc.uint8Array({ minLength: 1, maxLength: 40 }),
  headerChar,
).map(([base, other, how, at, pick, extra, junk, char]) => {
  const cookie = base.cookie;
  const [payload, timestamp, signature] = parts(cookie);
  const cut = at % cookie.length;
  let result: string;
  switch (how) {
    case "untouched":
      result = cookie;
      break;
    case "flip": {
      const old = cookie[cut]!;
      const next = SIGNED_ALPHABET[(SIGNED_ALPHABET.indexOf(old) + 1 + (pick % 65)) % 66]!;
      result = cookie.slice(0, cut) + next + cookie.slice(cut + 1);
      break;
    }
    case "flip any":
      result = cookie.slice(0, cut) + char + cookie.slice(cut + 1);
      break;
    case "truncate end":
      result = cookie.slice(0, cut);
      break;
    case "truncate start":
      result = cookie.slice(cut + 1);
      break;
    case "drop a part":
      result = [payload, timestamp, signature].filter((_, i) => i !== pick % 3).join(":");
      break;
    case "swap parts": {
      const orders = [[1, 0, 2], [0, 2, 1], [2, 1, 0], [1, 2, 0], [2, 0, 1]];
      const all = [payload, timestamp, signature];
      result = orders[pick % orders.length]!.map((i) => all[i]).join(":");
      break;
    }
    case "splice": {
      // Another session's payload under this one's timestamp and signature, or the reverse.
      const [otherPayload, otherTimestamp, otherSignature] = parts(other.cookie);
      result = pick % 2 === 0
        ? `${otherPayload}:${timestamp}:${signature}`
        : `${payload}:${otherTimestamp}:${otherSignature}`;
      break;
    }
    case "re-encode": {
      // The same bytes in standard base64, with padding, or with a stray character.
      const bytes = bytesOf(payload);
      const dot = payload.startsWith(".") ? "." : "";
      const spelled = [
        bytes.toBase64(),
        bytes.toBase64({ alphabet: "base64url" }),
        `${bytes.toBase64({ alphabet: "base64url", omitPadding: true })}A`,
      ][pick % 3]!;
      result = `${dot}${spelled}:${timestamp}:${signature}`;
      break;
    }
    case "toggle compression": {
      const json = asciiJson(base.json);
      const other = payload.startsWith(".")
        ? payloadOf(encoder.encode(json), false)
        : `.${payloadOf(encoder.encode(json), true).replace(/^\./, "")}`;
      result = `${other}:${timestamp}:${signature}`;
      break;
    }
    case "change data": {
      const data = { ...JSON.parse(base.json), is_admin: true, user: pick };
      const changed = payloadOf(encoder.encode(asciiJson(JSON.stringify(data))), pick % 2 === 0);
      result = `${changed}:${timestamp}:${signature}`;
      break;
    }
    case "timestamp": {
      const seconds = fromBase62(timestamp)!;
      const shifted = [
        base62(seconds + 1),
        base62(seconds - 1),
        base62(seconds + AGE),
        base62(seconds - AGE),
        `0${timestamp}`,
        `-${timestamp}`,
        base62(Number.MAX_SAFE_INTEGER),
        "zzzzzzzzzzzzzzzz",
      ][pick % 8]!;
      result = `${payload}:${shifted}:${signature}`;
      break;
    }
    case "another secret":
      result = signPayload(payload, fromBase62(timestamp)!, OTHER_SECRET);
      break;
    case "another salt": {
      const salts = [
        "django.core.signing",
        "django.core.signing.TimestampSigner",
        `${COOKIE_SALT}x`,
        "",
      ];
      result = signPayload(payload, fromBase62(timestamp)!, SECRET, salts[pick % salts.length]);
      break;
    }
    case "junk compressed": {
      // A deflated session with junk after it, or junk alone, signed with
      // a configured secret (as a leaked one would) or an unknown one.
      const deflated = bytesOf(payloadOf(encoder.encode(`${base.json}${" ".repeat(40)}`), true));
      const bytes = pick % 3 === 0
        ? junk
        : new Uint8Array([...deflated.slice(0, at % (deflated.length + 1)), ...junk]);
      const secret = [SECRET, OLD_SECRET, OTHER_SECRET][Math.floor(pick / 3) % 3]!;
      result = signPayload(
        `.${bytes.toBase64({ alphabet: "base64url", omitPadding: true })}`,
        NOW,
        secret,
      );
      break;
    }
    case "bomb":
      result = signPayload(BOMB, NOW, [SECRET, OTHER_SECRET][pick % 2]!);
      break;
    case "quoted":
      result = `"${cookie}"`;
      break;
    case "append":
      result = pick % 2 === 0 ? cookie + extra : extra + cookie;
      break;
    case "letter case":
      result = pick % 2 === 0 ? cookie.toUpperCase() : cookie.toLowerCase();
      break;
    case "twice":
      result = `${cookie}:${cookie}`;
      break;
  }
  return { cookie: result, how, base };
});

/** What the handler saw right after getSession(). */
interface Seen {
  key: string | null;
  items: [string, unknown][];
}

class Harness {
  readonly logger = new RecordingLogger();
  readonly handlers: ((req: Request) => Promise<Response>)[];
  doing: Action = "read";
  seen: Seen | undefined;
  adopted = 0;
  refused = 0;
  reissued = 0;

  constructor() {
    const handle = async (req: Request): Promise<Response> => {
      const doing = this.doing;
      this.seen = undefined;
      if (doing === "none") return new Response("ok");
      const session = await getSession(req);
      this.seen = { key: session.sessionKey, items: session.items() };
      await perform(session, doing);
      return new Response("ok");
    };
    this.handlers = CONFIGS.map((options) =>
      withSessions(handle, {
        ...options,
        store: new CookieStore(),
        secret: SECRETS,
        logger: this.logger,
      })
    );
  }

  /**
   * Sends `cookie` as the session cookie and checks the answer; returns
   * whether the session was adopted.
   */
  async check(cookie: string, config: number, doing: Action): Promise<boolean> {
    this.doing = doing;
    const warnings = this.logger.warnings.length;
    const response = await this.handlers[config]!(
      new Request("http://127.0.0.1/", { headers: { cookie: `sessionid=${cookie}` } }),
    );
    await response.body?.cancel();
    assert.equal(response.status, 200);
    const said = this.logger.warnings.slice(warnings);
    for (const warning of said) {
      assert.ok(!warning.includes(MARKER), `a secret was logged: ${warning}`);
      for (const piece of [cookie, ...cookie.split(":")]) {
        if (piece.length >= 8) {
          assert.ok(!warning.includes(piece), `the cookie was logged: ${warning}`);
        }
      }
    }

    const seen = this.seen;
    const adopted = seen !== undefined && seen.key !== null;
    if (adopted) {
      this.adopted++;
      assert.ok(cookie.includes(seen.key!), "adopted a value the request did not carry");
      const verdict = judge(seen.key!, SECRETS);
      assert.ok(verdict.secretIndex >= 0, `adopted a cookie no configured secret signed`);
      assert.ok(verdict.json !== null, "adopted a payload that does not decode");
      const data = JSON.parse(verdict.json) as Record<string, unknown>;
      assert.ok(typeof data === "object" && data !== null && !Array.isArray(data));
      assert.deepEqual(
        seen.items,
        Object.entries(data).filter(([name]) => name !== "_session_expiry"),
        "adopted data other than what was signed",
      );
      if (!Object.hasOwn(data, "_session_expiry")) {
        assert.ok(
          (verdict.timestamp! + AGE) * 1000 >= Date.now() - 2000,
          "adopted an expired cookie",
        );
      }
    } else if (seen !== undefined && SIGNED_SHAPE.test(cookie)) {
      this.refused++;
      assert.ok(said.length > 0, "a refused cookie is logged with a warning");
    }

    const lines = response.headers.getSetCookie();
    assert.ok(lines.length <= 1, lines.join(" | "));
    const line = lines[0];
    if (line !== undefined && line !== DELETED) {
      const value = ISSUED.exec(line)?.[1];
      assert.ok(value, `a Set-Cookie of an unexpected shape: ${JSON.stringify(line)}`);
      const verdict = judge(value, SECRETS);
      assert.equal(verdict.secretIndex, 0, "an issued cookie is signed with the current secret");
      const data = JSON.parse(verdict.json!) as Record<string, unknown>;
      // Data the handler did not write comes from a session that was
      // adopted (or, when the handler did not look, from a correctly
      // signed cookie the middleware loaded to save it again).
      if (Object.keys(data).some((name) => !HANDLER_KEYS.has(name))) {
        if (seen !== undefined) assert.ok(adopted, "a refused cookie's data was signed again");
        const source = seen?.key ?? cookie.replace(/^"(.*)"$/, "$1");
        assert.ok(judge(source, SECRETS).secretIndex >= 0, "unsigned data was signed again");
      }
      this.reissued++;
    }
    return adopted;
  }
}

function report(property: string, cases: number, started: number, detail: string): void {
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `[fuzz] CookieStore on ${RUNTIME}: ${property}: ${cases} cases (seed ${SEED}) in ${seconds} s, ${detail}`,
  );
}

describe(`CookieStore against hostile cookies (fast-check, seed ${SEED})`, () => {
  it(`arbitrary signed values: no throw, no error status, nothing adopted that a configured secret did not sign, no cookie or secret logged (${RUNS} cases)`, async () => {
    const started = performance.now();
    const harness = new Harness();
    await fc.assert(
      fc.asyncProperty(
        signedValue,
        fc.nat(CONFIGS.length - 1),
        action,
        (cookie, c, doing) => harness.check(cookie, c, doing).then(() => {}),
      ),
      { seed: SEED, numRuns: RUNS },
    );
    assert.deepEqual(harness.logger.errors, []);
    report(
      "arbitrary signed values",
      RUNS,
      started,
      `${harness.adopted} correctly signed sessions adopted, ${harness.refused} refused with a warning, ${harness.reissued} answers signed a cookie`,
    );
  });

  it(`mutations of issued cookies: refused with a warning unless a configured secret signed the result; untouched ones load (${RUNS} cases)`, async () => {
    const started = performance.now();
    const harness = new Harness();
    const counts = new Map<Mutation, { cases: number; adopted: number }>();
    await fc.assert(
      fc.asyncProperty(
        mutated,
        fc.nat(CONFIGS.length - 1),
        action,
        async ({ cookie, how, base }, c, doing) => {
          const adopted = await harness.check(cookie, c, doing);
          const count = counts.get(how) ?? { cases: 0, adopted: 0 };
          count.cases++;
          if (adopted) count.adopted++;
          counts.set(how, count);
          if ((how === "untouched" || how === "quoted") && harness.seen !== undefined) {
            assert.ok(adopted, "a cookie the engine issued, untouched, loads");
            assert.deepEqual(harness.seen.items, Object.entries(JSON.parse(base.json)));
          }
        },
      ),
      { seed: SEED, numRuns: RUNS },
    );
    assert.deepEqual(harness.logger.errors, []);
    const summary = [...counts].map(([how, { cases, adopted }]) => `${how} ${adopted}/${cases}`);
    report(
      "mutated cookies",
      RUNS,
      started,
      `adopted/cases per mutation: ${summary.join(", ")}`,
    );
  });
});
