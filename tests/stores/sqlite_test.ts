import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { getSession, SessionInterruptedError, SqliteStore, withSessions } from "../../mod.ts";
import { RecordingLogger } from "../_config.ts";
import { storeContract } from "./_contract.ts";

const dir = mkdtempSync(join(tmpdir(), "tessera-sqlite-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
function freshFile(): string {
  return join(dir, `sessions-${++files}.sqlite3`);
}

storeContract("SqliteStore", () => {
  const store = new SqliteStore({ path: freshFile() });
  return { store, cleanup: () => store.close() };
});

const HOUR = 3_600_000;
const KEY = "abcdefgh12345678abcdefgh12345678";

// The schema Django 3.2's migration for django.contrib.sessions creates on SQLite.
const DJANGO_TABLE =
  'CREATE TABLE "django_session" ("session_key" varchar(40) NOT NULL PRIMARY KEY, "session_data" text NOT NULL, "expire_date" datetime NOT NULL)';
const DJANGO_INDEX =
  'CREATE INDEX "django_session_expire_date_a5c62663" ON "django_session" ("expire_date")';

function open(path: string): DatabaseSync {
  return new DatabaseSync(path);
}

describe("SqliteStore", () => {
  it("creates Django's django_session table and expire_date index", () => {
    const path = freshFile();
    const store = new SqliteStore({ path });
    const db = open(path);
    try {
      const sql = db.prepare(
        "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL ORDER BY type",
      )
        .all("django_session").map((row) =>
          (row as { sql: string }).sql.replace(/IF NOT EXISTS /, "")
        );
      assert.deepEqual(sql, [DJANGO_INDEX, DJANGO_TABLE]);
    } finally {
      db.close();
      store.close();
    }
  });

  it("reuses a table Django created and reads its rows, with or without microseconds", async () => {
    const path = freshFile();
    const db = open(path);
    db.exec(DJANGO_TABLE);
    db.exec(DJANGO_INDEX);
    const insert = db.prepare("INSERT INTO django_session VALUES (?, ?, ?)");
    insert.run(KEY, '{"a":1}', "2999-01-02 03:04:05.123456");
    insert.run("zyxwvuts12345678", '{"b":2}', "2999-01-02 03:04:05");
    insert.run("expired012345678", '{"c":3}', "2001-01-01 00:00:00");
    db.close();
    const store = new SqliteStore({ path });
    try {
      assert.deepEqual(await store.load(KEY), {
        data: '{"a":1}',
        expiresAt: Date.UTC(2999, 0, 2, 3, 4, 5, 123),
      });
      assert.equal(
        (await store.load("zyxwvuts12345678"))?.expiresAt,
        Date.UTC(2999, 0, 2, 3, 4, 5),
      );
      assert.equal(await store.load("expired012345678"), null);
      assert.equal(await store.exists("expired012345678"), true, "exists() ignores expiry");
      assert.equal(await store.clearExpired(), 1);
      assert.equal(await store.exists("expired012345678"), false);
    } finally {
      store.close();
    }
  });

  it("writes expire_date as Django's UTC text with microseconds", async () => {
    const path = freshFile();
    const store = new SqliteStore({ path });
    const expiresAt = Date.UTC(2031, 6, 8, 9, 10, 11, 12);
    await store.save(KEY, { data: "{}", expiresAt }, true);
    store.close();
    const db = open(path);
    try {
      const row = db.prepare("SELECT session_key, session_data, expire_date FROM django_session")
        .get() as Record<string, string>;
      assert.deepEqual({ ...row }, {
        session_key: KEY,
        session_data: "{}",
        expire_date: "2031-07-08 09:10:11.012000",
      });
    } finally {
      db.close();
    }
  });

  it("keeps an expiry past year 9999 (Django's limit) as the latest date it can hold", async () => {
    const store = new SqliteStore({ path: ":memory:" });
    try {
      await store.save(KEY, { data: "{}", expiresAt: 8.64e15 }, true);
      const loaded = await store.load(KEY);
      assert.equal(new Date(loaded!.expiresAt).getUTCFullYear(), 9999);
    } finally {
      store.close();
    }
  });

  it("keeps an expiry past the last instant a Date can hold as the latest date it can hold", async () => {
    // A session's own expiry may be any whole number of seconds: the
    // instant it names can lie past what a Date represents.
    const store = new SqliteStore({ path: ":memory:" });
    try {
      const handler = withSessions(async (req) => {
        const session = await getSession(req);
        session.setExpiry(Number.MAX_SAFE_INTEGER);
        session.set("n", 1);
        return new Response("ok");
      }, { store, logger: new RecordingLogger() });
      const response = await handler(new Request("http://127.0.0.1/"));
      assert.equal(response.status, 200);
      const key = /^sessionid=([a-z0-9]+);/.exec(response.headers.get("set-cookie")!)![1]!;
      const loaded = await store.load(key);
      assert.equal(new Date(loaded!.expiresAt).getUTCFullYear(), 9999);
    } finally {
      store.close();
    }
  });

  it("reads back text with a NUL character whole, as a custom serializer may write it", async () => {
    const store = new SqliteStore({ path: ":memory:" });
    try {
      for (const data of ["a\u0000b", "\u0000", '{"a":1}\u0000{"b":2}', "", "\ufeff{}"]) {
        await store.delete(KEY);
        await store.save(KEY, { data, expiresAt: Date.now() + HOUR }, true);
        assert.equal((await store.load(KEY))?.data, data, JSON.stringify(data));
      }
    } finally {
      store.close();
    }
  });

  it("runs the database in WAL mode", () => {
    const path = freshFile();
    const store = new SqliteStore({ path });
    const db = open(path);
    try {
      assert.deepEqual({ ...db.prepare("PRAGMA journal_mode").get() }, { journal_mode: "wal" });
    } finally {
      db.close();
      store.close();
    }
  });

  it("takes a table name, with Django's index name for it", async () => {
    const path = freshFile();
    const store = new SqliteStore({ path, table: "myapp_session" });
    const key = await store.create({ data: '{"x":1}', expiresAt: Date.now() + HOUR });
    store.close();
    const db = open(path);
    try {
      const names = db.prepare("SELECT name FROM sqlite_master ORDER BY name").all().map((row) =>
        (row as { name: string }).name
      );
      assert.ok(names.includes("myapp_session"));
      assert.ok(
        names.some((name) => /^myapp_session_expire_date_[0-9a-f]{8}$/.test(name)),
        names.join(),
      );
      assert.equal(
        (db.prepare("SELECT session_data FROM myapp_session WHERE session_key = ?").get(key) as {
          session_data: string;
        }).session_data,
        '{"x":1}',
      );
    } finally {
      db.close();
    }
  });

  it("rejects a table name that is not an identifier, naming the option", () => {
    for (const table of ['x"; DROP TABLE django_session; --', "1abc", "", "a-b", "a".repeat(64)]) {
      assert.throws(() => new SqliteStore({ path: ":memory:", table }), {
        name: "TypeError",
        message: /'table'/,
      });
    }
  });

  it("rejects a missing path, and a bad busyTimeout", () => {
    assert.throws(() => new SqliteStore({ path: "" }), { name: "TypeError", message: /'path'/ });
    assert.throws(() => new SqliteStore(undefined as never), TypeError);
    assert.throws(() => new SqliteStore({ path: ":memory:", busyTimeout: -1 }), {
      name: "RangeError",
      message: /'busyTimeout'/,
    });
  });

  it("fails at construction for a database in a directory that does not exist, naming it", () => {
    const path = join(dir, "missing-dir", "sessions.sqlite3");
    assert.throws(() => new SqliteStore({ path }), (error: Error) => {
      assert.match(error.message, /Cannot open the session database '.*missing-dir.*'/);
      return true;
    });
  });

  it("two stores on one file see each other's writes", async () => {
    const path = freshFile();
    const a = new SqliteStore({ path });
    const b = new SqliteStore({ path });
    try {
      const key = await a.create({ data: '{"from":"a"}', expiresAt: Date.now() + HOUR });
      assert.equal((await b.load(key))?.data, '{"from":"a"}');
      await b.save(key, { data: '{"from":"b"}', expiresAt: Date.now() + HOUR });
      assert.equal((await a.load(key))?.data, '{"from":"b"}');
      await a.delete(key);
      await assert.rejects(
        b.save(key, { data: "{}", expiresAt: Date.now() + HOUR }),
        SessionInterruptedError,
      );
    } finally {
      a.close();
      b.close();
    }
  });

  it("reads a row it cannot parse as no session, logged without the key", async () => {
    const path = freshFile();
    const store = new SqliteStore({ path });
    const logger = new RecordingLogger();
    store.configure({ cookieName: "sessionid", cookieAge: 60, secrets: [], logger });
    const db = open(path);
    db.prepare("INSERT INTO django_session VALUES (?, ?, ?)").run(KEY, "{}", "not a date");
    db.close();
    try {
      assert.equal(await store.load(KEY), null);
      assert.equal(logger.warnings.length, 1);
      assert.ok(!logger.warnings[0]!.includes(KEY));
    } finally {
      store.close();
    }
  });

  it("refuses to save under a value that is not a session key", async () => {
    const store = new SqliteStore({ path: ":memory:" });
    try {
      await assert.rejects(
        store.save("not a key!", { data: "{}", expiresAt: Date.now() + HOUR }, true),
        TypeError,
      );
    } finally {
      store.close();
    }
  });

  it("a failing database answers 500 with a logged error that names no key", async () => {
    const store = new SqliteStore({ path: freshFile() });
    const logger = new RecordingLogger();
    const handler = withSessions(async (req) => {
      (await getSession(req)).set("x", 1);
      return new Response("ok");
    }, { store, logger });
    const first = await handler(new Request("http://localhost/"));
    assert.equal(first.status, 200);
    const cookie = first.headers.get("set-cookie")!.split(";")[0]!;
    store.close();
    const second = await handler(new Request("http://localhost/", { headers: { cookie } }));
    assert.equal(second.status, 500);
    assert.equal(second.headers.get("set-cookie"), null);
    assert.equal(logger.errors.length, 1);
    const logged = `${logger.errors[0]!.message} ${String(logger.errors[0]!.error)}`;
    assert.match(logged, /Cannot load the session/);
    assert.ok(!logged.includes(cookie.split("=")[1]!));
  });
});
