// Django's record format (src/stores/_django_format.ts) against Django 3.2
// itself: Django encodes what Tessera decodes and Tessera encodes what Django
// decodes, through SessionStore().encode()/decode() and the file engine's
// load(), run live by fixtures/django_app/session_codec.py.

import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  dumpsJson,
  getSession,
  SessionExistsError,
  SessionInterruptedError,
  type SessionStore,
  type StoredSession,
  type StoreSettings,
  withSessions,
} from "../../mod.ts";
import {
  decodeDjangoSession,
  DJANGO_SESSION_SALT,
  djangoFileExpiresAt,
  djangoStoredSession,
  encodeDjangoSession,
  isDjangoFormat,
  requireDjangoSecret,
} from "../../src/stores/_django_format.ts";
import { createWithUniqueKey } from "../../src/stores/store.ts";

import { RecordingLogger } from "../_config.ts";
import { type CodecCase, type CodecOutcome, djangoCodec } from "../_django.ts";

const SECRET = "tessera-django-format-secret-0123456789abcdef";
const OLD_SECRET = "the-previous-django-secret-key-0123456789abc";
const OTHER_SECRET = "a-secret-this-application-never-had-01234567";
const AUTH = {
  _auth_user_id: "42",
  _auth_user_backend: "django.contrib.auth.backends.ModelBackend",
  _auth_user_hash: "b5a3c1f0e2d4c6b8a0f1e3d5c7b9a1f3e5d7c9b1a3f5e7d9c1b3a5f7e9d1c3b5",
};
const UNICODE = {
  name: "Zoë",
  combining: "he\u0301llo",
  emoji: "\u{1F40D}",
  zh: "你好",
  controls: "tab\t newline\n nul\u0000 del\u007f",
  separators: "\u2028\u2029",
  quote: "\"'\\",
};
const BIG = {
  cart: Array.from({ length: 60 }, (_, i) => ({ sku: `item-${i}`, qty: i % 4 })),
  ...AUTH,
};

interface Sample {
  name: string;
  data: Record<string, unknown>;
}

const SAMPLES: Sample[] = [
  { name: "a logged-in session (_auth_* keys)", data: { ...AUTH, visits: 3 } },
  { name: "a custom expiry (set_expiry(600))", data: { ...AUTH, _session_expiry: 600 } },
  { name: "set_expiry(0)", data: { a: 1, _session_expiry: 0 } },
  { name: "a negative expiry", data: { a: 1, _session_expiry: -3600 } },
  { name: "unicode", data: UNICODE },
  { name: "a large session (compressed)", data: BIG },
  { name: "nested values", data: { n: [1, 2.5, true, null, { deep: ["x"] }], empty: {} } },
  { name: "an empty session", data: {} },
];

function settings(secrets: string[] = [SECRET]): { secrets: string[]; logger: RecordingLogger } {
  return { secrets, logger: new RecordingLogger() };
}

function ok(outcome: CodecOutcome | undefined): CodecOutcome {
  assert.ok(outcome !== undefined);
  assert.equal(outcome.error, undefined, `Django raised ${outcome.error}`);
  return outcome;
}

