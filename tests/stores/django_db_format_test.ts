// format: "django" on the database engines: SqliteStore on a database file
// and PostgresStore on a private PostgreSQL cluster keep Django's own
// session_data and expire_date, which Django itself then decodes
// (fixtures/django_app/session_codec.py).

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import postgres from "postgres";
import {
  getSession,
  PostgresStore,
  SessionInterruptedError,
  type SessionStore,
  SqliteStore,
  withSessions,
} from "../../mod.ts";
import {
  decodeDjangoSession,
  DJANGO_SESSION_SALT,
  encodeDjangoSession,
} from "../../src/stores/_django_format.ts";
import { dumpsJson } from "../../src/signing.ts";
import { RecordingLogger } from "../_config.ts";
import { djangoCodec } from "../_django.ts";
import { freshTable, startPostgres } from "../_postgres.ts";
import { storeContract } from "./_contract.ts";

const SECRET = "django-db-format-secret-0123456789abcdefghijklmnop";
const OLD_SECRET = "django-db-format-old-secret-0123456789abcdefghijk";
const COOKIE = "sessionid";
const COOKIE_AGE = 3600;

const dir = mkdtempSync(join(tmpdir(), "tessera-django-db-"));
const server = await startPostgres();
const sql = postgres(server.url, { max: 8, onnotice: () => {} });
after(async () => {
  await sql.end({ timeout: 1 });
  await server.destroy();
  rmSync(dir, { recursive: true, force: true });
});

/** A row as both sides see it. */
interface Row {
  session_data: string;
  /** expire_date, in milliseconds since the epoch. */
  expires: number;
}

/** One engine in the django format, with direct access to its table. */
interface Engine {
  name: string;
  store(options?: { format?: unknown }): SessionStore & { format: "django" | undefined };
  row(key: string): Promise<Row | undefined>;
  /** Writes a row as Django would (session_data as given, expire_date). */
  put(key: string, sessionData: string, expires: number): Promise<void>;
  close(): Promise<void>;
}

function sqliteEngine(): Engine {
  const path = join(dir, `db-${Math.random().toString(36).slice(2)}.sqlite3`);
  const stores: SqliteStore[] = [];
  const db = () => new DatabaseSync(path);
  return {
    name: "SqliteStore",
    store(options = {}) {
      const store = new SqliteStore(
        { path, ...options } as ConstructorParameters<
          typeof SqliteStore
        >[0],
      );
      stores.push(store);
      return store;
    },
    row(key) {
      const handle = db();
      try {
        const row = handle.prepare(
          "SELECT session_data, expire_date FROM django_session WHERE session_key = ?",
        ).get(key) as { session_data: string; expire_date: string } | undefined;
        return Promise.resolve(
          row && {
            session_data: row.session_data,
            expires: Date.parse(`${row.expire_date.replace(" ", "T")}Z`),
          },
        );
      } finally {
        handle.close();
      }
    },
    put(key, sessionData, expires) {
      const handle = db();
      try {
        // As Django's SQLite backend writes a datetime with USE_TZ = True.
        const date = new Date(expires).toISOString().replace("T", " ").replace("Z", "000");
        handle.prepare(
          "INSERT OR REPLACE INTO django_session (session_key, session_data, expire_date) VALUES (?, ?, ?)",
        ).run(key, sessionData, date);
      } finally {
        handle.close();
      }
      return Promise.resolve();
    },
    close() {
      for (const store of stores) store.close();
      return Promise.resolve();
    },
  };
}

function postgresEngine(): Engine {
  const table = freshTable();
  return {
    name: "PostgresStore",
    store(options = {}) {
      return new PostgresStore(
        { client: sql, table, ...options } as ConstructorParameters<
          typeof PostgresStore
        >[0],
      );
    },
    async row(key) {
      const rows = await sql.unsafe(
        `SELECT session_data, floor(extract(epoch FROM expire_date) * 1000)::bigint::text AS expires FROM "${table}" WHERE session_key = $1`,
        [key],
      );
      const row = rows[0];
      return row && { session_data: row.session_data as string, expires: Number(row.expires) };
    },
    async put(key, sessionData, expires) {
      await sql.unsafe(
        `INSERT INTO "${table}" (session_key, session_data, expire_date) VALUES ($1, $2, $3::text::timestamptz)
         ON CONFLICT (session_key) DO UPDATE SET session_data = EXCLUDED.session_data, expire_date = EXCLUDED.expire_date`,
        [key, sessionData, new Date(expires).toISOString()],
      );
    },
    close: () => Promise.resolve(),
  };
}

