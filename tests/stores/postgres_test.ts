import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import postgres from "postgres";
import {
  getSession,
  type PostgresClient,
  type PostgresRow,
  PostgresStore,
  SessionInterruptedError,
  withSessions,
} from "../../mod.ts";
import { generateKey } from "../../src/_key.ts";
import { RecordingLogger } from "../_config.ts";
import {
  freshTable,
  POSTGRES_CLIENTS,
  type PostgresClientHandle,
  startPostgres,
} from "../_postgres.ts";
import { storeContract } from "./_contract.ts";

const server = await startPostgres();
const handles: PostgresClientHandle[] = [];
for (const kind of POSTGRES_CLIENTS) handles.push(await kind.connect(server.url));
// A client of our own to look at what the store wrote, and to write as Django would.
const admin = postgres(server.url, { max: 4, onnotice: () => {} });
after(async () => {
  await admin.end({ timeout: 1 });
  for (const handle of handles) await handle.close();
  await server.destroy();
});

const HOUR = 3_600_000;
const KEY = "abcdefgh12345678abcdefgh12345678";

// What Django 3.2.25's migration for django.contrib.sessions creates on
// PostgreSQL (`manage.py sqlmigrate sessions 0001`), in its order.
function djangoDdl(table: string, keyIndex: string, dateIndex: string): string[] {
  return [
    `CREATE TABLE "${table}" ("session_key" varchar(40) NOT NULL PRIMARY KEY, "session_data" text NOT NULL, "expire_date" timestamp with time zone NOT NULL)`,
    `CREATE INDEX "${keyIndex}" ON "${table}" ("session_key" varchar_pattern_ops)`,
    `CREATE INDEX "${dateIndex}" ON "${table}" ("expire_date")`,
  ];
}

