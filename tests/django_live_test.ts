// Live sharing with a running Django app: Django 3.2 (Debian's
// python3-django, fixtures/django_app/) and a Tessera server side by side,
// one secret, one cookie name, one store, and one browser whose cookie jar
// both servers see (cookies do not depend on the port). Each scenario goes
// back and forth between the two and checks what each side sees.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { DatabaseSync } from "node:sqlite";
import postgres from "postgres";
import {
  CachedStore,
  CookieStore,
  PostgresStore,
  RedisStore,
  type SessionStore,
  SqliteStore,
} from "../mod.ts";
import {
  decodeDjangoSession,
  djangoFileExpiresAt,
  encodeDjangoSession,
} from "../src/stores/_django_format.ts";
import { Browser } from "./_browser.ts";
import { RecordingLogger } from "./_config.ts";
import {
  type DjangoServer,
  type DjangoSettings,
  ensureDjango,
  type SessionState as State,
  startDjango,
  tesseraTwin,
} from "./_django.ts";
import { type PostgresServer, startPostgres } from "./_postgres.ts";
import { REDIS_CLIENTS, startRedis } from "./_redis.ts";
import { serve, type TestServer } from "./_server.ts";

const SECRET = "tessera-live-django-secret-key-0123456789abcdef";
const COOKIE = "shared_sid";

/** What an engine sets up in a fresh temp directory: both sides on the same records. */
interface Shared {
  /** Django's settings for this engine (beyond SECRET_KEY and the cookie name). */
  django: Pick<DjangoSettings, "SESSION_ENGINE"> & Partial<DjangoSettings>;
  /**
   * The Tessera store on the same records, made once Django has started
   * (and, with a database engine, created django_session with its migrate).
   */
  store: () => SessionStore;
  /** Stops what setup started (a database server). */
  teardown?: () => Promise<void>;
}

/** One way to share sessions: Django's engine and the Tessera store that reads the same records. */
interface Engine {
  name: string;
  setup(dir: string): Promise<Shared>;
  /**
   * Whether a flushed session is gone from the server, so that a replayed
   * cookie finds nothing; a signed cookie cannot be revoked.
   */
  revocable: boolean;
  /**
   * Whether Django itself refuses a session past its custom expiry. Django's
   * signed_cookies engine judges a cookie by SESSION_COOKIE_AGE alone (the
   * browser drops it at its Max-Age); Tessera's CookieStore also reads the
   * expiry in the data.
   */
  djangoEnforcesCustomExpiry: boolean;
}

/** A database in a private PostgreSQL cluster, for Django (psycopg2) and a Tessera client. */
async function postgresDatabase(name: string): Promise<{
  server: PostgresServer;
  client: ReturnType<typeof postgres>;
  django: Partial<DjangoSettings>;
  version: string;
  teardown: () => Promise<void>;
}> {
  const server = await startPostgres();
  const admin = postgres(server.url, { max: 1, onnotice: () => {} });
  let version: string;
  try {
    await admin.unsafe(`CREATE DATABASE ${name}`);
    version = String((await admin.unsafe("SHOW server_version"))[0]!.server_version);
  } finally {
    await admin.end({ timeout: 1 });
  }
  const client = postgres(server.url.replace(/\/postgres$/, `/${name}`), {
    max: 4,
    connect_timeout: 2,
    onnotice: () => {},
  });
  return {
    server,
    client,
    version,
    django: {
      DB_ENGINE: "postgresql",
      DB_HOST: "127.0.0.1",
      DB_PORT: String(server.port),
      DB_NAME: name,
      DB_USER: "postgres",
    },
    teardown: async () => {
      await client.end({ timeout: 1 });
      await server.destroy();
    },
  };
}

const ENGINES: Engine[] = [
  {
    name: "signed cookies",
    setup: () =>
      Promise.resolve({
        django: { SESSION_ENGINE: "signed_cookies" },
        store: () => new CookieStore(),
      }),
    revocable: false,
    djangoEnforcesCustomExpiry: false,
  },
  // The file engine, whose sweeps and expiry rules differ, has its own live
  // cross-check: tests/django_live_file_test.ts.
  {
    name: "SQLite",
    revocable: true,
    djangoEnforcesCustomExpiry: true,
    setup(dir) {
      const path = join(dir, "db.sqlite3");
      let store: SqliteStore | undefined;
      return Promise.resolve({
        django: { SESSION_ENGINE: "db", DB_ENGINE: "sqlite3", DB_NAME: path },
        store: () => (store = new SqliteStore({ path, format: "django" })),
        teardown: () => Promise.resolve(store?.close()),
      });
    },
  },
  {
    name: "PostgreSQL",
    revocable: true,
    djangoEnforcesCustomExpiry: true,
    async setup() {
      const database = await postgresDatabase("tessera_live");
      console.log(`PostgreSQL ${database.version}`);
      return {
        django: { SESSION_ENGINE: "db", ...database.django },
        store: () => new PostgresStore({ client: database.client, format: "django" }),
        teardown: database.teardown,
      };
    },
  },
];

