// The signed-cookie engine. The shared store contract assumes server-side
// storage (create() returns a random key, save() of a deleted record fails),
// which a cookie cannot have; this suite covers instead Django's
// CookieSessionTests (reference catalogue 2.8), the flush() and cycleKey()
// behaviour Django documents for this engine, and spec section 6's bad
// signed cookies, through the engine and through a real server.

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  CookieStore,
  dumpsJson,
  getSession,
  loadsJson,
  Session,
  type SessionOptions,
  sign,
  type StoredSession,
  unsign,
  withSessions,
} from "../../mod.ts";
import { Browser } from "../_browser.ts";
import { RecordingLogger, sessionConfig } from "../_config.ts";
import { serve, type TestServer } from "../_server.ts";

const SECRET = "cookie-store-test-secret-of-at-least-32-bytes";
const OLD_SECRET = "the-previous-secret-also-of-at-least-32-bytes";
const SALT = "django.contrib.sessions.backends.signed_cookies";
const AGE = 1_209_600;

function configured(
  options: { secrets?: string[]; cookieAge?: number } = {},
): { store: CookieStore; logger: RecordingLogger } {
  const store = new CookieStore();
  const logger = new RecordingLogger();
  store.configure({
    cookieName: "sessionid",
    cookieAge: options.cookieAge ?? AGE,
    secrets: options.secrets ?? [SECRET],
    logger,
  });
  return { store, logger };
}

/** A cookie value signed as the engine signs, at `now`, with `secret`. */
function cookie(json: string, now = Date.now(), secret = SECRET): Promise<string> {
  return dumpsJson(json, { secret, salt: SALT, compress: true, now });
}

function record(data: string): StoredSession {
  return { data, expiresAt: Date.now() + 60_000 };
}

function assertNothingSecretIn(messages: string[], value: string): void {
  for (const message of messages) {
    assert.ok(!message.includes(SECRET) && !message.includes(OLD_SECRET), message);
    assert.ok(!message.includes(value.split(":")[0]!), message);
  }
}