/** The table as PostgreSQL describes it: columns, then index definitions. */
async function describeTable(table: string): Promise<{ columns: string[]; indexes: string[] }> {
  const columns = await admin.unsafe(
    `SELECT a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END AS c
     FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    [`"${table}"`],
  );
  const indexes = await admin.unsafe(
    "SELECT indexdef FROM pg_indexes WHERE tablename = $1 ORDER BY indexname",
    [table],
  );
  return {
    columns: columns.map((row) => row.c as string),
    indexes: indexes.map((row) => row.indexdef as string),
  };
}

// A real client that records each statement's first word.
function spying(client: PostgresClient): { client: PostgresClient; sent: string[] } {
  const sent: string[] = [];
  const run = "unsafe" in client
    ? (text: string, parameters: string[]) => client.unsafe(text, parameters)
    : async (text: string, parameters: string[]) => (await client.query(text, parameters)).rows;
  return {
    sent,
    client: {
      query: async (text: string, parameters: string[]) => {
        sent.push(text.trim().split(/\s+/)[0]!);
        return { rows: await run(text, parameters) as PostgresRow[] };
      },
    },
  };
}

for (const [index, kind] of POSTGRES_CLIENTS.entries()) {
  const client = handles[index]!.client;
  storeContract(
    `PostgresStore (${kind.name})`,
    () => ({ store: new PostgresStore({ client, table: freshTable() }) }),
  );

  describe(`PostgresStore (${kind.name})`, () => {
    it("writes expire_date in UTC with Django's microseconds, and reads it back to the millisecond", async () => {
      const table = freshTable();
      const store = new PostgresStore({ client, table });
      const expiresAt = Date.UTC(2031, 6, 8, 9, 10, 11, 12);
      await store.save(KEY, { data: '{"a":1}', expiresAt }, true);
      const [row] = await admin.unsafe(
        `SELECT session_key, session_data, (expire_date AT TIME ZONE 'UTC')::text AS utc FROM "${table}"`,
      );
      assert.deepEqual({ ...row }, {
        session_key: KEY,
        session_data: '{"a":1}',
        utc: "2031-07-08 09:10:11.012",
      });
      assert.deepEqual(await store.load(KEY), { data: '{"a":1}', expiresAt });
    });

    it("serves sessions through withSessions", async () => {
      const store = new PostgresStore({ client, table: freshTable() });
      const handler = withSessions(async (req) => {
        const session = await getSession<{ n: number }>(req);
        session.set("n", (session.get("n") ?? 0) + 1);
        return new Response(String(session.get("n")));
      }, { store });
      const first = await handler(new Request("http://localhost/"));
      const cookie = first.headers.get("set-cookie")!.split(";")[0]!;
      const second = await handler(new Request("http://localhost/", { headers: { cookie } }));
      assert.equal(await second.text(), "2");
    });
  });
}

describe("PostgresStore", () => {
  const client = handles[0]!.client;

  it("creates the table exactly as Django's migration does, indexes and their names included", async () => {
    await admin.unsafe('DROP TABLE IF EXISTS "django_session"');
    const store = new PostgresStore({ client });
    await store.ready();
    const made = await describeTable("django_session");
    // Django's own DDL, run on a table of another name, gives the same
    // description once the names are swapped.
    const twin = freshTable();
    for (
      const ddl of djangoDdl(
        twin,
        "django_session_session_key_c0390e0f_like",
        "django_session_expire_date_a5c62663",
      ).map((text) => text.replace(/"django_session_/g, `"${twin}_`))
    ) {
      await admin.unsafe(ddl);
    }
    const django = await describeTable(twin);
    assert.deepEqual(made, {
      columns: django.columns,
      indexes: django.indexes.map((text) => text.replaceAll(twin, "django_session")),
    });
    assert.deepEqual(made, {
      columns: [
        "session_key character varying(40) NOT NULL",
        "session_data text NOT NULL",
        "expire_date timestamp with time zone NOT NULL",
      ],
      indexes: [
        "CREATE INDEX django_session_expire_date_a5c62663 ON public.django_session USING btree (expire_date)",
        "CREATE UNIQUE INDEX django_session_pkey ON public.django_session USING btree (session_key)",
        "CREATE INDEX django_session_session_key_c0390e0f_like ON public.django_session USING btree (session_key varchar_pattern_ops)",
      ],
    });
  });

  it("uses a table that exists as it is, never altering it, and reads the rows Django wrote", async () => {
    const table = freshTable();
    // Django's table without the _like index, and a column of the
    // project's own: neither is the store's business.
    await admin.unsafe(djangoDdl(table, "x", "y")[0]!);
    await admin.unsafe(`ALTER TABLE "${table}" ADD COLUMN note text DEFAULT 'mine'`);
    await admin.unsafe(
      `INSERT INTO "${table}" (session_key, session_data, expire_date) VALUES
       ($1, '{"a":1}', '2999-01-02 03:04:05.123456+00'),
       ('zyxwvuts12345678', '{"b":2}', '2999-01-02 05:04:05+02'),
       ('expired012345678', '{"c":3}', '2001-01-01 00:00:00+00')`,
      [KEY],
    );
    const before = await describeTable(table);
    const store = new PostgresStore({ client, table });
    assert.deepEqual(await store.load(KEY), {
      data: '{"a":1}',
      expiresAt: Date.UTC(2999, 0, 2, 3, 4, 5, 123),
    });
    assert.equal((await store.load("zyxwvuts12345678"))?.expiresAt, Date.UTC(2999, 0, 2, 3, 4, 5));
    assert.equal(await store.load("expired012345678"), null);
    assert.equal(await store.exists("expired012345678"), true, "exists() ignores expiry");
    assert.equal(await store.clearExpired(), 1);
    await store.save(KEY, { data: '{"a":2}', expiresAt: Date.now() + HOUR });
    assert.deepEqual(await describeTable(table), before);
    const [row] = await admin.unsafe(`SELECT note FROM "${table}" WHERE session_key = $1`, [KEY]);
    assert.equal(row?.note, "mine");
  });

  it("gives a custom table Django's index names, cut to 63 characters as Django cuts them", async () => {
    const long = `a${"b".repeat(62)}`;
    for (const table of ["myapp_session", long]) {
      await admin.unsafe(`DROP TABLE IF EXISTS "${table}"`);
      await new PostgresStore({ client, table }).ready();
    }
    const names = (await admin.unsafe(
      "SELECT indexname FROM pg_indexes WHERE tablename = ANY($1) AND indexname NOT LIKE '%_pkey' ORDER BY indexname",
      [["myapp_session", long]],
    )).map((row) => row.indexname);
    // What Django 3.2.25's schema editor names them (collect_sql of create_model).
    assert.deepEqual(names, [
      "abbbbbbbbbbbbbbbbbbbbbbb_session_key_4aa9f4ee_like",
      "abbbbbbbbbbbbbbbbbbbbbbbbb_expire_date_742132e9",
      "myapp_session_expire_date_a4ec3f49",
      "myapp_session_session_key_71e20537_like",
    ]);
  });

  it("starts many stores on one missing table at once: one table, no error", async () => {
    const table = freshTable();
    const stores = Array.from(
      { length: 20 },
      (_, i) => new PostgresStore({ client: handles[i % handles.length]!.client, table }),
    );
    await Promise.all(stores.map((store) => store.ready()));
    const { indexes } = await describeTable(table);
    assert.equal(indexes.length, 3);
    console.log(`20 stores set up one table at once: ${indexes.length} indexes, 0 errors`);
  });

  it("sends nothing to the database for a value that is not a session key", async () => {
    const { client: spy, sent } = spying(client);
    const store = new PostgresStore({ client: spy, table: freshTable() });
    for (const key of ["", "*", "../x", "x".repeat(1240), "ABCDEFGHIJKL", "a'; DROP TABLE x; --"]) {
      assert.equal(await store.load(key), null);
      assert.equal(await store.exists(key), false);
      await store.delete(key);
      await assert.rejects(
        store.save(key, { data: "{}", expiresAt: Date.now() + HOUR }, true),
        TypeError,
      );
      await assert.rejects(
        store.save(key, { data: "{}", expiresAt: Date.now() + HOUR }),
        TypeError,
      );
    }
    assert.deepEqual(sent, []);
    await store.exists(KEY);
    assert.deepEqual(sent, ["DO", "SELECT"], "the table is set up once, on first use");
    await store.exists(KEY);
    assert.deepEqual(sent, ["DO", "SELECT", "SELECT"]);
  });

  it("keeps an expiry past year 9999 (Django's limit) as the latest instant Django can read", async () => {
    const table = freshTable();
    const store = new PostgresStore({ client, table });
    const handler = withSessions(async (req) => {
      const session = await getSession(req);
      session.setExpiry(Number.MAX_SAFE_INTEGER);
      session.set("n", 1);
      return new Response("ok");
    }, { store, logger: new RecordingLogger() });
    const response = await handler(new Request("http://127.0.0.1/"));
    assert.equal(response.status, 200);
    const key = /^sessionid=([a-z0-9]+);/.exec(response.headers.get("set-cookie")!)![1]!;
    const [row] = await admin.unsafe(
      `SELECT (expire_date AT TIME ZONE 'UTC')::text AS utc FROM "${table}" WHERE session_key = $1`,
      [key],
    );
    assert.equal(row?.utc, "9999-12-31 23:59:59.999999");
    assert.equal(new Date((await store.load(key))!.expiresAt).getUTCFullYear(), 9999);
    await store.save(KEY, { data: "{}", expiresAt: -8.64e15 }, true);
    assert.equal(await store.exists(KEY), true);
    assert.equal(await store.load(KEY), null);
  });

  it("refuses data a text column cannot hold (NUL, an unpaired surrogate) and stores nothing", async () => {
    const store = new PostgresStore({ client, table: freshTable() });
    for (const data of ["a\u0000b", '{"a":"\ud800"}', "\udfff"]) {
      await assert.rejects(store.save(KEY, { data, expiresAt: Date.now() + HOUR }, true), {
        name: "TypeError",
        message: /text without NUL characters or unpaired surrogates/,
      });
      assert.equal(await store.exists(KEY), false);
    }
    for (const data of ["", "\ufeff{}", "😀 \u2028 tëst", "x".repeat(100_000)]) {
      await store.delete(KEY);
      await store.save(KEY, { data, expiresAt: Date.now() + HOUR }, true);
      assert.equal((await store.load(KEY))?.data, data);
    }
  });

  it("clears expired rows in batches of batchSize, on the expire_date index", async () => {
    const table = freshTable();
    const { client: spy, sent } = spying(client);
    const store = new PostgresStore({ client: spy, table, batchSize: 7 });
    await store.ready();
    await admin.unsafe(
      `INSERT INTO "${table}" SELECT 'expired' || lpad(i::text, 9, '0'), '{}', now() - interval '1 hour' FROM generate_series(1, 30) i`,
    );
    const live = await store.create({ data: '{"live":1}', expiresAt: Date.now() + HOUR });
    sent.length = 0;
    assert.equal(await store.clearExpired(), 30);
    assert.equal(sent.length, 5, "7 + 7 + 7 + 7 + 2");
    assert.equal((await store.load(live))?.data, '{"live":1}');
    assert.equal(await store.clearExpired(), 0);
    const plan = new pg.Client({ connectionString: server.url });
    await plan.connect();
    try {
      await plan.query("SET enable_seqscan = off");
      const { rows } = await plan.query(
        `EXPLAIN SELECT session_key FROM "${table}" WHERE expire_date < now()`,
      );
      const text = rows.map((row: { "QUERY PLAN": string }) => row["QUERY PLAN"]).join("\n");
      assert.match(text, new RegExp(`${table}_expire_date_[0-9a-f]{8}`));
    } finally {
      await plan.end();
    }
  });

  it("a sweep racing saves that extend expired sessions removes only what stayed expired", async () => {
    const table = freshTable();
    const store = new PostgresStore({ client, table, batchSize: 50 });
    const keys: string[] = [];
    for (let i = 0; i < 400; i++) {
      keys.push(await store.create({ data: "{}", expiresAt: Date.now() - 1000 }));
    }
    const extended = keys.filter((_, i) => i % 2 === 0);
    const outcomes = await Promise.all([
      store.clearExpired(),
      ...extended.map((key) =>
        store.save(key, { data: '{"kept":1}', expiresAt: Date.now() + HOUR }).then(
          () => "saved",
          (error) => {
            if (error instanceof SessionInterruptedError) return "interrupted";
            throw error;
          },
        )
      ),
    ]);
    const removed = outcomes[0] as number;
    const saved = outcomes.filter((outcome) => outcome === "saved").length;
    let live = 0;
    for (const key of extended) {
      const record = await store.load(key);
      if (record !== null) live++;
    }
    assert.equal(live, saved, "every acknowledged save is live");
    assert.equal(removed + saved, keys.length, "every other row was swept");
    console.log(
      `${extended.length} saves raced a sweep of ${keys.length} expired rows: ${saved} saved and kept, ${removed} removed, 0 live rows lost`,
    );
  });

  it("thousands of concurrent save and delete pairs: a deleted session never comes back", async () => {
    const table = freshTable();
    const store = new PostgresStore({ client, table });
    await store.ready();
    const pairs = 2000;
    const keys = (await admin.unsafe(
      `INSERT INTO "${table}" SELECT md5(i::text), '{}', now() + interval '1 hour' FROM generate_series(1, ${pairs}) i RETURNING session_key`,
    )).map((row) => row.session_key as string);
    let interrupted = 0;
    await Promise.all(keys.flatMap((key) => [
      store.save(key, { data: '{"n":2}', expiresAt: Date.now() + HOUR }).catch((error) => {
        if (!(error instanceof SessionInterruptedError)) throw error;
        interrupted++;
      }),
      store.delete(key),
    ]));
    let resurrected = 0;
    for (const key of keys) if (await store.exists(key)) resurrected++;
    assert.equal(resurrected, 0);
    console.log(
      `${pairs} save/delete pairs, ${interrupted} saves refused after the delete, ${resurrected} resurrections`,
    );
  });

  it("two stores on one table, each through another client, see each other's writes", async () => {
    const table = freshTable();
    const stores = handles.map(({ client }) => new PostgresStore({ client, table }));
    const key = await stores[0]!.create({ data: '{"from":0}', expiresAt: Date.now() + HOUR });
    for (const [i, store] of stores.entries()) {
      assert.equal((await store.load(key))?.data, `{"from":${i === 0 ? 0 : i - 1}}`);
      await store.save(key, { data: `{"from":${i}}`, expiresAt: Date.now() + HOUR });
    }
    await stores.at(-1)!.delete(key);
    await assert.rejects(
      stores[0]!.save(key, { data: "{}", expiresAt: Date.now() + HOUR }),
      SessionInterruptedError,
    );
  });

  it("prefers unsafe() to query(), and rejects what is not a client or a table name", async () => {
    const seen: string[] = [];
    const both = {
      unsafe: (text: string) => {
        seen.push(text.trim().split(/\s+/)[0]!);
        return Promise.resolve([]);
      },
      query: () => Promise.reject(new Error("not this one")),
    };
    assert.equal(await new PostgresStore({ client: both }).load(KEY), null);
    assert.deepEqual(seen, ["DO", "SELECT"]);
    for (const bad of [undefined, null, {}, { execute: () => null }, "postgres://127.0.0.1"]) {
      assert.throws(() => new PostgresStore({ client: bad as never }), {
        name: "TypeError",
        message: /'client' must be a PostgreSQL client with an unsafe\(\) or query\(\) method/,
      });
    }
    for (const table of ['x"; DROP TABLE django_session; --', "1abc", "", "a-b", "a".repeat(64)]) {
      assert.throws(() => new PostgresStore({ client, table }), {
        name: "TypeError",
        message: /'table'/,
      });
    }
    for (const batchSize of [0, -1, 1.5, Number.NaN]) {
      assert.throws(() => new PostgresStore({ client, batchSize }), {
        name: "RangeError",
        message: /'batchSize'/,
      });
    }
  });

  it("turns a database error into one that names neither the key nor its parameters", async () => {
    const key = generateKey();
    const failure = Object.assign(new Error(`boom near ${key}`), {
      code: "XX000",
      parameters: [key],
      detail: `Key (session_key)=(${key}) exists`,
    });
    const store = new PostgresStore({
      client: {
        query: (text: string) =>
          text.startsWith("DO") ? Promise.resolve({ rows: [] }) : Promise.reject(failure),
      },
    });
    await assert.rejects(store.load(key), (error: Error) => {
      assert.equal(error.message, "Cannot read a session in PostgreSQL: boom near <session key>");
      const cause = error.cause as Error & Record<string, unknown>;
      assert.equal(cause.message, "boom near <session key>");
      assert.equal(cause.code, "XX000");
      assert.equal(cause.parameters, undefined);
      assert.equal(cause.detail, undefined);
      return true;
    });
  });

  it("sends a statement the server ended by shutting down once more, and only once", async () => {
    const shutdown = Object.assign(
      new Error("terminating connection due to administrator command"),
      {
        code: "57P01",
      },
    );
    let failures = 1;
    const sent: string[] = [];
    const flaky = {
      query: (text: string) => {
        sent.push(text.trim().split(/\s+/)[0]!);
        if (text.startsWith("SELECT") && failures-- > 0) return Promise.reject(shutdown);
        return Promise.resolve({ rows: [] });
      },
    };
    const store = new PostgresStore({ client: flaky });
    assert.equal(await store.exists(KEY), false);
    assert.deepEqual(sent, ["DO", "SELECT", "SELECT"]);
    failures = 2;
    await assert.rejects(
      store.exists(KEY),
      /^Error: Cannot check a session in PostgreSQL: terminating/,
    );
    assert.equal(sent.length, 5);
    const other = Object.assign(new Error("connection reset"), { code: "ECONNRESET" });
    const once = new PostgresStore({
      client: {
        query: (text: string) =>
          text.startsWith("DO") ? Promise.resolve({ rows: [] }) : Promise.reject(other),
      },
    });
    // A connection cut without the server's word may have run the statement: no retry.
    await assert.rejects(once.exists(KEY), /connection reset/);
  });

  it("a database that is not there answers 500 with a logged error that names no key, and ready() tries again", async () => {
    const gone = await startPostgres();
    const handle = await POSTGRES_CLIENTS[0]!.connect(gone.url);
    const store = new PostgresStore({ client: handle.client });
    const logger = new RecordingLogger();
    const handler = withSessions(async (req) => {
      (await getSession(req)).set("x", 1);
      return new Response("ok");
    }, { store, logger });
    try {
      const first = await handler(new Request("http://localhost/"));
      assert.equal(first.status, 200);
      const cookie = first.headers.get("set-cookie")!.split(";")[0]!;
      await gone.stop();
      const second = await handler(new Request("http://localhost/", { headers: { cookie } }));
      assert.equal(second.status, 500);
      assert.equal(second.headers.get("set-cookie"), null);
      assert.equal(logger.errors.length, 1);
      const logged = `${logger.errors[0]!.message} ${String(logger.errors[0]!.error)} ${
        String((logger.errors[0]!.error as Error).cause)
      }`;
      assert.match(logged, /Cannot load the session/);
      assert.match(logged, /in PostgreSQL/);
      assert.ok(!logged.includes(cookie.split("=")[1]!));
      const fresh = new PostgresStore({ client: handle.client, table: freshTable() });
      await assert.rejects(fresh.ready(), /Cannot set up the session table in PostgreSQL/);
      await gone.restart();
      await fresh.ready();
      assert.equal(await fresh.exists(KEY), false);
    } finally {
      await handle.close();
      await gone.destroy();
    }
  });
});