describe("Django's session format: what Django 3.2 encodes decodes here", () => {
  const cases: CodecCase[] = [
    ...SAMPLES.map((sample): CodecCase => ({ op: "encode", secret: SECRET, data: sample.data })),
    { op: "encode", secret: OLD_SECRET, data: { ...AUTH } },
    { op: "encode", secret: OTHER_SECRET, data: { ...AUTH } },
    { op: "legacy", secret: SECRET, data: { ...AUTH, name: "Zoë", _session_expiry: 60 } },
    { op: "legacy", secret: OTHER_SECRET, data: { ...AUTH } },
  ];
  let encoded: string[] = [];
  let version = "";

  before(() => {
    const answer = djangoCodec(cases);
    version = answer.django;
    encoded = answer.outcomes.map((outcome) => ok(outcome).session_data!);
  });

  it("runs Django 3.2 or later", () => {
    const [major, minor] = version.split(".").map(Number);
    assert.ok(major! > 3 || (major === 3 && minor! >= 2), version);
  });

  SAMPLES.forEach((sample, index) => {
    it(`decodeDjangoSession() reads ${sample.name}, the _auth_* keys untouched`, async () => {
      const { secrets, logger } = settings();
      const decoded = await decodeDjangoSession(encoded[index]!, { secrets, logger });
      assert.ok(decoded !== null);
      assert.deepEqual(JSON.parse(decoded.json), sample.data);
      const expiry = sample.data._session_expiry;
      assert.equal(decoded.expiry, expiry === undefined ? null : expiry);
      assert.equal(decoded.stale, false);
      assert.deepEqual(logger.warnings, []);
    });
  });

  it("reads Django's compressed form (a payload starting with '.')", () => {
    assert.ok(encoded[SAMPLES.findIndex((s) => s.data === BIG)]!.startsWith("."));
  });

  it("reads a session signed with an older secret (SECRET_KEY_FALLBACKS), marked stale", async () => {
    const decoded = await decodeDjangoSession(
      encoded[SAMPLES.length]!,
      settings([SECRET, OLD_SECRET]),
    );
    assert.deepEqual(JSON.parse(decoded!.json), AUTH);
    assert.equal(decoded!.stale, true);
  });

  it("ignores a session signed with another secret, with a SuspiciousSession warning", async () => {
    const { secrets, logger } = settings([SECRET, OLD_SECRET]);
    assert.equal(
      await decodeDjangoSession(encoded[SAMPLES.length + 1]!, { secrets, logger }),
      null,
    );
    assert.equal(logger.warnings.length, 1);
    assert.match(logger.warnings[0]!, /Session data corrupted.*SuspiciousSession/);
    assert.ok(!logger.warnings[0]!.includes(SECRET));
  });

  it("reads Django's pre-3.1 format (base64 hash:json), which Django 3.2 still reads, marked stale", async () => {
    const legacy = encoded[SAMPLES.length + 2]!;
    assert.ok(!legacy.includes(":"));
    const decoded = await decodeDjangoSession(legacy, settings());
    assert.ok(decoded !== null);
    assert.deepEqual(JSON.parse(decoded.json), { ...AUTH, name: "Zoë", _session_expiry: 60 });
    assert.equal(decoded.expiry, 60);
    assert.equal(decoded.stale, true);
  });

  it("ignores the pre-3.1 format under another secret, with a warning", async () => {
    const { secrets, logger } = settings();
    assert.equal(
      await decodeDjangoSession(encoded[SAMPLES.length + 3]!, { secrets, logger }),
      null,
    );
    assert.match(logger.warnings[0]!, /pre-3\.1 format.*SuspiciousSession/);
  });
});