describe("CookieStore: the engine", () => {
  it("create() signs the data with Django's salt and load() gives it back with its expiry", async () => {
    const { store } = configured();
    const key = await store.create(record('{"a":1}'));
    const loaded = await loadsJson(key, { secret: SECRET, salt: SALT });
    assert.equal(loaded.json, '{"a":1}');
    assert.deepEqual(await store.load(key), {
      data: '{"a":1}',
      expiresAt: (loaded.timestamp! + AGE) * 1000,
    });
  });

  it("create() escapes non-ASCII characters as Django does, and they load back unchanged", async () => {
    const { store } = configured();
    const session = new Session(null, sessionConfig(store));
    session.set("name", "Zoë \u{1F40D} 你好");
    await session.save();
    const key = session.sessionKey!;
    assert.match(key, /^[A-Za-z0-9_.:-]+$/);
    assert.equal(
      (await store.load(key))!.data,
      '{"name":"Zo\\u00eb \\ud83d\\udc0d \\u4f60\\u597d"}',
    );
    const again = new Session(key, sessionConfig(store));
    await again.load();
    assert.equal(again.get("name"), "Zoë \u{1F40D} 你好");
  });

  it("compresses a session when that makes the cookie shorter", async () => {
    const { store } = configured();
    const data = JSON.stringify({ cart: Array.from({ length: 50 }, (_, i) => ({ sku: i })) });
    const key = await store.create(record(data));
    assert.ok(key.startsWith("."));
    assert.ok(key.length < data.length);
    assert.equal((await store.load(key))!.data, data);
  });

  it("save() signs the new data whatever the old key, and never reports a taken or deleted key", async () => {
    // Django's test_save is a no-op for this engine, and the tests of
    // UpdateError are skipped: a cookie cannot be taken or deleted on the server.
    const { store } = configured();
    const first = await store.create(record('{"n":1}'));
    await store.delete(first);
    const second = await store.save(first, record('{"n":2}'));
    const third = await store.save("anything-at-all", record('{"n":3}'), true);
    assert.equal((await store.load(second))!.data, '{"n":2}');
    assert.equal((await store.load(third))!.data, '{"n":3}');
  });

  it("keeps nothing on the server: exists() is false, delete() and clearExpired() do nothing", async () => {
    const { store } = configured();
    const key = await store.create(record("{}"));
    assert.equal(await store.exists(key), false);
    await store.delete(key);
    assert.equal((await store.load(key))!.data, "{}");
    assert.equal(await store.clearExpired(), 0);
    assert.equal(store.expiresOnItsOwn, true);
  });

  it("isValidKey() accepts the signed alphabet only, 8 to 4096 characters", async () => {
    const { store } = configured();
    assert.equal(store.isValidKey(await store.create(record('{"a":1}'))), true);
    assert.equal(store.isValidKey(".eJyrVkrOz:1sD4o1:abc_-"), true);
    for (
      const value of [
        "",
        "short",
        "a/b:c:defghijk",
        "../../etc/passwd",
        "abc\u0000def:ghi",
        "abc def:ghijk",
        "abcdefgh=:ijk",
        "Zoë:abcdefghij",
        "a".repeat(4097),
      ]
    ) {
      assert.equal(store.isValidKey(value), false, JSON.stringify(value.slice(0, 20)));
    }
  });

  it("load() answers a tampered, truncated or foreign cookie with null and a warning", async () => {
    const { store, logger } = configured();
    const key = await store.create(record('{"user":"ada"}'));
    const payload = key.split(":")[0]!;
    const forged = btoa('{"user":"root"}').replaceAll("=", "");
    const bad = [
      key.replace(payload, forged),
      key.slice(0, -1),
      key.slice(0, key.lastIndexOf(":")),
      key.slice(0, 20),
      await sign(payload, { secret: SECRET, salt: "another.salt" }),
      await cookie('{"user":"ada"}', Date.now(), "a-secret-this-server-does-not-know-at-all"),
      "abcdefghijklmnopqrstuvwxyz012345",
    ];
    for (const value of bad) assert.equal(await store.load(value), null, value);
    assert.equal(logger.warnings.length, bad.length);
    for (const warning of logger.warnings) assert.match(warning, /signature matches no secret/);
    assertNothingSecretIn(logger.warnings, key);
  });

  it("load() answers a correctly signed cookie that is not a JSON object with null and a warning", async () => {
    // Django's test_unpickling_exception: a loads() failure fails quietly.
    const { store, logger } = configured();
    const notJson = await sign("bm90IEpTT04", { secret: SECRET, salt: SALT });
    for (const value of [notJson, await cookie("[1,2]"), await cookie('"text"')]) {
      assert.equal(await store.load(value), null);
    }
    assert.equal(logger.warnings.length, 3);
    for (const warning of logger.warnings) assert.match(warning, /^Session data corrupted/);
  });

  it("load() refuses a cookie signed more than cookieAge ago", async () => {
    const { store, logger } = configured({ cookieAge: 60 });
    assert.notEqual(await store.load(await cookie('{"a":1}', Date.now() - 59_000)), null);
    assert.equal(await store.load(await cookie('{"a":1}', Date.now() - 61_000)), null);
    assert.match(logger.warnings[0]!, /expired/);
  });

  it("load() enforces a custom expiry in seconds from the signing, which Django does not (#19201)", async () => {
    const { store, logger } = configured();
    const now = Date.now();
    const fresh = await cookie('{"a":1,"_session_expiry":60}', now - 30_000);
    const { timestamp } = await loadsJson(fresh, { secret: SECRET, salt: SALT });
    assert.equal((await store.load(fresh))!.expiresAt, (timestamp! + 60) * 1000);
    assert.equal(
      await store.load(await cookie('{"a":1,"_session_expiry":60}', now - 61_000)),
      null,
    );
    assert.equal(await store.load(await cookie('{"a":1,"_session_expiry":-10}', now)), null);
    assert.equal(logger.warnings.length, 2);
  });

  it("load() enforces a custom expiry date", async () => {
    const { store } = configured();
    const past = new Date(Date.now() - 1000).toISOString().replace("Z", "+00:00");
    assert.equal(await store.load(await cookie(`{"_session_expiry":"${past}"}`)), null);
    const future = "2100-01-01T00:00:00+00:00";
    const loaded = await store.load(await cookie(`{"_session_expiry":"${future}"}`));
    assert.equal(loaded!.expiresAt, Date.parse(future));
  });

  it("a custom expiry replaces cookieAge, as on every engine; 0 keeps cookieAge", async () => {
    const { store } = configured({ cookieAge: 60 });
    const now = Date.now();
    assert.notEqual(
      await store.load(await cookie('{"_session_expiry":3600}', now - 120_000)),
      null,
    );
    assert.equal(await store.load(await cookie('{"_session_expiry":0}', now - 120_000)), null);
    assert.notEqual(await store.load(await cookie('{"_session_expiry":0}', now - 30_000)), null);
  });

  it("load() marks a cookie verified with an old secret for refresh, not one with the current secret", async () => {
    const { store } = configured({ secrets: [SECRET, OLD_SECRET] });
    const old = await cookie('{"a":1}', Date.now(), OLD_SECRET);
    assert.equal((await store.load(old))!.refresh, true);
    const current = await store.create(record('{"a":1}'));
    assert.equal("refresh" in (await store.load(current))!, false);
  });

  it("withSessions refuses a CookieStore without a secret, naming the option", () => {
    assert.throws(() => withSessions(() => new Response(), { store: new CookieStore() }), {
      name: "TypeError",
      message: /CookieStore needs 'secret'/,
    });
    assert.throws(
      () => withSessions(() => new Response(), { store: new CookieStore(), secret: "short" }),
      { name: "RangeError", message: /at least 32 bytes/ },
    );
  });

  it("an unconfigured CookieStore says how to configure it", async () => {
    await assert.rejects(
      new CookieStore().create(record("{}")),
      /withSessions\(handler, \{ store, secret \}\)/,
    );
  });
});