/** Tessera's twin of the Django project's views, with this file's secret and cookie name. */
function tesseraApp(store: SessionStore): (req: Request) => Promise<Response> {
  return tesseraTwin(store, { secret: SECRET, cookieName: COOKIE });
}

/** GETs `url` through `browser` and returns the session state it answered. */
async function visit(browser: Browser, url: string): Promise<State> {
  const response = await browser.fetch(url);
  assert.equal(response.status, 200, `${url}: ${response.status}`);
  return await response.json() as State;
}

function authOf(data: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(data).filter(([name]) => name.startsWith("_auth_")));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const djangoVersion = ensureDjango();

for (const engine of ENGINES) {
  describe(`Django ${djangoVersion} and Tessera share sessions: ${engine.name}`, () => {
    let dir: string;
    let django: DjangoServer;
    let tessera: TestServer;
    let shared: Shared | undefined;
    let started = 0;

    before(async () => {
      started = Date.now();
      dir = mkdtempSync(join(tmpdir(), "tessera-django-live-"));
      shared = await engine.setup(dir);
      // Django first: with a database engine, its migrate creates django_session.
      django = await startDjango({
        SECRET_KEY: SECRET,
        SESSION_COOKIE_NAME: COOKIE,
        ...shared.django,
      });
      tessera = serve(tesseraApp(shared.store()));
    });

    after(async () => {
      await tessera?.close();
      await django?.stop();
      await shared?.teardown?.();
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
      console.log(`${engine.name}: live cross-check took ${Date.now() - started} ms`);
    });

    it("a session created and changed in Django is read and changed in Tessera, then read back in Django", async () => {
      const browser = new Browser("");
      const login = await visit(browser, `${django.url}/login?user=1337`);
      const auth = authOf(login.data);
      assert.deepEqual(Object.keys(auth).sort(), [
        "_auth_user_backend",
        "_auth_user_hash",
        "_auth_user_id",
      ]);
      await visit(browser, `${django.url}/set?color=blue`);

      const seen = await visit(browser, `${tessera.url}/get`);
      assert.deepEqual(seen.data, { ...auth, color: "blue" });
      assert.equal(seen.key_set, true);
      await visit(browser, `${tessera.url}/set?size=L&name=Zo%C3%AB`);

      const back = await visit(browser, `${django.url}/get`);
      assert.deepEqual(back.data, { ...auth, color: "blue", size: "L", name: "Zoë" });
      assert.deepEqual(authOf(back.data), auth);
    });

    it("a session created and changed in Tessera is read and changed in Django, then read back in Tessera", async () => {
      const browser = new Browser("");
      const login = await visit(browser, `${tessera.url}/login?user=7`);
      const auth = authOf(login.data);
      assert.equal(auth._auth_user_id, "7");
      await visit(browser, `${tessera.url}/set?color=red`);

      const seen = await visit(browser, `${django.url}/get`);
      assert.deepEqual(seen.data, { ...auth, color: "red" });
      await visit(browser, `${django.url}/set?size=M&color=green`);

      const back = await visit(browser, `${tessera.url}/get`);
      assert.deepEqual(back.data, { ...auth, color: "green", size: "M" });
    });

    it("the _auth_* keys survive many round trips untouched", async () => {
      const browser = new Browser("");
      const login = await visit(browser, `${django.url}/login?user=99&hash=${"ab".repeat(32)}`);
      const auth = authOf(login.data);
      for (let hop = 0; hop < 6; hop++) {
        const side = hop % 2 === 0 ? tessera.url : django.url;
        const state = await visit(browser, `${side}/set?hop=${hop}`);
        assert.deepEqual(authOf(state.data), auth, `hop ${hop}`);
      }
      const last = await visit(browser, `${django.url}/get`);
      assert.deepEqual(last.data, { ...auth, hop: "5" });
      console.log(`${engine.name}: 6 hops, _auth_* unchanged`);
    });

    for (const [side, other] of [["Django", "Tessera"], ["Tessera", "Django"]] as const) {
      it(`a flush in ${side} logs the user out in ${other}`, async () => {
        const urls = { Django: django.url, Tessera: tessera.url };
        const browser = new Browser("");
        await visit(browser, `${urls[other]}/login?user=5`);
        const cookie = browser.cookies.get(COOKIE);
        assert.ok(cookie !== undefined);
        assert.equal((await visit(browser, `${urls[side]}/get`)).data._auth_user_id, "5");

        const flushed = await visit(browser, `${urls[side]}/flush`);
        assert.deepEqual(flushed.data, {});
        assert.equal(browser.cookies.has(COOKIE), false, "the cookie is deleted");
        const after = await visit(browser, `${urls[other]}/get`);
        assert.deepEqual(after.data, {});
        assert.equal(after.key_set, false);

        // The old cookie, replayed.
        const replayed = await fetch(`${urls[other]}/get`, {
          headers: { cookie: `${COOKIE}=${cookie}` },
        });
        const state = await replayed.json() as State;
        if (engine.revocable) assert.deepEqual(state.data, {});
        // A signed cookie carries its session: nothing on the server can
        // revoke it before SESSION_COOKIE_AGE (Django's #19201).
        else assert.equal(state.data._auth_user_id, "5");
      });
    }

    it("a custom expiry set on one side is the expiry on the other", async () => {
      const browser = new Browser("");
      await visit(browser, `${django.url}/login`);
      await visit(browser, `${django.url}/expire?seconds=600`);
      assert.equal((await visit(browser, `${tessera.url}/get`)).expiry_age, 600);
      const response = await browser.fetch(`${tessera.url}/expire?seconds=900`);
      assert.match(response.headers.getSetCookie().join(), /Max-Age=900/);
      assert.equal((await visit(browser, `${django.url}/get`)).expiry_age, 900);
      const fromDjango = await browser.fetch(`${django.url}/set?touch=1`);
      assert.match(fromDjango.headers.getSetCookie().join(), /Max-Age=900/);
    });

    for (const [side, other] of [["Django", "Tessera"], ["Tessera", "Django"]] as const) {
      const known = engine.djangoEnforcesCustomExpiry
        ? ""
        : " (Django's engine, by the browser alone: the known difference)";
      it(`a session expired in ${side} is expired in ${other}${known}`, async () => {
        const urls = { Django: django.url, Tessera: tessera.url };
        const browser = new Browser("");
        await visit(browser, `${urls[other]}/login?user=21`);
        await visit(browser, `${urls[side]}/expire?seconds=2`);
        assert.equal((await visit(browser, `${urls[other]}/get`)).data._auth_user_id, "21");
        // The cookie, sent past its Max-Age to each side: the servers decide.
        const cookie = browser.cookies.get(COOKIE)!;
        await sleep(2_500);
        const replay = async (url: string) =>
          await (await fetch(`${url}/get`, { headers: { cookie: `${COOKIE}=${cookie}` } }))
            .json() as State;
        const inTessera = await replay(tessera.url);
        assert.deepEqual(inTessera.data, {});
        assert.equal(inTessera.key_set, false);
        const inDjango = await replay(django.url);
        if (engine.djangoEnforcesCustomExpiry) assert.deepEqual(inDjango.data, {});
        // Django's signed_cookies engine judges a cookie by SESSION_COOKIE_AGE
        // alone: only the browser, at the cookie's Max-Age, ends it there.
        else assert.equal(inDjango.data._auth_user_id, "21");
      });
    }

    it("Django logged no corrupt or suspicious session", () => {
      assert.doesNotMatch(django.stderr(), /Session data corrupted|Traceback/);
    });
  });
}