describe("Django's session format: what is encoded here decodes in Django 3.2", () => {
  const mine: { name: string; data: Record<string, unknown>; secrets: string[] }[] = [
    ...SAMPLES.map((sample) => ({ ...sample, secrets: [SECRET] })),
    {
      name: "signed with the first of two secrets",
      data: { ...AUTH },
      secrets: [SECRET, OLD_SECRET],
    },
  ];
  let outcomes: CodecOutcome[] = [];
  let encoded: string[] = [];
  let tampered: string[] = [];

  before(async () => {
    encoded = await Promise.all(
      mine.map((sample) => encodeDjangoSession(JSON.stringify(sample.data), sample.secrets)),
    );
    const good = encoded[0]!;
    // A changed payload, a changed signature, a truncation, a foreign secret.
    tampered = [
      `${good.slice(0, 4)}${good[4] === "A" ? "B" : "A"}${good.slice(5)}`,
      `${good.slice(0, -1)}${good.endsWith("A") ? "Q" : "A"}`,
      good.slice(0, good.length - 10),
      await encodeDjangoSession(JSON.stringify(AUTH), [OTHER_SECRET]),
    ];
    const cases: CodecCase[] = [
      ...encoded.map((session_data): CodecCase => ({ op: "decode", secret: SECRET, session_data })),
      ...tampered.map((session_data): CodecCase => ({
        op: "decode",
        secret: SECRET,
        session_data,
      })),
      // Django 3.2 holds only SECRET_KEY: what the old secret signed is lost there.
      { op: "decode", secret: OLD_SECRET, session_data: encoded[mine.length - 1]! },
    ];
    outcomes = djangoCodec(cases).outcomes;
  });

  mine.forEach((sample, index) => {
    it(`Django decodes ${sample.name} as it was, the _auth_* keys untouched`, () => {
      const outcome = ok(outcomes[index]);
      assert.deepEqual(outcome.value, sample.data);
      assert.deepEqual(outcome.warnings, []);
      const expiry = sample.data._session_expiry;
      assert.equal(
        outcome.expiry_age,
        typeof expiry === "number" && expiry !== 0 ? expiry : 1_209_600,
      );
    });
  });

  it("Django and Tessera both refuse a tampered or foreign session_data; Tessera warns", async () => {
    tampered.forEach((_, i) => {
      const outcome = ok(outcomes[mine.length + i]);
      assert.deepEqual(outcome.value, {}, `case ${i}`);
      // Django 3.2 then tries its pre-3.1 format, whose lenient base64 may
      // turn the text into bytes that fail quietly: a warning or none.
      assert.ok(outcome.warnings!.every((w) => w === "Session data corrupted"), `case ${i}`);
    });
    for (const text of tampered) {
      const { secrets, logger } = settings();
      assert.equal(await decodeDjangoSession(text, { secrets, logger }), null);
      assert.equal(logger.warnings.length, 1);
    }
    console.log(
      `${mine.length} sessions decoded by Django, ${tampered.length} forgeries refused by both`,
    );
  });

  it("Django 3.2 (one key) cannot read what the old secret signed; Tessera (every secret) can", async () => {
    assert.deepEqual(ok(outcomes.at(-1)).value, {});
    const decoded = await decodeDjangoSession(
      encoded[mine.length - 1]!,
      settings([OLD_SECRET, SECRET]),
    );
    assert.equal(decoded!.stale, true);
  });

  it("encodeDjangoSession() signs with the first secret and the session salt, compressed when shorter", async () => {
    const big = await encodeDjangoSession(JSON.stringify(BIG), [SECRET, OLD_SECRET]);
    assert.ok(big.startsWith("."));
    const small = await encodeDjangoSession('{"a":1}', [SECRET]);
    assert.equal(small, await dumpsJson('{"a":1}', { secret: SECRET, salt: DJANGO_SESSION_SALT }));
  });
});

describe("Django's session format: a Date expiry", () => {
  const iso = "2100-01-01T00:00:00+00:00";
  let django: CodecOutcome;

  before(async () => {
    // Signed as Django signs it, so that Django 3.2's answer is about the value alone.
    const sessionData = await dumpsJson(JSON.stringify({ ...AUTH, _session_expiry: iso }), {
      secret: SECRET,
      salt: DJANGO_SESSION_SALT,
      compress: true,
    });
    django = djangoCodec([{ op: "decode", secret: SECRET, session_data: sessionData }])
      .outcomes[0]!;
  });

  it("is why: Django 3.2 decodes an ISO _session_expiry but its get_expiry_age() breaks on it", () => {
    assert.deepEqual(ok(django).value, { ...AUTH, _session_expiry: iso });
    assert.deepEqual(django.expiry_age, { error: "TypeError" });
  });

  it("encodeDjangoSession() refuses an ISO _session_expiry with a clear TypeError", async () => {
    await assert.rejects(
      encodeDjangoSession(JSON.stringify({ a: 1, _session_expiry: iso }), [SECRET]),
      {
        name: "TypeError",
        message:
          `Cannot save the session as format "django" keeps only a whole number of seconds in '_session_expiry', the one kind of expiry Django 3.2 reads: current value is the date ${iso}; call setExpiry() with seconds instead of a Date`,
      },
    );
  });

  it("a value that merely mentions _session_expiry is not an expiry", async () => {
    const json = JSON.stringify({
      note: '"_session_expiry":"2100-01-01"',
      nested: { _session_expiry: "x" },
    });
    const decoded = await decodeDjangoSession(
      await encodeDjangoSession(json, [SECRET]),
      settings(),
    );
    assert.equal(decoded!.json, json);
    assert.equal(decoded!.expiry, null);
  });

  it("decodeDjangoSession() still reads an ISO expiry that newer Django wrote", async () => {
    const text = await dumpsJson(JSON.stringify({ a: 1, _session_expiry: iso }), {
      secret: SECRET,
      salt: DJANGO_SESSION_SALT,
    });
    assert.equal((await decodeDjangoSession(text, settings()))!.expiry, iso);
  });

  it("through withSessions, setExpiry(Date) answers 500 with the reason logged, and stores nothing", async () => {
    const store = new DjangoMapStore();
    const logger = new RecordingLogger();
    const handler = withSessions(async (req) => {
      const session = await getSession(req);
      session.set("a", 1);
      if (new URL(req.url).pathname === "/date") session.setExpiry(new Date(Date.parse(iso)));
      else session.setExpiry(600);
      return new Response("ok");
    }, { store, secret: SECRET, logger });
    const failed = await handler(new Request("http://x/date"));
    assert.equal(failed.status, 500);
    assert.equal(failed.headers.get("set-cookie"), null);
    assert.match(String((logger.errors[0]?.error as Error).message), /setExpiry\(\) with seconds/);
    assert.equal(store.rows.size, 0);
    const saved = await handler(new Request("http://x/seconds"));
    assert.equal(saved.status, 200);
    assert.equal(store.rows.size, 1);
  });
});