describe("CookieStore: Django's session behaviours for this engine", () => {
  it("a custom expiry in the past hides the data from the next load (test_actual_expiry)", async () => {
    // An expectedFailure in Django's CookieSessionTests; enforced here.
    const { store } = configured();
    const session = new Session<{ foo: string }>(null, sessionConfig(store));
    session.set("foo", "bar");
    session.setExpiry(-10);
    await session.save();
    const next = new Session<{ foo: string }>(session.sessionKey, sessionConfig(store));
    await next.load();
    assert.equal(next.get("foo"), undefined);
    assert.equal(next.sessionKey, null);
  });

  it("cycleKey() signs the data again; the old cookie stays valid until it expires (test_cycle)", async () => {
    const { store } = configured();
    const session = new Session<{ user: string }>(null, sessionConfig(store));
    session.set("user", "ada");
    await session.save();
    const before = session.sessionKey!;
    await session.cycleKey();
    assert.equal(session.modified, true);
    assert.equal(session.get("user"), "ada");
    assert.equal((await store.load(session.sessionKey!))!.data, '{"user":"ada"}');
    // Django: "old cookies cannot be invalidated".
    assert.equal((await store.load(before))!.data, '{"user":"ada"}');
  });

  it("flush() empties the session and drops the key, so the cookie is deleted", async () => {
    const { store } = configured();
    const session = new Session<{ user: string }>(null, sessionConfig(store));
    session.set("user", "ada");
    await session.save();
    await session.flush();
    assert.equal(session.sessionKey, null);
    assert.equal(session.isEmpty(), true);
  });

  it("cycleKey() on a session not loaded yet keeps the data (test_cycle_with_no_session_cache)", async () => {
    const { store } = configured();
    const key = await store.create(record('{"data":"test"}'));
    const session = new Session<{ data: string }>(key, sessionConfig(store));
    await session.cycleKey();
    assert.equal(session.get("data"), "test");
  });

  it("an unsigned key sees no data and gets a signed key on save (test_invalid_key)", async () => {
    const { store } = configured();
    const session = new Session<{ cat: string }>("abcdefgh12345678", sessionConfig(store));
    await session.load();
    assert.equal(session.get("cat"), undefined);
    session.set("cat", "dog");
    await session.save();
    assert.equal(
      await unsign(session.sessionKey!, { secret: SECRET, salt: SALT }),
      "eyJjYXQiOiJkb2cifQ",
    );
  });

  it("setExpiry(seconds) and setExpiry(date) persist in the cookie (test_custom_expiry_datetime)", async () => {
    const { store } = configured();
    const seconds = new Session(null, sessionConfig(store));
    seconds.set("x", 1);
    seconds.setExpiry(10);
    await seconds.save();
    const reloaded = new Session(seconds.sessionKey, sessionConfig(store));
    await reloaded.load();
    assert.equal(reloaded.getExpiryAge(), 10);
    assert.deepEqual(reloaded.keys(), ["x"]);

    const expiry = new Date(Math.floor(Date.now() / 1000) * 1000 + 10_000);
    const dated = new Session(null, sessionConfig(store));
    dated.setExpiry(expiry);
    await dated.save();
    const again = new Session(dated.sessionKey, sessionConfig(store));
    await again.load();
    assert.equal(again.getExpiryDate().getTime(), expiry.getTime());
    assert.equal((await store.load(dated.sessionKey!))!.expiresAt, expiry.getTime());
  });

  it("loading a bad cookie creates nothing and adopts nothing (test_session_load_does_not_create_record)", async () => {
    const { store } = configured();
    const session = new Session(".garbage:garbage:garbage", sessionConfig(store));
    await session.load();
    assert.equal(session.sessionKey, null);
    assert.equal(session.isEmpty(), true);
  });
});