/** A Tessera app on `store`: /set?k=v, /expire?seconds=N, /date, /flush, /get. */
function app(
  store: SessionStore,
  secret: string | string[] = SECRET,
  logger = new RecordingLogger(),
): (req: Request) => Promise<Response> {
  return withSessions(async (req) => {
    const url = new URL(req.url);
    const session = await getSession(req);
    if (url.pathname === "/set") {
      for (const [name, value] of url.searchParams) session.set(name, value);
    } else if (url.pathname === "/expire") {
      session.setExpiry(Number(url.searchParams.get("seconds")));
    } else if (url.pathname === "/date") {
      session.set("a", 1);
      session.setExpiry(new Date(Date.now() + 600_000));
    } else if (url.pathname === "/flush") {
      await session.flush();
    }
    return Response.json({ key: session.sessionKey, data: Object.fromEntries(session.items()) });
  }, { store, secret, cookieName: COOKIE, cookieAge: COOKIE_AGE, logger });
}

async function call(
  handler: (req: Request) => Promise<Response>,
  path: string,
  key?: string,
): Promise<{ status: number; key: string | null; data: Record<string, unknown> }> {
  const headers: Record<string, string> = key === undefined ? {} : { cookie: `${COOKIE}=${key}` };
  const response = await handler(new Request(`http://x${path}`, { headers }));
  if (response.status !== 200) return { status: response.status, key: null, data: {} };
  const body = await response.json() as { key: string | null; data: Record<string, unknown> };
  // A new session's key is known once it is saved, after the handler: from
  // the cookie; a cookie deleted (a flush, an unknown key) leaves none.
  const cookie = /(?:^|, )sessionid=([^;]*)/.exec(response.headers.getSetCookie().join(", "));
  const loaded = body.key;
  const current = cookie === null ? loaded : cookie[1] === "" ? null : cookie[1]!;
  return { status: 200, key: current, data: body.data };
}

const settings = (secrets = [SECRET]) => ({ secrets, logger: new RecordingLogger() });

for (const make of [sqliteEngine, postgresEngine]) {
  // The shared engine behaviour, on a store in this format.
  storeContract(`${make().name} (format: "django")`, () => {
    const engine = make();
    const store = engine.store({ format: "django" });
    store.configure!({
      cookieName: COOKIE,
      cookieAge: COOKIE_AGE,
      secrets: [SECRET],
      logger: new RecordingLogger(),
    });
    return { store, cleanup: () => engine.close() };
    // This format refuses a Date expiry, and a record that is not Django's
    // is reported by the store itself (both tested below).
  }, ["test_custom_expiry_datetime", "test_decode_failure_logged_to_security"]);
}