// The records of Django's own file and db engines, read and written here
// directly with the format module that the stores call.
describe(`Django ${djangoVersion}'s own file and db engines keep the records of _django_format.ts`, () => {
  const COOKIE_AGE = 3600;
  let dir: string;
  let files: DjangoServer;
  let sqlite: DjangoServer;
  const database = () => join(dir, "db.sqlite3");
  const settings = { secrets: [SECRET], logger: new RecordingLogger() };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "tessera-django-engines-"));
    const common = {
      SECRET_KEY: SECRET,
      SESSION_COOKIE_NAME: COOKIE,
      SESSION_COOKIE_AGE: String(COOKIE_AGE),
    };
    [files, sqlite] = await Promise.all([
      startDjango({ ...common, SESSION_ENGINE: "file", SESSION_FILE_PATH: dir }),
      startDjango({ ...common, SESSION_ENGINE: "db", DB_ENGINE: "sqlite3", DB_NAME: database() }),
    ]);
  });

  after(async () => {
    await files?.stop();
    await sqlite?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it("the file engine: Django's file (0600, this user, mtime + cookie age) decodes, and a file written here is Django's session", async () => {
    const browser = new Browser("");
    const login = await visit(browser, `${files.url}/login?user=11`);
    const path = join(dir, COOKIE + browser.cookies.get(COOKIE));
    const stat = statSync(path);
    assert.equal(stat.mode & 0o777, 0o600);
    assert.equal(stat.uid, process.getuid!());
    const decoded = await decodeDjangoSession(readFileSync(path, "ascii"), settings);
    assert.deepEqual(JSON.parse(decoded!.json), login.data);
    assert.equal(decoded!.expiry, null);
    assert.equal(
      djangoFileExpiresAt(decoded!.expiry, stat.mtimeMs, COOKIE_AGE),
      stat.mtimeMs + 3_600_000,
    );

    await visit(browser, `${files.url}/expire?seconds=600`);
    const withExpiry = await decodeDjangoSession(readFileSync(path, "ascii"), settings);
    assert.equal(withExpiry!.expiry, 600);

    // Written as Django writes it: a temp file in the directory, renamed over.
    const changed = { ...JSON.parse(withExpiry!.json), color: "from-tessera" };
    writeFileSync(`${path}.tmp`, await encodeDjangoSession(JSON.stringify(changed), [SECRET]), {
      mode: 0o600,
    });
    renameSync(`${path}.tmp`, path);
    const seen = await visit(browser, `${files.url}/get`);
    assert.deepEqual(seen.data, changed);
    assert.equal(seen.expiry_age, 600);
    assert.doesNotMatch(files.stderr(), /Session data corrupted|Traceback/);
  });

  it("the db engine on SQLite: Django's row (UTC expire_date) decodes, and session_data written here is Django's session", async () => {
    const browser = new Browser("");
    const before = Date.now();
    const login = await visit(browser, `${sqlite.url}/login?user=12`);
    const key = browser.cookies.get(COOKIE)!;
    const changed = { ...login.data, color: "from-tessera" };
    const db = new DatabaseSync(database());
    try {
      const row = db.prepare(
        "SELECT session_data, expire_date FROM django_session WHERE session_key = ?",
      ).get(key) as { session_data: string; expire_date: string };
      const decoded = await decodeDjangoSession(row.session_data, settings);
      assert.deepEqual(JSON.parse(decoded!.json), login.data);
      // USE_TZ = True: "YYYY-MM-DD HH:MM:SS[.ffffff]" in UTC.
      assert.match(row.expire_date, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,6})?$/);
      const expireDate = Date.parse(`${row.expire_date.replace(" ", "T")}Z`);
      assert.ok(Math.abs(expireDate - (before + COOKIE_AGE * 1000)) < 60_000, row.expire_date);

      db.prepare("UPDATE django_session SET session_data = ? WHERE session_key = ?").run(
        await encodeDjangoSession(JSON.stringify(changed), [SECRET]),
        key,
      );
    } finally {
      db.close();
    }
    assert.deepEqual((await visit(browser, `${sqlite.url}/get`)).data, changed);
    assert.doesNotMatch(sqlite.stderr(), /Session data corrupted|Traceback/);
  });
});