// --- through a real server ---------------------------------------------------

const servers: TestServer[] = [];
after(async () => {
  for (const server of servers) await server.close();
});

type Data = { visits: number; user: string; blob: string };

async function app(req: Request): Promise<Response> {
  const session = await getSession<Data>(req);
  const url = new URL(req.url);
  switch (url.pathname) {
    case "/login":
      await session.cycleKey();
      session.set("user", "ada");
      break;
    case "/logout":
      await session.flush();
      break;
    case "/big":
      session.set("blob", incompressible(Number(url.searchParams.get("bytes"))));
      break;
    case "/expiry":
      session.setExpiry(Number(url.searchParams.get("seconds")));
      break;
    case "/read":
      break;
    default:
      session.set("visits", (session.get("visits") ?? 0) + 1);
  }
  return Response.json({ visits: session.get("visits") ?? 0, user: session.get("user") ?? null });
}

function incompressible(bytes: number): string {
  return crypto.getRandomValues(new Uint8Array(Math.ceil(bytes * 0.75))).toBase64().slice(0, bytes);
}

function start(
  options: SessionOptions = {},
): { browser: Browser; logger: RecordingLogger; url: string } {
  const logger = new RecordingLogger();
  const server = serve(
    withSessions(app, { store: new CookieStore(), secret: SECRET, logger, ...options }),
  );
  servers.push(server);
  return { browser: new Browser(server.url), logger, url: server.url };
}

async function json(browser: Browser, path: string, init: RequestInit = {}) {
  const { response, body } = await browser.text(path, init);
  return { response, data: JSON.parse(body) as { visits: number; user: string | null } };
}