for (const make of [sqliteEngine, postgresEngine]) {
  const engine = make();
  const name = engine.name;
  describe(`${name} with format: "django"`, () => {
    after(() => engine.close());

    it("refuses another format, and withSessions(...) without a secret, naming the store", () => {
      assert.throws(
        () => engine.store({ format: "Django" }),
        (error: Error) =>
          error instanceof TypeError &&
          error.message ===
            `Cannot create a ${name} as 'format' must be "django" or left out: current value is "Django"`,
      );
      const store = engine.store({ format: "django" });
      assert.throws(
        () => withSessions(() => new Response("ok"), { store }),
        new RegExp(
          `^TypeError: Cannot create sessions as ${name} with format "django" needs 'secret'`,
        ),
      );
      assert.equal(store.format, "django");
      assert.equal(store.authenticatesRecords, true);
      assert.equal(engine.store().format, undefined);
      assert.equal(engine.store().authenticatesRecords, false);
    });

    it("keeps Django's session_data (no signature of its own) and expire_date = now + cookieAge, in UTC", async () => {
      const handler = app(engine.store({ format: "django" }));
      const before = Date.now();
      const { key, data } = await call(handler, "/set?color=blue&name=Zo%C3%AB");
      assert.deepEqual(data, { color: "blue", name: "Zoë" });
      const row = (await engine.row(key!))!;
      assert.doesNotMatch(row.session_data, /^s1:/);
      // signing.dumps(..., compress=True): base64 of the data (maybe
      // zlib'd, then with a leading "."), a timestamp and a signature.
      assert.match(row.session_data, /^\.?[A-Za-z0-9_-]+:[A-Za-z0-9_-]+:[A-Za-z0-9_-]{43}$/);
      const decoded = await decodeDjangoSession(row.session_data, settings());
      assert.deepEqual(JSON.parse(decoded!.json), { color: "blue", name: "Zoë" });
      assert.ok(row.expires >= before + COOKIE_AGE * 1000 - 1, String(row.expires - before));
      assert.ok(row.expires <= Date.now() + COOKIE_AGE * 1000);
    });

    it("keeps a custom expiry as _session_expiry in the data and as expire_date", async () => {
      const handler = app(engine.store({ format: "django" }));
      const { key } = await call(handler, "/set?a=1");
      const before = Date.now();
      await call(handler, "/expire?seconds=600", key!);
      const row = (await engine.row(key!))!;
      const decoded = await decodeDjangoSession(row.session_data, settings());
      assert.deepEqual(JSON.parse(decoded!.json), { a: "1", _session_expiry: 600 });
      assert.equal(decoded!.expiry, 600);
      assert.ok(Math.abs(row.expires - (before + 600_000)) < 5_000, String(row.expires - before));
    });

    it("refuses setExpiry(Date) with a 500 and the reason logged, and stores nothing", async () => {
      const logger = new RecordingLogger();
      const handler = app(engine.store({ format: "django" }), SECRET, logger);
      const response = await handler(new Request("http://x/date"));
      assert.equal(response.status, 500);
      assert.equal(response.headers.get("set-cookie"), null);
      assert.match(
        String((logger.errors[0]?.error as Error).message),
        /format "django" keeps only a whole number of seconds/,
      );
    });

    it("reads a row Django wrote, and no row whose expire_date has passed", async () => {
      const handler = app(engine.store({ format: "django" }));
      const live = "livedjangorow0000000000000000001";
      const gone = "expireddjangorow0000000000000001";
      const data = JSON.stringify({ _auth_user_id: "3", color: "red" });
      await engine.put(live, await encodeDjangoSession(data, [SECRET]), Date.now() + 60_000);
      await engine.put(gone, await encodeDjangoSession(data, [SECRET]), Date.now() - 1000);
      assert.deepEqual((await call(handler, "/get", live)).data, JSON.parse(data));
      const expired = await call(handler, "/get", gone);
      assert.deepEqual(expired.data, {});
      assert.equal(expired.key, null);
    });

    it("ignores, with a warning, a row changed or signed with another secret, and a row in its native format", async () => {
      const logger = new RecordingLogger();
      const handler = app(engine.store({ format: "django" }), SECRET, logger);
      const data = JSON.stringify({ _auth_user_id: "1" });
      const signed = await encodeDjangoSession(data, [SECRET]);
      const cases: [string, string][] = [
        ["othersecret00000000000000000001", await encodeDjangoSession(data, ["another secret"])],
        [
          "tampered0000000000000000000001",
          signed.slice(0, -2) + (signed.endsWith("AA") ? "BB" : "AA"),
        ],
        ["nativerow000000000000000000001", data],
        ["nativesealed000000000000000001", `s1:${"A".repeat(43)}:${data}`],
      ];
      for (const [key, sessionData] of cases) {
        await engine.put(key, sessionData, Date.now() + 60_000);
        const seen = await call(handler, "/get", key);
        assert.deepEqual(seen.data, {}, key);
        assert.equal(seen.key, null, key);
      }
      assert.ok(logger.warnings.length >= 3, JSON.stringify(logger.warnings));
      assert.doesNotMatch(JSON.stringify(logger.warnings), /othersecret|tampered|native/);
    });

    it("saves a row signed with an old secret, or in Django's pre-3.1 format, again with the current secret on its next request", async () => {
      const handler = app(engine.store({ format: "django" }), [SECRET, OLD_SECRET]);
      const old = "oldsecretrow000000000000000001";
      const legacy = "legacyrow000000000000000000001";
      const data = { _auth_user_id: "8", color: "green" };
      await engine.put(
        old,
        await dumpsJson(JSON.stringify(data), {
          secret: OLD_SECRET,
          salt: DJANGO_SESSION_SALT,
          compress: true,
        }),
        Date.now() + 60_000,
      );
      const { outcomes } = djangoCodec([{ op: "legacy", secret: SECRET, data }]);
      await engine.put(legacy, outcomes[0]!.session_data!, Date.now() + 60_000);
      for (const key of [old, legacy]) {
        assert.deepEqual((await call(handler, "/get", key)).data, data, key);
        const row = (await engine.row(key))!;
        const current = await decodeDjangoSession(row.session_data, settings([SECRET]));
        assert.deepEqual(JSON.parse(current!.json), data, key);
        assert.equal(current!.stale, false, key);
      }
    });

    it("Django decodes what it stores: the data, a custom expiry, the _auth_* keys", async () => {
      const handler = app(engine.store({ format: "django" }));
      const { key } = await call(
        handler,
        "/set?_auth_user_id=12&_auth_user_backend=django.contrib.auth.backends.ModelBackend&_auth_user_hash=" +
          "ab".repeat(32) + "&name=Zo%C3%AB",
      );
      await call(handler, "/expire?seconds=900", key!);
      const row = (await engine.row(key!))!;
      const { outcomes } = djangoCodec([
        { op: "decode", secret: SECRET, session_data: row.session_data, cookie_age: COOKIE_AGE },
        { op: "decode", secret: OLD_SECRET, session_data: row.session_data },
      ]);
      assert.deepEqual(outcomes[0]!.value, {
        _auth_user_id: "12",
        _auth_user_backend: "django.contrib.auth.backends.ModelBackend",
        _auth_user_hash: "ab".repeat(32),
        name: "Zoë",
        _session_expiry: 900,
      });
      assert.deepEqual(outcomes[0]!.warnings, []);
      assert.equal(outcomes[0]!.expiry_age, 900);
      assert.deepEqual(outcomes[1]!.value, {});
    });

    it("an update of a row deleted meanwhile fails, and a flush deletes the row", async () => {
      const store = engine.store({ format: "django" });
      const handler = app(store);
      const { key } = await call(handler, "/set?a=1");
      await store.delete(key!);
      await assert.rejects(
        store.save(key!, { data: '{"a":2}', expiresAt: Date.now() + 60_000 }),
        SessionInterruptedError,
      );
      const other = (await call(handler, "/set?b=1")).key!;
      assert.ok(await engine.row(other));
      await call(handler, "/flush", other);
      assert.equal(await engine.row(other), undefined);
    });

    it("1000 concurrent update and delete pairs: no deleted session comes back", async () => {
      const store = engine.store({ format: "django" });
      app(store); // configure() with the secret
      const keys = await Promise.all(
        Array.from(
          { length: 1000 },
          () => store.create({ data: '{"v":0}', expiresAt: Date.now() + 60_000 }),
        ),
      );
      let interrupted = 0;
      // A third of the deletes start at once, the others up to a few
      // milliseconds later: they land before, during and after the updates.
      await Promise.all(keys.flatMap((key, i) => [
        store.save(key, { data: '{"v":1}', expiresAt: Date.now() + 60_000 }).catch((error) => {
          if (!(error instanceof SessionInterruptedError)) throw error;
          interrupted++;
        }),
        i % 3 === 0
          ? store.delete(key)
          : new Promise((resolve) => setTimeout(resolve, i % 7)).then(() => store.delete(key)),
      ]));
      let resurrected = 0;
      for (const key of keys) if (await store.load(key) !== null) resurrected++;
      console.log(
        `${name} django format: 1000 pairs, ${interrupted} updates interrupted, ${resurrected} resurrections`,
      );
      assert.equal(resurrected, 0);
    });
  });
}

describe("The native format is unchanged", () => {
  for (const make of [sqliteEngine, postgresEngine]) {
    it(`${make().name} without format keeps withSessions's signed record`, async () => {
      const engine = make();
      const handler = app(engine.store());
      const { key } = await call(handler, "/set?a=1");
      const row = (await engine.row(key!))!;
      assert.match(row.session_data, /^s1:[A-Za-z0-9_-]{43}:\{"a":"1"\}$/);
      await engine.close();
    });
  }
});
