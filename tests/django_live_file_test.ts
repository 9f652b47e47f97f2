// Live sharing through the file engine: Django 3.2's
// django.contrib.sessions.backends.file (Debian's python3-django,
// fixtures/django_app/) and a Tessera server with FileStore({ format:
// "django" }) on one directory, one SECRET_KEY, one cookie name and one
// cookie age, run by the same OS user, and one browser whose cookie jar both
// servers see. Each scenario goes back and forth and checks what each side
// sees; the sweeps of both sides are then run on the same files.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync, statSync, utimesSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { FileStore } from "../mod.ts";
import { Browser } from "./_browser.ts";
import { RecordingLogger } from "./_config.ts";
import {
  type DjangoServer,
  ensureDjango,
  manage,
  type SessionState,
  startDjango,
  tesseraTwin,
} from "./_django.ts";
import { serve, type TestServer } from "./_server.ts";

const SECRET = "tessera-live-django-file-secret-0123456789abcdef";
const COOKIE = "shared_sid";
const COOKIE_AGE = 3600;

async function visit(browser: Browser, url: string): Promise<SessionState> {
  const response = await browser.fetch(url);
  assert.equal(response.status, 200, `${url}: ${response.status}`);
  return await response.json() as SessionState;
}

function authOf(data: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(data).filter(([name]) => name.startsWith("_auth_")));
}

const djangoVersion = ensureDjango();