describe("Django's session format: the file engine's expiry", () => {
  const COOKIE_AGE = 100;
  // [name, _session_expiry, seconds since the file's mtime, Django expires it, Tessera expires it]
  const cases: [string, number | undefined, number, boolean, boolean][] = [
    ["no custom expiry, younger than cookieAge", undefined, 50, false, false],
    ["no custom expiry, older than cookieAge", undefined, 150, true, true],
    ["set_expiry(0), older than cookieAge", 0, 150, true, true],
    ["set_expiry(0), younger than cookieAge", 0, 50, false, false],
    ["a negative expiry", -10, 1, true, true],
    ["set_expiry(300), older than cookieAge", 300, 150, false, false],
    // Spec section 4: Django's file engine never expires a positive whole
    // number on the server; Tessera expires it N seconds after the last save.
    ["set_expiry(30), saved 50 seconds ago", 30, 50, false, true],
  ];
  let outcomes: CodecOutcome[] = [];
  let encoded: string[] = [];

  before(async () => {
    encoded = await Promise.all(cases.map(([, expiry]) =>
      encodeDjangoSession(
        JSON.stringify(expiry === undefined ? { ...AUTH } : { ...AUTH, _session_expiry: expiry }),
        [SECRET],
      )
    ));
    outcomes = djangoCodec(cases.map(([, , age], index): CodecCase => ({
      op: "file",
      secret: SECRET,
      session_data: encoded[index]!,
      index,
      age,
      cookie_age: COOKIE_AGE,
    }))).outcomes;
  });

  cases.forEach(([name, expiry, age, djangoExpires, tesseraExpires], index) => {
    it(`djangoFileExpiresAt(): ${name}`, async () => {
      assert.equal(ok(outcomes[index]).expired, djangoExpires, "Django's file engine");
      const decoded = await decodeDjangoSession(encoded[index]!, settings());
      assert.equal(decoded!.expiry, expiry ?? null);
      const now = Date.now();
      const expiresAt = djangoFileExpiresAt(decoded!.expiry, now - age * 1000, COOKIE_AGE);
      assert.equal(expiresAt <= now, tesseraExpires);
    });
  });

  it("djangoFileExpiresAt() takes an ISO expiry (newer Django) as that instant", () => {
    const iso = "2100-01-01T00:00:00+00:00";
    assert.equal(djangoFileExpiresAt(iso, 0, COOKIE_AGE), Date.parse(iso));
    assert.equal(djangoFileExpiresAt("not a date", 5_000, COOKIE_AGE), 5_000 + COOKIE_AGE * 1000);
    assert.equal(djangoFileExpiresAt(null, 5_000, COOKIE_AGE), 5_000 + COOKIE_AGE * 1000);
  });
});

