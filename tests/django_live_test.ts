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
import { CookieStore, getSession, type SessionStore, withSessions } from "../mod.ts";
import {
  decodeDjangoSession,
  djangoFileExpiresAt,
  encodeDjangoSession,
} from "../src/stores/_django_format.ts";
import { Browser } from "./_browser.ts";
import { RecordingLogger } from "./_config.ts";
import { type DjangoServer, type DjangoSettings, ensureDjango, startDjango } from "./_django.ts";
import { serve, type TestServer } from "./_server.ts";

const SECRET = "tessera-live-django-secret-key-0123456789abcdef";
const COOKIE = "shared_sid";
const AUTH_HASH = "5f2b4e1c9a0d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f";

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
  },
  // TODO(#13): one entry each once FileStore, SqliteStore and PostgresStore
  // take format: "django", e.g.
  //   { name: "file", revocable: true, setup: (dir) => Promise.resolve({
  //       django: { SESSION_ENGINE: "file", SESSION_FILE_PATH: dir },
  //       store: () => new FileStore({ path: dir, format: "django" }) }) },
  //   { name: "SQLite", revocable: true, setup: (dir) => Promise.resolve({
  //       django: { SESSION_ENGINE: "db", DB_ENGINE: "sqlite3", DB_NAME: join(dir, "db.sqlite3") },
  //       store: () => new SqliteStore({ path: join(dir, "db.sqlite3"), format: "django" }) }) },
  //   { name: "PostgreSQL", revocable: true, setup: async (dir) => { start a private
  //       cluster; return { django: { SESSION_ENGINE: "db", DB_ENGINE: "postgresql",
  //       DB_HOST, DB_PORT, DB_NAME, DB_USER }, store: () => new PostgresStore({ client,
  //       format: "django" }), teardown } } },
];

/** What both servers answer: the session as the handler sees it. */
interface State {
  key_set: boolean;
  data: Record<string, unknown>;
  expiry_age: number;
}

/** Tessera's twin of the Django project's views (fixtures/django_app/tessera_check/views.py). */
function tesseraApp(store: SessionStore): (req: Request) => Promise<Response> {
  return withSessions(async (req) => {
    const url = new URL(req.url);
    const session = await getSession(req);
    switch (url.pathname) {
      case "/set":
        for (const [name, value] of url.searchParams) session.set(name, value);
        break;
      case "/login":
        // What django.contrib.auth.login() does to the session.
        await session.cycleKey();
        session.set("_auth_user_id", url.searchParams.get("user") ?? "42");
        session.set("_auth_user_backend", "django.contrib.auth.backends.ModelBackend");
        session.set("_auth_user_hash", url.searchParams.get("hash") ?? AUTH_HASH);
        break;
      case "/flush":
        await session.flush();
        break;
      case "/expire":
        session.setExpiry(Number(url.searchParams.get("seconds")));
        break;
      case "/get":
        break;
      default:
        return new Response("not found", { status: 404 });
    }
    const state: State = {
      key_set: session.sessionKey !== null,
      data: Object.fromEntries(session.items()),
      expiry_age: session.getExpiryAge(),
    };
    return Response.json(state);
  }, { store, secret: SECRET, cookieName: COOKIE });
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

const djangoVersion = ensureDjango();

for (const engine of ENGINES) {
  describe(`Django ${djangoVersion} and Tessera share sessions: ${engine.name}`, () => {
    let dir: string;
    let django: DjangoServer;
    let tessera: TestServer;
    let shared: Shared | undefined;
    const started = Date.now();

    before(async () => {
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

    it("Django logged no corrupt or suspicious session", () => {
      assert.doesNotMatch(django.stderr(), /Session data corrupted|Traceback/);
    });
  });
}

// Until FileStore and SqliteStore take format: "django" (#13), the records
// of Django's own file and db engines are read and written here directly
// with the format module, so that those stores only have to call it.
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
