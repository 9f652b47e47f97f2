// Absolute timeout, renewal without a write per request, and the
// verifySession hook, through real servers on every engine.

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import {
  CachedStore,
  getSession,
  JSON_SERIALIZER,
  MemoryStore,
  Session,
  type SessionOptions,
  type SessionStore,
  type StoredSession,
  withSessions,
} from "../mod.ts";
import { serve, type TestServer } from "./_server.ts";
import { COOKIE_SECRET, releaseEngines, SCRATCH, SERVED_ENGINES } from "./reliability/_engines.ts";

const root = mkdtempSync(join(SCRATCH, "tessera-lifecycle-"));
after(async () => {
  await releaseEngines();
  rmSync(root, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A browser of one: keeps the session cookie between requests. */
class Browser {
  cookie: string | null = null;
  constructor(readonly base: string) {}
  async get(path: string): Promise<{ status: number; body: string; setCookie: string | null }> {
    const response = await fetch(this.base + path, {
      headers: this.cookie === null ? {} : { cookie: this.cookie },
    });
    const setCookie = response.headers.get("set-cookie");
    if (setCookie !== null) {
      const pair = setCookie.split(";")[0]!;
      this.cookie = /Max-Age=0/.test(setCookie) ? null : pair;
    }
    return { status: response.status, body: await response.text(), setCookie };
  }
}

// /login sets a user and cycles the key; /me answers the user or "anonymous".
function app(options: SessionOptions): (req: Request) => Promise<Response> {
  return withSessions(async (req) => {
    const session = await getSession(req);
    const path = new URL(req.url).pathname;
    if (path === "/login") {
      session.set("user", "ada");
      await session.cycleKey();
    } else if (path === "/touch") {
      session.set("n", (session.get("n") as number ?? 0) + 1);
    } else if (path === "/logout") {
      await session.flush();
    }
    return new Response(String(session.get("user") ?? "anonymous"));
  }, options);
}

/** A store that counts the writes reaching `inner`. */
class Counting implements SessionStore {
  writes = 0;
  reads = 0;
  constructor(readonly inner: SessionStore) {}
  load(key: string): Promise<StoredSession | null> {
    this.reads++;
    return this.inner.load(key);
  }
  exists(key: string): Promise<boolean> {
    return this.inner.exists(key);
  }
  create(record: StoredSession): Promise<string> {
    this.writes++;
    return this.inner.create(record);
  }
  save(key: string, record: StoredSession, mustCreate?: boolean): Promise<string> {
    this.writes++;
    return this.inner.save(key, record, mustCreate);
  }
  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }
  clearExpired(): Promise<number> {
    return this.inner.clearExpired();
  }
}

describe("absoluteTimeout", () => {
  it("ends a session kept alive by saveEveryRequest on every engine, and restarts at login", async () => {
    // All engines at once, so that the test waits out the timeout once.
    const runs = SERVED_ENGINES.map(async (engine, index) => {
      const opened = await engine.open(join(root, `abs-${index}`));
      const server = serve(app({
        store: opened.store,
        secret: COOKIE_SECRET,
        saveEveryRequest: true,
        absoluteTimeout: 2,
      }));
      return { engine, opened, server, browser: new Browser(server.url) };
    });
    const all = await Promise.all(runs);
    try {
      for (const { browser } of all) {
        assert.equal((await browser.get("/login")).body, "ada");
      }
      await sleep(600);
      for (const { engine, browser } of all) {
        const alive = await browser.get("/me");
        assert.equal(alive.body, "ada", `${engine.name}: alive before the cap`);
        // The cookie never outlives the cap: at most 2 seconds.
        const maxAge = Number(/Max-Age=(\d+)/.exec(alive.setCookie!)![1]);
        assert.ok(maxAge <= 2, `${engine.name}: Max-Age ${maxAge}`);
      }
      // Renewals every 300 ms: the idle timeout never strikes, the cap does.
      for (let i = 0; i < 5; i++) {
        await sleep(300);
        await Promise.all(all.map(({ browser }) => browser.get("/me")));
      }
      for (const { engine, browser } of all) {
        // The browser still sends its last cookie, as a client ignoring Max-Age would.
        const saved = browser.cookie ?? "";
        browser.cookie = saved === "" ? null : saved;
        assert.equal((await browser.get("/me")).body, "anonymous", `${engine.name}: capped`);
        assert.equal((await browser.get("/login")).body, "ada", `${engine.name}: new login`);
        assert.equal((await browser.get("/me")).body, "ada", `${engine.name}: restarted`);
      }
      console.log(`${all.length} engines: every session ended at its absolute timeout`);
    } finally {
      for (const { server, opened } of all) {
        await server.close();
        await opened.close();
      }
    }
  });

  it("refuses a session whose cookie a client keeps past the cap", async () => {
    const store = new MemoryStore();
    const server = serve(app({ store, absoluteTimeout: 1, cookieAge: 3600 }));
    try {
      const browser = new Browser(server.url);
      await browser.get("/login");
      const cookie = browser.cookie;
      await sleep(1100);
      browser.cookie = cookie;
      assert.equal((await browser.get("/me")).body, "anonymous");
    } finally {
      await server.close();
    }
  });

  it("keeps the start out of keys() and out of reach of set(), and keeps it across saves", async () => {
    const store = new MemoryStore();
    const config = {
      store,
      cookieAge: 60,
      expireAtBrowserClose: false,
      serializer: JSON_SERIALIZER,
      logger: console,
      absoluteTimeout: 3600,
    };
    const session = new Session(null, config);
    session.set("a", 1);
    await session.save();
    const start = session.getStartDate()!;
    assert.ok(Math.abs(start.getTime() - Date.now()) < 2000);
    const again = new Session(session.sessionKey, config);
    await again.load();
    assert.deepEqual(again.keys(), ["a"]);
    assert.equal(again.getStartDate()!.getTime(), start.getTime());
    assert.throws(() => again.set("_session_start" as never, 0 as never), TypeError);
    again.set("b", 2);
    await again.save();
    assert.equal(again.getStartDate()!.getTime(), start.getTime(), "a save keeps the start");
    const stored = JSON.parse((await store.load(again.sessionKey!))!.data);
    assert.equal(stored._session_start, start.getTime() / 1000);
  });

  it("restarts the start at cycleKey() and flush(), and never at save(), clear() or setExpiry()", async () => {
    const real = Date.now;
    let now = real();
    Date.now = () => now;
    try {
      const session = new Session(null, {
        store: new MemoryStore(),
        cookieAge: 60,
        expireAtBrowserClose: false,
        serializer: JSON_SERIALIZER,
        logger: console,
        absoluteTimeout: 3600,
      });
      session.set("a", 1);
      await session.save();
      const first = session.getStartDate()!.getTime();
      now += 10_000;
      session.clear();
      session.setExpiry(30);
      session.set("b", 2);
      await session.save();
      assert.equal(session.getStartDate()!.getTime(), first, "save, clear and setExpiry keep it");
      now += 10_000;
      await session.cycleKey();
      const second = session.getStartDate()!.getTime();
      assert.equal(second, first + 20_000, "cycleKey restarts it");
      now += 10_000;
      await session.flush();
      assert.equal(session.getStartDate(), null);
      session.set("c", 3);
      await session.save();
      assert.equal(session.getStartDate()!.getTime(), second + 10_000, "flush restarts it");
    } finally {
      Date.now = real;
    }
  });

  it("is not kept without the option: the data stays what Django writes", async () => {
    const store = new MemoryStore();
    const session = new Session(null, {
      store,
      cookieAge: 60,
      expireAtBrowserClose: false,
      serializer: JSON_SERIALIZER,
      logger: console,
    });
    session.set("a", 1);
    await session.save();
    assert.equal((await store.load(session.sessionKey!))!.data, '{"a":1}');
    assert.equal(session.getStartDate(), null);
  });

  it("rejects a bad value at withSessions", () => {
    for (const value of [0, -1, 1.5, "60"]) {
      assert.throws(() => withSessions(() => new Response(), { absoluteTimeout: value as never }), {
        message: /^Cannot create sessions as 'absoluteTimeout' must be a positive whole number/,
      });
    }
  });
});

describe("renewAfter", () => {
  // A small clock of our own, so that hours pass in a test.
  function withClock<T>(body: (advance: (seconds: number) => void) => Promise<T>): Promise<T> {
    const real = Date.now;
    let now = real();
    Date.now = () => now;
    return body((seconds) => (now += seconds * 1000)).finally(() => (Date.now = real));
  }

  it("re-saves an unchanged session only past the fraction, and keeps it alive", async () => {
    await withClock(async (advance) => {
      const store = new Counting(new MemoryStore());
      const handler = app({ store, cookieAge: 100, renewAfter: 0.5 });
      const request = (cookie: string | null, path = "/me") =>
        handler(new Request(`http://localhost${path}`, { headers: cookie ? { cookie } : {} }));
      const login = await request(null, "/login");
      const cookie = login.headers.get("set-cookie")!.split(";")[0]!;
      const afterLogin = store.writes;
      let renewed = 0;
      // 300 requests, one every 2 s: 600 s, six times the cookie age.
      for (let i = 0; i < 300; i++) {
        advance(2);
        const response = await request(cookie);
        assert.equal(await response.text(), "ada", `request ${i}`);
        if (response.headers.get("set-cookie") !== null) renewed++;
      }
      const writes = store.writes - afterLogin;
      assert.equal(writes, renewed, "every renewal sends the cookie again");
      // One write per 50 s of a 100 s age, give or take the 2 s steps.
      assert.ok(writes >= 11 && writes <= 13, `${writes} writes`);
      console.log(`renewAfter 0.5: ${writes} writes over 300 requests (saveEveryRequest: 300)`);
    });
  });

  it("stops renewing once the absolute timeout sets the expiry", async () => {
    await withClock(async (advance) => {
      const store = new Counting(new MemoryStore());
      const handler = app({ store, cookieAge: 100, renewAfter: 0.5, absoluteTimeout: 300 });
      const request = (cookie: string | null, path = "/me") =>
        handler(new Request(`http://localhost${path}`, { headers: cookie ? { cookie } : {} }));
      const login = await request(null, "/login");
      const cookie = login.headers.get("set-cookie")!.split(";")[0]!;
      const afterLogin = store.writes;
      let alive = 0;
      for (let i = 0; i < 200; i++) {
        advance(2);
        if (await (await request(cookie)).text() === "ada") alive++;
      }
      const writes = store.writes - afterLogin;
      console.log(
        `renewAfter 0.5 with absoluteTimeout 300 s: ${writes} writes, ${alive} of 200 requests served`,
      );
      // Alive for its 300 s (about 150 requests), renewed about every 50 s.
      assert.ok(alive >= 148 && alive <= 150, `${alive} alive`);
      assert.ok(writes <= 6, `${writes} writes`);
    });
  });

  it("does not load a session for a request without a cookie, nor create one", async () => {
    const store = new Counting(new MemoryStore());
    const handler = withSessions(() => new Response("ok"), { store, renewAfter: 0.5 });
    const response = await handler(new Request("http://localhost/"));
    assert.equal(response.headers.get("set-cookie"), null);
    assert.equal(store.reads + store.writes, 0);
  });

  it("answers an unknown cookie without saving it (CVE-2015-5143)", async () => {
    const store = new Counting(new MemoryStore());
    const handler = withSessions(() => new Response("ok"), { store, renewAfter: 0 });
    const response = await handler(
      new Request("http://localhost/", { headers: { cookie: "sessionid=abcdefgh12345678" } }),
    );
    // The stale cookie is deleted, as Django does; nothing is written.
    assert.match(response.headers.get("set-cookie")!, /^sessionid=; .*Max-Age=0/);
    assert.equal(store.writes, 0);
  });

  it("warns at withSessions when a cache's cacheTtl would make it save on every request", () => {
    const warnings: string[] = [];
    const logger = { warn: (message: string) => warnings.push(message), error: () => {} };
    const cached = (cacheTtl: number) =>
      new CachedStore(new MemoryStore(), new MemoryStore(), { cacheTtl });
    withSessions(() => new Response(), {
      store: cached(60),
      cookieAge: 3600,
      renewAfter: 0.5,
      logger,
    });
    assert.equal(warnings.length, 1);
    assert.match(
      warnings[0]!,
      /^Cannot renew sessions without a write per request as the store's cacheTtl is shorter .* \(1800 seconds\): current value is 60$/,
    );
    withSessions(() => new Response(), {
      store: cached(1800),
      cookieAge: 3600,
      renewAfter: 0.5,
      logger,
    });
    withSessions(() => new Response(), { store: cached(60), cookieAge: 3600, logger });
    assert.equal(warnings.length, 1);
  });

  it("rejects a fraction outside 0 to 1", () => {
    for (const value of [-0.1, 1.5, Number.NaN, "0.5"]) {
      assert.throws(() => withSessions(() => new Response(), { renewAfter: value as never }), {
        message: /^Cannot create sessions as 'renewAfter' must be a fraction between 0 and 1/,
      });
    }
  });
});

describe("verifySession", () => {
  it("makes a session it rejects absent, on every engine", async () => {
    for (const [index, engine] of SERVED_ENGINES.entries()) {
      const opened = await engine.open(join(root, `verify-${index}`));
      let revoked = false;
      const server: TestServer = serve(app({
        store: opened.store,
        secret: COOKIE_SECRET,
        verifySession: (data) => !(revoked && data.user === "ada"),
      }));
      try {
        const browser = new Browser(server.url);
        await browser.get("/login");
        assert.equal((await browser.get("/me")).body, "ada", engine.name);
        revoked = true;
        assert.equal((await browser.get("/me")).body, "anonymous", engine.name);
      } finally {
        await server.close();
        await opened.close();
      }
    }
  });

  it("fails the request with a logged 500 when the hook throws, and logs no key", async () => {
    const errors: string[] = [];
    const store = new MemoryStore();
    const handler = withSessions(async (req) => {
      const session = await getSession(req);
      if (new URL(req.url).pathname === "/login") session.set("user", "ada");
      return new Response(String(session.get("user")));
    }, {
      store,
      logger: { warn: () => {}, error: (message) => errors.push(message) },
      verifySession: (data) => {
        if (data.user === "ada") throw new Error("user database down");
        return true;
      },
    });
    const login = await handler(new Request("http://localhost/login"));
    const cookie = login.headers.get("set-cookie")!.split(";")[0]!;
    const response = await handler(new Request("http://localhost/me", { headers: { cookie } }));
    assert.equal(response.status, 500);
    assert.equal(errors.length, 1);
    assert.ok(!errors[0]!.includes(cookie.slice(10)));
  });
});