// Django's cached_db for many machines: Django on the db engine and Tessera's
// CachedStore(RedisStore, PostgresStore) on one PostgreSQL database. Django
// cannot see Tessera's Redis copies, so a change or a logout made in Django
// reaches Tessera when its copy expires: cacheTtl is the bound.
describe(`Django ${djangoVersion} on PostgreSQL beside CachedStore(RedisStore, PostgresStore)`, () => {
  const CACHE_TTL = 1;
  let database: Awaited<ReturnType<typeof postgresDatabase>> | undefined;
  let redis: Awaited<ReturnType<typeof startRedis>> | undefined;
  let redisClient: Awaited<ReturnType<(typeof REDIS_CLIENTS)[number]["connect"]>> | undefined;
  let django: DjangoServer;
  let djangoCached: DjangoServer;
  let tessera: TestServer;
  let cache: RedisStore;
  let started = 0;

  before(async () => {
    started = Date.now();
    database = await postgresDatabase("tessera_cached");
    redis = await startRedis();
    redisClient = await REDIS_CLIENTS[0]!.connect(redis.url);
    django = await startDjango({
      SECRET_KEY: SECRET,
      SESSION_COOKIE_NAME: COOKIE,
      SESSION_ENGINE: "db",
      ...database.django,
    });
    // The same project on Django's own cached_db, for the limit the guide
    // names: its cache is Django's alone.
    djangoCached = await startDjango({
      SECRET_KEY: SECRET,
      SESSION_COOKIE_NAME: COOKIE,
      SESSION_ENGINE: "cached_db",
      ...database.django,
    });
    cache = new RedisStore({ client: redisClient.client, prefix: "tessera.cached:" });
    const durable = new PostgresStore({ client: database.client, format: "django" });
    tessera = serve(tesseraApp(new CachedStore(cache, durable, { cacheTtl: CACHE_TTL })));
  });

  after(async () => {
    await tessera?.close();
    await django?.stop();
    await djangoCached?.stop();
    await redisClient?.close();
    await redis?.stop();
    await database?.teardown();
    console.log(`cached_db: live cross-check took ${Date.now() - started} ms`);
  });

  it("a session written through the cache is Django's row: Django reads and changes it, and Tessera sees the change within cacheTtl", async () => {
    const browser = new Browser("");
    const login = await visit(browser, `${tessera.url}/login?user=31`);
    await visit(browser, `${tessera.url}/set?color=red`);
    const key = browser.cookies.get(COOKIE)!;
    // Redis holds Tessera's signed copy, never Django's row.
    assert.match((await cache.load(key))!.data, /^s1:/);
    const seen = await visit(browser, `${django.url}/get`);
    assert.deepEqual(seen.data, { ...authOf(login.data), color: "red" });
    await visit(browser, `${django.url}/set?color=green`);
    await sleep(CACHE_TTL * 1000 + 200);
    assert.deepEqual((await visit(browser, `${tessera.url}/get`)).data, {
      ...authOf(login.data),
      color: "green",
    });
  });

  it("a logout in Django ends the session in Tessera within cacheTtl", async () => {
    const browser = new Browser("");
    await visit(browser, `${django.url}/login?user=32`);
    const cookie = browser.cookies.get(COOKIE)!;
    assert.equal((await visit(browser, `${tessera.url}/get`)).data._auth_user_id, "32");
    assert.notEqual(await cache.load(cookie), null, "Tessera's copy is in Redis");
    await visit(browser, `${django.url}/flush`);
    const flushed = Date.now();
    let alive = 0;
    for (;;) {
      const replayed = await fetch(`${tessera.url}/get`, {
        headers: { cookie: `${COOKIE}=${cookie}` },
      });
      const state = await replayed.json() as State;
      if (state.data._auth_user_id === undefined) break;
      alive++;
      assert.ok(Date.now() - flushed < CACHE_TTL * 1000 + 500, "still logged in past cacheTtl");
      await sleep(50);
    }
    const lasted = Date.now() - flushed;
    console.log(
      `cached_db: logged out in Tessera ${lasted} ms after Django's logout (cacheTtl ${CACHE_TTL} s, ${alive} requests still served from the copy)`,
    );
    assert.ok(lasted <= CACHE_TTL * 1000 + 500);
  });

  it("a logout in Tessera deletes the row and the copy: Django logs the user out at once", async () => {
    const browser = new Browser("");
    await visit(browser, `${django.url}/login?user=33`);
    const cookie = browser.cookies.get(COOKIE)!;
    assert.equal((await visit(browser, `${tessera.url}/get`)).data._auth_user_id, "33");
    await visit(browser, `${tessera.url}/flush`);
    assert.equal(await cache.load(cookie), null);
    const replayed = await fetch(`${django.url}/get`, {
      headers: { cookie: `${COOKIE}=${cookie}` },
    });
    assert.deepEqual((await replayed.json() as State).data, {});
  });

  it("Django's own cached_db goes on serving, from its cache, a session Tessera logged out: share with db", async () => {
    const browser = new Browser("");
    await visit(browser, `${djangoCached.url}/login?user=34`);
    const cookie = browser.cookies.get(COOKIE)!;
    assert.equal((await visit(browser, `${tessera.url}/get`)).data._auth_user_id, "34");
    await visit(browser, `${tessera.url}/flush`);
    const replay = async (url: string) =>
      await (await fetch(`${url}/get`, { headers: { cookie: `${COOKIE}=${cookie}` } }))
        .json() as State;
    assert.deepEqual((await replay(django.url)).data, {}, "db: logged out");
    assert.equal(
      (await replay(djangoCached.url)).data._auth_user_id,
      "34",
      "cached_db: Django's cache still holds the session",
    );
  });

  it("Django logged no corrupt or suspicious session", () => {
    assert.doesNotMatch(django.stderr(), /Session data corrupted|Traceback/);
    assert.doesNotMatch(djangoCached.stderr(), /Session data corrupted|Traceback/);
  });
});