describe("Django's session format: bad input", () => {
  it("an empty file (Django's placeholder while it creates a session) is no session, silently", async () => {
    const { secrets, logger } = settings();
    assert.equal(await decodeDjangoSession("", { secrets, logger }), null);
    assert.deepEqual(logger.warnings, []);
  });

  it("garbage of every shape is no session, never an exception", async () => {
    const inputs = [
      "bad:encoded:value",
      ":",
      "::",
      "a".repeat(100_000),
      "YmFk", // base64 without a hash
      "!!!!",
      "\u0000\u0001:\uffff",
      "x".repeat(43) + ":" + "y".repeat(43),
      "MDIz:", // base64 with a colon: the current format, unsigned
    ];
    for (const input of inputs) {
      assert.equal(
        await decodeDjangoSession(input, settings()),
        null,
        JSON.stringify(input.slice(0, 20)),
      );
    }
    console.log(`${inputs.length} malformed session_data values, 0 accepted`);
  });

  it("no edit of a Django or pre-3.1 session_data is accepted (fast-check)", async () => {
    const json = JSON.stringify({ ...AUTH, cart: [1, 2, 3] });
    const legacy = djangoCodec([{ op: "legacy", secret: SECRET, data: { ...AUTH } }])
      .outcomes[0]!.session_data!;
    const originals = [
      await encodeDjangoSession(json, [SECRET]),
      await encodeDjangoSession(JSON.stringify(BIG), [SECRET]),
      legacy,
    ];
    const seed = Date.now() % 2 ** 31;
    let accepted = 0;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...originals),
        fc.nat(),
        fc.constantFrom("replace", "insert", "delete", "truncate"),
        fc.string({ minLength: 1, maxLength: 3 }),
        async (original, at, edit, text) => {
          const i = at % original.length;
          const edited = edit === "replace"
            ? original.slice(0, i) + text + original.slice(i + text.length)
            : edit === "insert"
            ? original.slice(0, i) + text + original.slice(i)
            : edit === "delete"
            ? original.slice(0, i) + original.slice(i + text.length)
            : original.slice(0, i);
          const decoded = await decodeDjangoSession(edited, settings());
          if (edited === original) return decoded !== null;
          if (decoded === null) {
            refused++;
            return true;
          }
          accepted++;
          return false;
        },
      ),
      { seed, numRuns: 3000 },
    );
    console.log(
      `3000 edits of session_data (seed ${seed}): ${refused} refused, ${accepted} accepted`,
    );
  });

  it("a correctly signed payload that is not a JSON object is ignored with a warning naming the serializer", async () => {
    for (const json of ["[1,2]", "null", '"text"', "42"]) {
      const text = await dumpsJson(json, { secret: SECRET, salt: DJANGO_SESSION_SALT });
      const { secrets, logger } = settings();
      assert.equal(await decodeDjangoSession(text, { secrets, logger }), null);
      assert.match(logger.warnings[0]!, /SESSION_SERIALIZER/);
    }
  });

  it("a signed zip bomb is refused without inflating it past 1 MiB", async () => {
    const bomb = await dumpsJson(JSON.stringify({ a: "a".repeat(4 * 1_048_576) }), {
      secret: SECRET,
      salt: DJANGO_SESSION_SALT,
      compress: true,
    });
    assert.ok(bomb.length < 20_000);
    const { secrets, logger } = settings();
    assert.equal(await decodeDjangoSession(bomb, { secrets, logger }), null);
    assert.match(logger.warnings[0]!, /over 'maxSize'/);
  });
});