describe("CookieStore through a real server", () => {
  it("keeps the session in the cookie across requests, readable but signed", async () => {
    const { browser } = start();
    for (const visits of [1, 2, 3]) assert.equal((await json(browser, "/")).data.visits, visits);
    const value = browser.cookies.get("sessionid")!;
    assert.equal(
      new TextDecoder().decode(
        Uint8Array.fromBase64(value.split(":")[0]!, { alphabet: "base64url" }),
      ),
      '{"visits":3}',
    );
    assert.equal(await unsign(value, { secret: SECRET, salt: SALT }), value.split(":")[0]);
  });

  it("answers a tampered cookie with an empty session and a warning, and deletes the cookie", async () => {
    const { browser, logger } = start();
    await json(browser, "/");
    const value = browser.cookies.get("sessionid")!;
    const forged = btoa('{"visits":1000}').replaceAll("=", "");
    const tampered = value.replace(value.split(":")[0]!, forged);
    const { response, data } = await json(browser, "/read", {
      headers: { cookie: `sessionid=${tampered}` },
    });
    assert.equal(response.status, 200);
    assert.equal(data.visits, 0);
    assert.match(response.headers.get("set-cookie")!, /^sessionid=; Expires=Thu, 01 Jan 1970/);
    assert.equal(logger.warnings.length, 1);
    assertNothingSecretIn(logger.warnings, tampered);
  });

  it("signs a cookie from the previous secret again with the current one", async () => {
    const old = start({ secret: OLD_SECRET });
    await json(old.browser, "/");
    const oldValue = old.browser.cookies.get("sessionid")!;

    const rotated = start({ secret: [SECRET, OLD_SECRET] });
    const { response, data } = await json(rotated.browser, "/read", {
      headers: { cookie: `sessionid=${oldValue}` },
    });
    assert.equal(data.visits, 1);
    const setCookie = response.headers.get("set-cookie")!;
    const value = setCookie.slice("sessionid=".length, setCookie.indexOf(";"));
    assert.notEqual(value, oldValue);
    await unsign(value, { secret: SECRET, salt: SALT });
    await assert.rejects(unsign(value, { secret: OLD_SECRET, salt: SALT }));

    // Once the old secret is dropped, its cookies are worthless.
    const current = start();
    const { data: after } = await json(current.browser, "/read", {
      headers: { cookie: `sessionid=${oldValue}` },
    });
    assert.equal(after.visits, 0);
  });

  it("enforces a custom expiry and cookieAge on every request", async () => {
    const { browser, logger } = start({ cookieAge: 600 });
    const { response } = await json(browser, "/expiry?seconds=60");
    assert.match(response.headers.get("set-cookie")!, /Max-Age=60;/);
    const now = Date.now();
    for (
      const value of [
        await cookie('{"visits":5,"_session_expiry":60}', now - 61_000),
        await cookie('{"visits":5}', now - 601_000),
      ]
    ) {
      const { data, response } = await json(browser, "/read", {
        headers: { cookie: `sessionid=${value}` },
      });
      assert.equal(data.visits, 0);
      assert.match(response.headers.get("set-cookie")!, /^sessionid=; /);
    }
    assert.equal(logger.warnings.filter((w) => /expired/.test(w)).length, 2);
    const live = await cookie('{"visits":5,"_session_expiry":60}', now - 30_000);
    assert.equal(
      (await json(browser, "/read", { headers: { cookie: `sessionid=${live}` } })).data.visits,
      5,
    );
  });

  it("refuses a session over the 4096-byte cookie limit with a logged 500 naming the fix", async () => {
    const { browser, logger } = start();
    assert.equal((await browser.text("/big?bytes=2500")).response.status, 200);
    const { response } = await browser.text("/big?bytes=4000");
    assert.equal(response.status, 500);
    assert.equal(response.headers.get("set-cookie"), null);
    assert.equal(logger.errors.length, 1);
    assert.match(
      logger.errors[0]!.message,
      /would be \d{4} bytes, over the 4096-byte limit of browsers: keep less in the session, or use a server-side engine/,
    );
    assert.ok(!logger.errors[0]!.message.includes(SECRET));
  });

  it("logout deletes the cookie, but a copy taken before stays valid: sessions cannot be revoked", async () => {
    const { browser } = start();
    const { data } = await json(browser, "/login");
    assert.equal(data.user, "ada");
    const copy = browser.cookies.get("sessionid")!;
    const { response } = await json(browser, "/logout");
    assert.match(response.headers.get("set-cookie")!, /^sessionid=; /);
    assert.equal(browser.cookies.has("sessionid"), false);
    const replay = await json(browser, "/read", { headers: { cookie: `sessionid=${copy}` } });
    assert.equal(replay.data.user, "ada");
  });

  it("answers spec section 6's bad cookies with an empty session, never an error", async () => {
    const { browser, url } = start();
    await json(browser, "/");
    const valid = browser.cookies.get("sessionid")!;
    const headers = [
      "",
      "sessionid=",
      "sessionid=; sessionid=",
      `sessionid=${valid.slice(0, -5)}`,
      `sessionid=${valid}x`,
      `sessionid=${"a".repeat(5000)}`,
      `sessionid=${valid.slice(0, 10)}é${valid.slice(10)}`,
      "sessionid=../../etc/passwd",
      "sessionid=a/b:c:defghijklmnop",
      "sessionid=%00abcdefg:hij:klm",
      `sessionid="${valid.slice(0, -1)}"`,
    ];
    for (const cookieHeader of headers) {
      const response = await fetch(`${url}/read`, { headers: { cookie: cookieHeader } });
      const body = await response.json();
      assert.equal(response.status, 200, cookieHeader.slice(0, 40));
      assert.equal(body.visits, 0, cookieHeader.slice(0, 40));
    }
    // Duplicated: the first cookie counts, as in browsers' most-specific-first order.
    const duplicated = await fetch(`${url}/read`, {
      headers: { cookie: `sessionid=${valid}; sessionid=${valid.slice(0, -3)}` },
    });
    assert.equal((await duplicated.json()).visits, 1);
  });
});