describe(`Django ${djangoVersion}'s file engine and FileStore format "django" share one directory`, () => {
  let dir: string;
  let django: DjangoServer;
  let tessera: TestServer;
  let store: FileStore;
  const logger = new RecordingLogger();
  const started = Date.now();
  const settings = () => ({
    SECRET_KEY: SECRET,
    SESSION_COOKIE_NAME: COOKIE,
    SESSION_COOKIE_AGE: String(COOKIE_AGE),
    SESSION_ENGINE: "file",
    SESSION_FILE_PATH: dir,
  });
  const fileOf = (browser: Browser) => join(dir, COOKIE + browser.cookies.get(COOKIE));
  // The session's last save, `ago` ms before now, as both engines read it.
  const savedAgo = (file: string, ago: number) => {
    const seconds = (Date.now() - ago) / 1000;
    utimesSync(file, seconds, seconds);
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "tessera-django-file-"));
    django = await startDjango(settings());
    store = new FileStore({ path: dir, format: "django" });
    tessera = serve(
      tesseraTwin(store, { secret: SECRET, cookieName: COOKIE, cookieAge: COOKIE_AGE }),
    );
    // The sweeps below run on the store outside a request: its logger too.
    store.configure({ cookieName: COOKIE, cookieAge: COOKIE_AGE, secrets: [SECRET], logger });
  });

  after(async () => {
    await tessera?.close();
    await django?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    console.log(`file: live cross-check took ${Date.now() - started} ms`);
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
    assert.equal(statSync(fileOf(browser)).uid, process.getuid!(), "one OS user on both sides");

    const seen = await visit(browser, `${tessera.url}/get`);
    assert.deepEqual(seen.data, { ...auth, color: "blue" });
    assert.equal(seen.expiry_age, COOKIE_AGE);
    await visit(browser, `${tessera.url}/set?size=L&name=Zo%C3%AB`);
    assert.equal(statSync(fileOf(browser)).mode & 0o777, 0o600);

    const back = await visit(browser, `${django.url}/get`);
    assert.deepEqual(back.data, { ...auth, color: "blue", size: "L", name: "Zoë" });
  });

  it("a session created and changed in Tessera is read and changed in Django, then read back in Tessera", async () => {
    const browser = new Browser("");
    const login = await visit(browser, `${tessera.url}/login?user=7`);
    const auth = authOf(login.data);
    assert.equal(auth._auth_user_id, "7");
    await visit(browser, `${tessera.url}/set?color=red`);
    assert.deepEqual(readdirSync(dir).filter((name) => name.includes(".tmp-")), []);

    const seen = await visit(browser, `${django.url}/get`);
    assert.deepEqual(seen.data, { ...auth, color: "red" });
    assert.equal(seen.expiry_age, COOKIE_AGE);
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
    assert.deepEqual((await visit(browser, `${django.url}/get`)).data, { ...auth, hop: "5" });
    console.log("file: 6 hops, _auth_* unchanged");
  });

  for (const [side, other] of [["Django", "Tessera"], ["Tessera", "Django"]] as const) {
    it(`a flush in ${side} logs the user out in ${other}, also for the old cookie replayed`, async () => {
      const urls = { Django: django.url, Tessera: tessera.url };
      const browser = new Browser("");
      await visit(browser, `${urls[other]}/login?user=5`);
      const cookie = browser.cookies.get(COOKIE)!;
      assert.equal((await visit(browser, `${urls[side]}/get`)).data._auth_user_id, "5");

      const flushed = await visit(browser, `${urls[side]}/flush`);
      assert.deepEqual(flushed.data, {});
      assert.equal(browser.cookies.has(COOKIE), false, "the cookie is deleted");
      const after = await visit(browser, `${urls[other]}/get`);
      assert.deepEqual(after.data, {});
      assert.equal(after.key_set, false);
      for (const url of [urls.Django, urls.Tessera]) {
        const replayed = await fetch(`${url}/get`, { headers: { cookie: `${COOKIE}=${cookie}` } });
        assert.deepEqual((await replayed.json() as SessionState).data, {}, url);
      }
      assert.equal(readdirSync(dir).includes(COOKIE + cookie), false);
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
  });

  for (const [side, other] of [["Django", "Tessera"], ["Tessera", "Django"]] as const) {
    it(`a session saved in ${side} more than SESSION_COOKIE_AGE ago has expired in both`, async () => {
      const urls = { Django: django.url, Tessera: tessera.url };
      const browser = new Browser("");
      await visit(browser, `${urls[side]}/login?user=3`);
      const cookie = browser.cookies.get(COOKIE)!;
      savedAgo(fileOf(browser), (COOKIE_AGE + 60) * 1000);
      for (const url of [urls[other], urls[side]]) {
        const state = await (await fetch(`${url}/get`, {
          headers: { cookie: `${COOKIE}=${cookie}` },
        })).json() as SessionState;
        assert.deepEqual(state.data, {}, url);
      }
    });

    it(`a custom expiry longer than SESSION_COOKIE_AGE set in ${side} keeps the session alive in both`, async () => {
      const urls = { Django: django.url, Tessera: tessera.url };
      const browser = new Browser("");
      await visit(browser, `${urls[side]}/login?user=4`);
      await visit(browser, `${urls[side]}/expire?seconds=${3 * COOKIE_AGE}`);
      savedAgo(fileOf(browser), 2 * COOKIE_AGE * 1000);
      assert.equal((await visit(browser, `${urls[other]}/get`)).data._auth_user_id, "4");
      assert.equal((await visit(browser, `${urls[side]}/get`)).data._auth_user_id, "4");
    });
  }

  it("the known difference (SPEC section 4): a positive whole-number expiry that has passed since the last save ends the session in Tessera, never in Django", async () => {
    const browser = new Browser("");
    await visit(browser, `${django.url}/login?user=8`);
    await visit(browser, `${django.url}/expire?seconds=600`);
    const cookie = browser.cookies.get(COOKIE)!;
    savedAgo(fileOf(browser), 700_000);
    const ask = async (url: string) =>
      (await (await fetch(`${url}/get`, { headers: { cookie: `${COOKIE}=${cookie}` } }))
        .json()) as SessionState;
    assert.deepEqual((await ask(tessera.url)).data, {}, "Tessera: 600 s after the last save");
    assert.equal((await ask(django.url)).data._auth_user_id, "8", "Django's file engine: never");
  });

  it("Tessera's sweep and Django's clearsessions judge the same files alike, but for the known difference", async () => {
    rmSync(dir, { recursive: true });
    dir = mkdtempSync(join(tmpdir(), "tessera-django-file-"));
    // Django serves this directory only through manage.py from here on.
    await django.stop();
    store = new FileStore({ path: dir, format: "django" });
    store.configure({ cookieName: COOKIE, cookieAge: COOKIE_AGE, secrets: [SECRET], logger });
    const tesseraOnDir = serve(
      tesseraTwin(store, { secret: SECRET, cookieName: COOKIE, cookieAge: COOKIE_AGE }),
    );
    const djangoOnDir = await startDjango(settings());
    const made: Record<string, string> = {};
    try {
      const make = async (name: string, url: string, expiry: number | null, ago: number) => {
        const browser = new Browser("");
        await visit(browser, `${url}/login?user=${name}`);
        if (expiry !== null) await visit(browser, `${url}/expire?seconds=${expiry}`);
        savedAgo(fileOf(browser), ago);
        made[name] = COOKIE + browser.cookies.get(COOKIE);
      };
      for (const [side, url] of [["d", djangoOnDir.url], ["t", tesseraOnDir.url]] as const) {
        await make(`${side}-young`, url, null, 60_000);
        await make(`${side}-aged`, url, null, (COOKIE_AGE + 60) * 1000);
        await make(`${side}-long`, url, 3 * COOKIE_AGE, 2 * COOKIE_AGE * 1000);
        await make(`${side}-longpast`, url, 2 * COOKIE_AGE, 3 * COOKIE_AGE * 1000);
        await make(`${side}-short`, url, 600, 1_200_000);
      }
    } finally {
      await djangoOnDir.stop();
      await tesseraOnDir.close();
    }
    assert.doesNotMatch(djangoOnDir.stderr(), /Session data corrupted|Traceback/);
    const before = new Set(readdirSync(dir));
    const dry = await store.sweep({ dryRun: true });
    manage(settings(), ["clearsessions"]);
    const afterDjango = new Set(readdirSync(dir));
    const djangoRemoved = Object.keys(made).filter((name) => !afterDjango.has(made[name]!)).sort();
    // Django 3.2 reads a positive whole-number expiry as "never on the
    // server": it keeps *-longpast; it removes what is past mtime + age.
    assert.deepEqual(djangoRemoved, ["d-aged", "t-aged"]);
    const report = await store.sweep();
    const left = new Set(readdirSync(dir));
    const tesseraRemoved = Object.keys(made).filter((name) => before.has(made[name]!))
      .filter((name) => afterDjango.has(made[name]!) && !left.has(made[name]!)).sort();
    // Tessera: N seconds after the last save, so *-longpast has expired.
    // *-short has too, but its file is younger than SESSION_COOKIE_AGE: the
    // sweeper keeps it unread (load() refuses it) until it is.
    assert.deepEqual(tesseraRemoved, ["d-longpast", "t-longpast"]);
    assert.equal(dry.removed, 4, "the dry run counted aged and longpast, before Django's sweep");
    assert.equal(report.removed, 2);
    assert.equal(report.failed, 0);
    for (const name of ["d-young", "t-young", "d-long", "t-long", "d-short", "t-short"]) {
      assert.ok(left.has(made[name]!), name);
    }
    console.log(
      `10 sessions: Django's clearsessions removed ${djangoRemoved.length}, Tessera's sweep ${report.removed} more (the known difference), 6 kept by both`,
    );
  });

  it("neither side logged a corrupt or suspicious session", () => {
    assert.doesNotMatch(django.stderr(), /Session data corrupted|Traceback/);
    assert.deepEqual(logger.warnings, []);
  });
});