describe("Django's session format: configuration", () => {
  it('isDjangoFormat() accepts "django" and undefined, and names anything else', () => {
    assert.equal(isDjangoFormat("django", "FileStore"), true);
    assert.equal(isDjangoFormat(undefined, "FileStore"), false);
    assert.throws(() => isDjangoFormat("Django", "SqliteStore"), {
      name: "TypeError",
      message:
        `Cannot create a SqliteStore as 'format' must be "django" or left out: current value is "Django"`,
    });
    assert.throws(() => isDjangoFormat(1, "FileStore"), {
      name: "TypeError",
      message: /of type number/,
    });
  });

  it("requireDjangoSecret() throws without a secret and names the store", () => {
    assert.throws(() => requireDjangoSecret({ secrets: [] }, "PostgresStore"), {
      name: "TypeError",
      message: /^Cannot create sessions as PostgresStore with format "django" needs 'secret'/,
    });
    requireDjangoSecret({ secrets: [SECRET] }, "PostgresStore");
  });

  it("withSessions() fails at once for a store in this format without a secret", () => {
    assert.throws(() => withSessions(() => new Response("ok"), { store: new DjangoMapStore() }), {
      name: "TypeError",
      message: /needs 'secret', Django's SECRET_KEY/,
    });
  });

  it("a session Django signed with an old secret, or in the pre-3.1 format, is saved again in the current one on its next request", async () => {
    const store = new DjangoMapStore();
    const handler = withSessions(async (req) => {
      const session = await getSession(req);
      return Response.json(Object.fromEntries(session.items()));
    }, { store, secret: [SECRET, OLD_SECRET] });
    const { outcomes } = djangoCodec([
      { op: "encode", secret: OLD_SECRET, data: { ...AUTH } },
      { op: "legacy", secret: SECRET, data: { ...AUTH } },
    ]);
    for (const [index, outcome] of outcomes.entries()) {
      const key = `oldformatkey000000000000000000${index}a`.slice(0, 32);
      store.rows.set(key, { data: ok(outcome).session_data!, expiresAt: Date.now() + 60_000 });
      const response = await handler(
        new Request("http://x/", { headers: { cookie: `sessionid=${key}` } }),
      );
      assert.deepEqual(await response.json(), AUTH);
      const saved = store.rows.get(key)!.data;
      assert.notEqual(saved, outcome.session_data);
      const decoded = await decodeDjangoSession(saved, settings([SECRET]));
      assert.equal(decoded!.stale, false, `case ${index}`);
      assert.deepEqual(JSON.parse(decoded!.json), AUTH);
    }
  });

  it("with authenticatesRecords, withSessions adds no signature of its own: the row is Django's session_data", async () => {
    const store = new DjangoMapStore();
    const handler = withSessions(async (req) => {
      const session = await getSession(req);
      for (const [key, value] of Object.entries(AUTH)) session.set(key, value);
      return new Response("ok");
    }, { store, secret: [SECRET, OLD_SECRET] });
    assert.equal((await handler(new Request("http://x/"))).status, 200);
    const [sessionData] = [...store.rows.values()].map((row) => row.data);
    const outcome = ok(
      djangoCodec([{ op: "decode", secret: SECRET, session_data: sessionData! }]).outcomes[0],
    );
    assert.deepEqual(outcome.value, AUTH);
  });
});

/**
 * The smallest store in Django's format: what FileStore, SqliteStore and
 * PostgresStore do with this module, over a Map.
 */
class DjangoMapStore implements SessionStore {
  readonly authenticatesRecords = true;
  readonly rows = new Map<string, StoredSession>();
  #settings: StoreSettings | undefined;

  configure(settings: StoreSettings): void {
    requireDjangoSecret(settings, "DjangoMapStore");
    this.#settings = settings;
  }

  async load(key: string): Promise<StoredSession | null> {
    const row = this.rows.get(key);
    if (row === undefined || row.expiresAt <= Date.now()) return null;
    const decoded = await decodeDjangoSession(row.data, this.#settings!);
    return decoded === null ? null : djangoStoredSession(decoded, row.expiresAt);
  }

  exists(key: string): Promise<boolean> {
    return Promise.resolve(this.rows.has(key));
  }

  create(record: StoredSession): Promise<string> {
    return createWithUniqueKey((key) => this.save(key, record, true));
  }

  async save(key: string, record: StoredSession, mustCreate = false): Promise<string> {
    const data = await encodeDjangoSession(record.data, this.#settings!.secrets);
    if (mustCreate && this.rows.has(key)) throw new SessionExistsError();
    if (!mustCreate && !this.rows.has(key)) throw new SessionInterruptedError();
    this.rows.set(key, { data, expiresAt: record.expiresAt });
    return key;
  }

  delete(key: string): Promise<void> {
    this.rows.delete(key);
    return Promise.resolve();
  }

  clearExpired(): Promise<number> {
    return Promise.resolve(0);
  }
}
