import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CookieStore,
  FileStore,
  getSession,
  JSON_SERIALIZER,
  MemoryStore,
  sessionCookieHeader,
  type SessionOptions,
  type SessionStore,
  type StoredSession,
  withSessions,
} from "../mod.ts";
import { Browser } from "./_browser.ts";
import { RecordingLogger } from "./_config.ts";
import { serve, type TestServer } from "./_server.ts";

const servers: TestServer[] = [];
const dirs: string[] = [];
after(async () => {
  for (const server of servers) await server.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

type Handler = (req: Request) => Response | Promise<Response>;

/** Serves `handler` wrapped in withSessions and returns a browser for it. */
function start(handler: Handler, options: SessionOptions = {}): Browser {
  const server = serve(withSessions(handler, { store: new MemoryStore(), ...options }));
  servers.push(server);
  return new Browser(server.url);
}

/** A real MemoryStore that counts the calls made to it. */
class CountingStore implements SessionStore {
  readonly inner = new MemoryStore();
  calls = 0;
  load(key: string): Promise<StoredSession | null> {
    this.calls++;
    return this.inner.load(key);
  }
  exists(key: string): Promise<boolean> {
    this.calls++;
    return this.inner.exists(key);
  }
  create(record: StoredSession): Promise<string> {
    this.calls++;
    return this.inner.create(record);
  }
  save(key: string, record: StoredSession, mustCreate?: boolean): Promise<string> {
    this.calls++;
    return this.inner.save(key, record, mustCreate);
  }
  delete(key: string): Promise<void> {
    this.calls++;
    return this.inner.delete(key);
  }
  clearExpired(): Promise<number> {
    return this.inner.clearExpired();
  }
}

const counter: Handler = async (req) => {
  const session = await getSession<{ visits: number }>(req);
  const visits = (session.get("visits") ?? 0) + 1;
  session.set("visits", visits);
  return new Response(String(visits));
};

function sessionCookieOf(browser: Browser, name = "sessionid"): string | undefined {
  return browser.cookies.get(name);
}

describe("withSessions(): the session cookie", () => {
  it("creates a session on the first change and sends it back on later requests", async () => {
    const browser = start(counter);
    const first = await browser.text("/");
    assert.equal(first.body, "1");
    const header = first.response.headers.get("set-cookie")!;
    assert.match(
      header,
      /^sessionid=[a-z0-9]{32}; Expires=[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT; Max-Age=1209600; Path=\/; HttpOnly; SameSite=Lax$/,
    );
    assert.equal(first.response.headers.get("vary"), "Cookie");
    assert.equal((await browser.text("/")).body, "2");
    assert.equal((await browser.text("/")).body, "3");
  });

  it("keeps the same key across requests that modify the session", async () => {
    const browser = start(counter);
    await browser.text("/");
    const key = sessionCookieOf(browser);
    await browser.text("/");
    assert.equal(sessionCookieOf(browser), key);
  });

  it("sets Secure, drops HttpOnly and uses SameSite=Strict when told (tests 90-93)", async () => {
    const browser = start(counter, {
      cookieSecure: true,
      cookieHttpOnly: false,
      cookieSameSite: "Strict",
    });
    const { response } = await browser.text("/");
    const header = response.headers.get("set-cookie")!;
    assert.match(header, /; Secure/);
    assert.doesNotMatch(header, /HttpOnly/i);
    assert.match(header, /; SameSite=Strict$/);
  });

  it("uses the configured name, domain and path", async () => {
    const browser = start(counter, {
      cookieName: "sid",
      cookieDomain: ".example.local",
      cookiePath: "/",
    });
    const { response } = await browser.text("/");
    assert.match(
      response.headers.get("set-cookie")!,
      /^sid=[a-z0-9]{32}; .*; Domain=\.example\.local; Path=\/;/,
    );
  });

  it("omits Max-Age and Expires when sessions end with the browser", async () => {
    const browser = start(counter, { expireAtBrowserClose: true });
    const { response } = await browser.text("/");
    assert.match(
      response.headers.get("set-cookie")!,
      /^sessionid=[a-z0-9]{32}; Path=\/; HttpOnly; SameSite=Lax$/,
    );
  });

  it("uses a custom expiry for the cookie and keeps it on later requests", async () => {
    const browser = start(async (req) => {
      const session = await getSession(req);
      if (new URL(req.url).pathname === "/short") session.setExpiry(10);
      else if (new URL(req.url).pathname === "/browser") session.setExpiry(0);
      else session.set("n", ((session.get("n") as number | undefined) ?? 0) + 1);
      return new Response(String(session.getExpiryAge()));
    });
    await browser.text("/");
    const short = await browser.text("/short");
    assert.match(short.response.headers.get("set-cookie")!, /; Max-Age=10; /);
    const later = await browser.text("/");
    assert.equal(later.body, "10");
    assert.match(later.response.headers.get("set-cookie")!, /; Max-Age=10; /);
    const browserClose = await browser.text("/browser");
    assert.doesNotMatch(browserClose.response.headers.get("set-cookie")!, /Max-Age|Expires/);
  });

  it("keeps working when the response has immutable headers (Response.redirect)", async () => {
    const browser = start(async (req) => {
      (await getSession(req)).set("flash", "saved");
      return Response.redirect(new URL("/done", req.url), 303);
    });
    const response = await browser.fetch("/");
    assert.equal(response.status, 303);
    assert.match(response.headers.get("location")!, /\/done$/);
    assert.match(response.headers.get("set-cookie")!, /^sessionid=[a-z0-9]{32};/);
    assert.equal(response.headers.get("vary"), "Cookie");
  });

  it("keeps working when the response is a fetch() pass-through", async () => {
    const upstream = serve(() => new Response("from upstream", { headers: { "x-upstream": "1" } }));
    servers.push(upstream);
    const browser = start(async (req) => {
      (await getSession(req)).set("proxied", true);
      return await fetch(upstream.url);
    });
    const { response, body } = await browser.text("/");
    assert.equal(body, "from upstream");
    assert.equal(response.headers.get("x-upstream"), "1");
    assert.match(response.headers.get("set-cookie")!, /^sessionid=[a-z0-9]{32};/);
  });

  it("adds Cookie to an existing Vary header", async () => {
    const browser = start(async (req) => {
      (await getSession(req)).get("x");
      return new Response("ok", { headers: { vary: "Accept-Encoding" } });
    });
    const { response } = await browser.text("/");
    assert.equal(response.headers.get("vary"), "Accept-Encoding, Cookie");
  });
});

describe("withSessions(): when nothing is written", () => {
  it("does no store I/O and adds no header for a handler that never calls getSession", async () => {
    const store = new CountingStore();
    const key = await store.inner.create({ data: '{"a":1}', expiresAt: Date.now() + 60_000 });
    const browser = start(() => new Response("plain"), { store });
    const { response } = await browser.text("/", { headers: { cookie: `sessionid=${key}` } });
    assert.equal(store.calls, 0);
    assert.equal(response.headers.get("set-cookie"), null);
    assert.equal(response.headers.get("vary"), null);
  });

  it("does not save or set a cookie for a session that was only read, but varies by cookie", async () => {
    const store = new CountingStore();
    const browser = start(async (req) => new Response(String((await getSession(req)).get("x"))), {
      store,
    });
    const { response } = await browser.text("/");
    assert.equal(response.headers.get("set-cookie"), null);
    assert.equal(response.headers.get("vary"), "Cookie");
    assert.equal(store.inner.size, 0);
  });

  it("does not save a known session that was only read", async () => {
    const store = new CountingStore();
    const browser = start(async (req) => {
      const session = await getSession(req);
      if (new URL(req.url).pathname === "/write") session.set("x", 1);
      return new Response(String(session.get("x")));
    }, { store });
    await browser.text("/write");
    store.calls = 0;
    const { response, body } = await browser.text("/read");
    assert.equal(body, "1");
    assert.equal(store.calls, 1, "one load, no save");
    assert.equal(response.headers.get("set-cookie"), null);
  });

  it("does not save and sets no cookie when the response is a 500 or a 503 (tests 94-95)", async () => {
    for (const status of [500, 503]) {
      const store = new MemoryStore();
      const browser = start(async (req) => {
        (await getSession(req)).set("lost", true);
        return new Response("failure", { status });
      }, { store });
      const { response } = await browser.text("/");
      assert.equal(response.status, status);
      assert.equal(response.headers.get("set-cookie"), null);
      assert.equal(store.size, 0);
    }
  });

  it("never stores an empty session, even with saveEveryRequest (CVE-2015-5963)", async () => {
    const store = new MemoryStore();
    const browser = start(async (req) => {
      await (await getSession(req)).flush();
      return new Response("logged out");
    }, { store, saveEveryRequest: true });
    const { response } = await browser.text("/");
    assert.equal(response.headers.get("set-cookie"), null);
    assert.equal(response.headers.get("vary"), "Cookie");
    assert.equal(store.size, 0);
  });
});

describe("withSessions(): unknown and deleted sessions", () => {
  it("never adopts a key the store does not know (session fixation)", async () => {
    const store = new MemoryStore();
    const forged = "attackerchosenkey000000000000000";
    const browser = start(counter, { store });
    const { response, body } = await browser.text("/", {
      headers: { cookie: `sessionid=${forged}` },
    });
    assert.equal(body, "1");
    const issued = /^sessionid=([a-z0-9]{32});/.exec(response.headers.get("set-cookie")!)![1];
    assert.notEqual(issued, forged);
    assert.equal(await store.exists(forged), false);
  });

  it("deletes the cookie of an unknown key that was only read, and writes nothing", async () => {
    const store = new MemoryStore();
    const browser = start(async (req) => new Response(String((await getSession(req)).get("x"))), {
      store,
    });
    const { response } = await browser.text("/", {
      headers: { cookie: "sessionid=expiredorunknownkey0000000000000" },
    });
    assert.equal(
      response.headers.get("set-cookie"),
      "sessionid=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; HttpOnly; SameSite=Lax",
    );
    assert.equal(response.headers.get("vary"), "Cookie");
    assert.equal(store.size, 0);
  });

  it("deletes the cookie with the same path, domain and SameSite on flush (tests 97-98)", async () => {
    const browser = start(async (req) => {
      const session = await getSession(req);
      if (new URL(req.url).pathname === "/example/logout") await session.flush();
      else session.set("user", "ada");
      return new Response("ok");
    }, { cookieDomain: ".example.local", cookiePath: "/example/", cookieHttpOnly: false });
    await browser.text("/example/login");
    assert.ok(sessionCookieOf(browser));
    const { response } = await browser.text("/example/logout");
    assert.equal(
      response.headers.get("set-cookie"),
      "sessionid=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Domain=.example.local; Path=/example/; SameSite=Lax",
    );
    assert.equal(response.headers.get("vary"), "Cookie");
    assert.equal(sessionCookieOf(browser), undefined);
  });

  it("sets no cookie for a flush without a session cookie, but varies (test 99)", async () => {
    const browser = start(async (req) => {
      await (await getSession(req)).flush();
      return new Response("ok");
    });
    const { response } = await browser.text("/");
    assert.equal(response.headers.get("set-cookie"), null);
    assert.equal(response.headers.get("vary"), "Cookie");
  });

  it("still saves a session emptied of data that keeps its key (test_empty_session_saved)", async () => {
    const store = new MemoryStore();
    const browser = start(async (req) => {
      const session = await getSession(req);
      if (new URL(req.url).pathname === "/set") session.set("foo", "bar");
      else session.delete("foo");
      return new Response("ok");
    }, { store });
    await browser.text("/set");
    const key = sessionCookieOf(browser)!;
    const { response } = await browser.text("/empty");
    assert.match(response.headers.get("set-cookie")!, new RegExp(`^sessionid=${key}; `));
    assert.equal(response.headers.get("vary"), "Cookie");
    assert.equal((await store.load(key))?.data, "{}");
  });

  it("answers 400 when a concurrent request deleted the session (test_session_update_error_redirect)", async () => {
    const store = new MemoryStore();
    const browser = start(async (req) => {
      const session = await getSession(req);
      session.set("x", 1);
      await session.save(true);
      await store.delete(session.sessionKey!);
      return new Response("ok");
    }, { store });
    const { response, body } = await browser.text("/");
    assert.equal(response.status, 400);
    assert.equal(
      body,
      "The request's session was deleted before the request completed. The user may have logged out in a concurrent request, for example.",
    );
    assert.equal(response.headers.get("set-cookie"), null);
    assert.equal(store.size, 0, "the deleted session is not brought back");
  });

  it("answers 400 when another request logged out between this one's load and save", async () => {
    const store = new MemoryStore();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const browser = start(async (req) => {
      const session = await getSession(req);
      const path = new URL(req.url).pathname;
      if (path === "/login") session.set("user", "ada");
      else if (path === "/logout") await session.flush();
      else {
        session.set("slow", true);
        await gate;
      }
      return new Response(path);
    }, { store });
    await browser.text("/login");
    const slow = browser.text("/slow");
    await new Promise((resolve) => setTimeout(resolve, 50));
    await browser.text("/logout");
    release();
    const { response } = await slow;
    assert.equal(response.status, 400);
    assert.equal(store.size, 0);
  });
});

describe("withSessions(): saveEveryRequest", () => {
  it("re-saves a live session the handler never touched, sliding its expiry", async () => {
    const store = new MemoryStore();
    const browser = start((req) => {
      if (new URL(req.url).pathname === "/login") {
        return getSession(req).then((session) => {
          session.set("user", "ada");
          return new Response("in");
        });
      }
      return new Response("static");
    }, { store, saveEveryRequest: true });
    await browser.text("/login");
    const key = sessionCookieOf(browser)!;
    const before = (await store.load(key))!.expiresAt;
    await new Promise((resolve) => setTimeout(resolve, 20));
    const { response } = await browser.text("/static");
    assert.match(response.headers.get("set-cookie")!, new RegExp(`^sessionid=${key}; `));
    assert.ok((await store.load(key))!.expiresAt > before);
  });

  it("varies by cookie when it refreshes the cookie of a session the handler never touched (CVE-2026-35192)", async () => {
    const store = new MemoryStore();
    const browser = start(async (req) => {
      if (new URL(req.url).pathname === "/login") (await getSession(req)).set("user", "ada");
      return new Response("a page a shared cache could store", {
        headers: { "cache-control": "public, max-age=600", vary: "Accept-Encoding" },
      });
    }, { store, saveEveryRequest: true });
    await browser.text("/login");
    const key = sessionCookieOf(browser)!;
    const { response } = await browser.text("/page");
    assert.match(response.headers.get("set-cookie")!, new RegExp(`^sessionid=${key}; `));
    assert.equal(response.headers.get("vary"), "Accept-Encoding, Cookie");
  });

  it("varies by cookie when it deletes the cookie of an unknown key the handler never touched", async () => {
    const browser = start(() => new Response("static"), { saveEveryRequest: true });
    const { response } = await browser.text("/", {
      headers: { cookie: "sessionid=unknownunknownunknown000000000000" },
    });
    assert.match(response.headers.get("set-cookie")!, /^sessionid=; /);
    assert.equal(response.headers.get("vary"), "Cookie");
  });

  it("writes nothing for a request without a cookie or with an unknown key (no CVE-2015-5143)", async () => {
    const store = new MemoryStore();
    const browser = start(() => new Response("static"), { store, saveEveryRequest: true });
    const none = await browser.text("/");
    assert.equal(none.response.headers.get("set-cookie"), null);
    const unknown = await browser.text("/", {
      headers: { cookie: "sessionid=unknownunknownunknown000000000000" },
    });
    assert.match(unknown.response.headers.get("set-cookie")!, /^sessionid=; /);
    assert.equal(store.size, 0);
  });
});

describe("withSessions(): store failures", () => {
  it("answers 500 and logs when the store cannot save, with no cookie and no key in the log", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tessera-mw-"));
    const store = new FileStore({ path: dir });
    const logger = new RecordingLogger();
    const browser = start(counter, { store, logger });
    rmSync(dir, { recursive: true });
    const { response } = await browser.text("/");
    assert.equal(response.status, 500);
    assert.equal(response.headers.get("set-cookie"), null);
    assert.equal(logger.errors.length, 1);
    assert.match(logger.errors[0]!.message, /Cannot save the session/);
    assert.match(String((logger.errors[0]!.error as Error).message), /ENOENT/);
  });

  it("answers 500 and logs when the store cannot load", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tessera-mw-"));
    dirs.push(dir);
    const store = new FileStore({ path: dir });
    const logger = new RecordingLogger();
    const browser = start(counter, { store, logger });
    await browser.text("/");
    const key = sessionCookieOf(browser)!;
    // The session directory replaced by a symlink to itself: a read error
    // that is not "no such session" (a directory at the file's name would
    // only be ignored, as not the engine's own file).
    rmSync(dir, { recursive: true });
    const { symlinkSync } = await import("node:fs");
    symlinkSync(dir, dir);
    const { response } = await browser.text("/");
    assert.equal(response.status, 500);
    assert.match(logger.errors[0]!.message, /Cannot load the session/);
    for (const { message, error } of logger.errors) {
      assert.ok(!message.includes(key) && !String((error as Error).message).includes(key));
    }
  });

  it("leaves a handler's own error response alone when it caught the store failure", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tessera-mw-"));
    const store = new FileStore({ path: dir });
    const browser = start(async (req) => {
      try {
        await getSession(req);
        return new Response("ok");
      } catch {
        return new Response("sessions are down", { status: 503 });
      }
    }, { store, logger: new RecordingLogger() });
    dirs.push(dir);
    // A session directory that is a symlink to itself makes the load fail.
    const key = "a".repeat(32);
    rmSync(dir, { recursive: true });
    const { symlinkSync } = await import("node:fs");
    symlinkSync(dir, dir);
    const { response, body } = await browser.text("/", { headers: { cookie: `sessionid=${key}` } });
    assert.equal(response.status, 503);
    assert.equal(body, "sessions are down");
  });
});

describe("withSessions(): bad cookies (SPEC section 6)", () => {
  const cookies = [
    "",
    "sessionid=",
    'sessionid=""',
    "sessionid=short",
    `sessionid=${"a".repeat(41)}`,
    `sessionid=${"a".repeat(5000)}`,
    "sessionid=../../../../etc/passwd",
    "sessionid=..%2F..%2Fetc%2Fpasswd",
    "sessionid=ABCDEFGHIJKLMNOPQRSTUVWXYZ012345",
    "sessionid=abc\\def\\ghi\\jkl\\mno",
    "sessionid=%00%00%00%00%00%00%00%00%00",
    "sessionid=a; sessionid=b; sessionid=c",
    "sessionid; =; ;;; =sessionid",
  ];
  for (const cookie of cookies) {
    it(`treats ${JSON.stringify(cookie.slice(0, 50))} as no session, never an error or a file outside`, async () => {
      const dir = mkdtempSync(join(tmpdir(), "tessera-bad-"));
      dirs.push(dir);
      const browser = start(counter, { store: new FileStore({ path: dir }) });
      const { response, body } = await browser.text("/", { headers: { cookie } });
      assert.equal(response.status, 200);
      assert.equal(body, "1");
      const issued = /^sessionid=([a-z0-9]{32});/.exec(response.headers.get("set-cookie") ?? "")
        ?.[1];
      assert.ok(issued, "a fresh key is issued");
      assert.deepEqual(readdirSync(dir), [`sessionid${issued}`]);
    });
  }

  it("treats a non-ASCII cookie header as no session", async () => {
    const browser = start(counter);
    const { response, body } = await browser.text("/", {
      headers: { cookie: "sessionid=\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9" },
    });
    assert.equal(response.status, 200);
    assert.equal(body, "1");
  });

  it("uses the first of two session cookies", async () => {
    const store = new MemoryStore();
    const browser = start(counter, { store });
    await browser.text("/");
    const key = sessionCookieOf(browser)!;
    const { body } = await browser.text("/", {
      headers: { cookie: `sessionid=${key}; sessionid=${"b".repeat(32)}` },
    });
    assert.equal(body, "2");
  });
});

describe("getSession()", () => {
  it("throws a clear error naming withSessions outside of it", () => {
    assert.throws(() => getSession(new Request("http://localhost/")), /withSessions\(\)/);
  });

  it("returns the same session for the same request", async () => {
    const browser = start(async (req) => {
      const [a, b] = await Promise.all([getSession(req), getSession(req)]);
      return new Response(String(a === b && a === (await getSession(req))));
    });
    assert.equal((await browser.text("/")).body, "true");
  });

  it("passes the handler's extra arguments through", async () => {
    const wrapped = withSessions(
      (_req: Request, info: { remote: string }, extra: number) =>
        new Response(`${info.remote}:${extra}`),
      { store: new MemoryStore() },
    );
    const response = await wrapped(new Request("http://localhost/"), { remote: "peer" }, 7);
    assert.equal(await response.text(), "peer:7");
  });

  it("lets errors of the handler itself through unchanged", async () => {
    const wrapped = withSessions(() => {
      throw new RangeError("handler bug");
    }, { store: new MemoryStore() });
    await assert.rejects(wrapped(new Request("http://localhost/")), {
      name: "RangeError",
      message: "handler bug",
    });
  });
});

describe("withSessions(): what a store can ask of the core", () => {
  it("saves again a session whose record the store marked for refresh, even if unchanged", async () => {
    class RefreshingStore extends MemoryStore {
      override async load(key: string): Promise<StoredSession | null> {
        const record = await super.load(key);
        return record && { ...record, refresh: true };
      }
    }
    const store = new RefreshingStore();
    const key = await store.create({ data: '{"a":1}', expiresAt: Date.now() + 60_000 });
    const browser = start(async (req) => new Response(String((await getSession(req)).get("a"))), {
      store,
    });
    const { response, body } = await browser.text("/", { headers: { cookie: `sessionid=${key}` } });
    assert.equal(body, "1");
    assert.match(response.headers.get("set-cookie")!, new RegExp(`^sessionid=${key}; `));
  });

  it("lets a store accept keys of its own shape", async () => {
    class CustomKeyStore extends MemoryStore {
      isValidKey(value: string): boolean {
        return /^CUSTOM-[A-Z]+$/.test(value);
      }
    }
    const store = new CustomKeyStore();
    await store.save(
      "CUSTOM-KEY",
      { data: '{"who":"custom"}', expiresAt: Date.now() + 60_000 },
      true,
    );
    const browser = start(async (req) => new Response(String((await getSession(req)).get("who"))), {
      store,
    });
    assert.equal(
      (await browser.text("/", { headers: { cookie: "sessionid=CUSTOM-KEY" } })).body,
      "custom",
    );
    const plain = "abcdefgh12345678abcdefgh12345678";
    assert.equal(
      (await browser.text("/", { headers: { cookie: `sessionid=${plain}` } })).body,
      "undefined",
    );
  });

  it("refuses a cookie over 4096 bytes with a logged error naming the size and the fix", async () => {
    class LongKeyStore extends MemoryStore {
      override async create(record: StoredSession): Promise<string> {
        const key = "k".repeat(4100);
        await this.save(key, record, true);
        return key;
      }
    }
    const logger = new RecordingLogger();
    const browser = start(counter, { store: new LongKeyStore(), logger });
    const { response } = await browser.text("/");
    assert.equal(response.status, 500);
    assert.equal(response.headers.get("set-cookie"), null);
    assert.match(
      logger.errors[0]!.message,
      /would be 41\d\d bytes, over the 4096-byte limit.*server-side engine/,
    );
  });
});

/** Calls `handler` wrapped in withSessions directly, as a runtime would. */
function wrap<R extends Response | undefined>(
  handler: (req: Request) => R | Promise<R>,
  options: SessionOptions,
): (cookie?: string) => Promise<R> {
  const wrapped = withSessions(handler, options);
  return (cookie) =>
    wrapped(new Request("http://localhost/", cookie === undefined ? {} : { headers: { cookie } }));
}

/** A store holding one live session `{"user":"ada"}`, and its cookie. */
async function loggedIn(store: SessionStore = new MemoryStore()): Promise<{
  store: SessionStore;
  key: string;
  cookie: string;
}> {
  const key = await store.create({ data: '{"user":"ada"}', expiresAt: Date.now() + 60_000 });
  return { store, key, cookie: `sessionid=${key}` };
}

describe("withSessions(): what a runtime hands back", () => {
  it("passes through the undefined a handler returns after Bun's upgrade, and saves the session", async () => {
    const { store, key, cookie } = await loggedIn();
    const logger = new RecordingLogger();
    const call = wrap(async (req) => {
      const session = await getSession(req);
      session.set("socket", "open");
      return undefined; // if (server.upgrade(req)) return;
    }, { store, logger });
    assert.equal(await call(cookie), undefined);
    assert.deepEqual(JSON.parse((await store.load(key))!.data), { user: "ada", socket: "open" });
    assert.deepEqual(logger.errors, []);
  });

  it("passes through a 101 response untouched, and saves the session", async () => {
    const { store, key, cookie } = await loggedIn();
    const upgrade = new Response(null, { status: 101, headers: { upgrade: "websocket" } });
    const call = wrap(async (req) => {
      (await getSession(req)).set("socket", "open");
      return upgrade;
    }, { store });
    const response = await call(cookie);
    assert.equal(response, upgrade);
    assert.deepEqual([...response.headers], [["upgrade", "websocket"]]);
    assert.deepEqual(JSON.parse((await store.load(key))!.data), { user: "ada", socket: "open" });
  });

  it("passes through Response.error() untouched and saves nothing, as for a 5xx", async () => {
    const { store, key, cookie } = await loggedIn();
    const failure = Response.error();
    const call = wrap(async (req) => {
      (await getSession(req)).set("lost", true);
      return failure;
    }, { store });
    const response = await call(cookie);
    assert.equal(response, failure);
    assert.equal(response.status, 0);
    assert.equal(response.headers.get("set-cookie"), null);
    assert.deepEqual(JSON.parse((await store.load(key))!.data), { user: "ada" });
  });

  it("does not store a new session after an upgrade without its cookie, and says what to do", async () => {
    const store = new MemoryStore();
    const logger = new RecordingLogger();
    const call = wrap(async (req) => {
      (await getSession(req)).set("socket", "open");
      return undefined;
    }, { store, logger });
    assert.equal(await call(), undefined);
    assert.equal(store.size, 0, "no record whose key no client can ever send");
    assert.equal(logger.warnings.length, 1);
    assert.match(
      logger.warnings[0]!,
      /^Cannot save a new session after a WebSocket upgrade .*sessionCookieHeader\(req\)/,
    );
  });

  it("only logs a save that fails after an upgrade", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tessera-mw-"));
    const { key, cookie } = await loggedIn(new FileStore({ path: dir }));
    const logger = new RecordingLogger();
    const call = wrap(async (req) => {
      (await getSession(req)).set("socket", "open");
      rmSync(dir, { recursive: true }); // the disk goes away during the upgrade
      return undefined;
    }, { store: new FileStore({ path: dir }), logger });
    assert.equal(await call(cookie), undefined);
    assert.equal(logger.errors.length, 1);
    assert.match(logger.errors[0]!.message, /^Cannot save the session: the session store failed$/);
    assert.ok(!JSON.stringify(logger.errors).includes(key));
  });

  it("only logs a save after an upgrade that a concurrent logout interrupted", async () => {
    const { store, cookie } = await loggedIn();
    const logger = new RecordingLogger();
    const call = wrap(async (req) => {
      const session = await getSession(req);
      session.set("socket", "open");
      await store.delete(session.sessionKey!);
      return undefined;
    }, { store, logger });
    assert.equal(await call(cookie), undefined);
    assert.match(
      logger.warnings[0]!,
      /^Cannot save the session after a WebSocket upgrade: .*deleted/,
    );
    assert.equal(await store.exists(cookie.slice("sessionid=".length)), false, "the logout stands");
  });

  it("answers 500 and logs any failure after the handler, never rejecting", async () => {
    const logger = new RecordingLogger();
    const call = wrap(async (req) => {
      (await getSession(req)).set("x", 1);
      return new Response("ok");
    }, {
      logger,
      serializer: {
        ...JSON_SERIALIZER,
        stringify() {
          throw new Error("the serializer broke");
        },
      },
    });
    const response = await call();
    assert.equal(response.status, 500);
    assert.equal(await response.text(), "Internal Server Error");
    assert.equal(response.headers.get("set-cookie"), null);
    assert.equal(logger.errors.length, 1);
    assert.equal(
      logger.errors[0]!.message,
      "Cannot complete the session after the handler as it failed",
    );
    assert.equal((logger.errors[0]!.error as Error).message, "the serializer broke");
  });
});

describe("sessionCookieHeader()", () => {
  it("saves a new session now and gives its Set-Cookie, which the response repeats without a second save", async () => {
    const store = new CountingStore();
    let early: string | null = null;
    const call = wrap(async (req) => {
      (await getSession(req)).set("socket", "open");
      early = await sessionCookieHeader(req);
      return new Response("the upgrade failed", { status: 400 });
    }, { store });
    const response = await call();
    assert.match(
      early!,
      /^sessionid=[a-z0-9]{32}; Expires=.*; Max-Age=1209600; Path=\/; HttpOnly; SameSite=Lax$/,
    );
    assert.equal(store.inner.size, 1);
    assert.equal(store.calls, 1, "one create, no second save");
    assert.equal(response.headers.get("set-cookie"), early);
    assert.equal(response.headers.get("vary"), "Cookie");
  });

  it("gives null for a session that did not change, and the deletion for one emptied", async () => {
    const { store, cookie } = await loggedIn();
    const seen: (string | null)[] = [];
    const call = wrap(async (req) => {
      const session = await getSession(req);
      seen.push(await sessionCookieHeader(req));
      await session.flush();
      seen.push(await sessionCookieHeader(req));
      return undefined;
    }, { store });
    await call(cookie);
    assert.deepEqual(seen, [
      null,
      "sessionid=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; HttpOnly; SameSite=Lax",
    ]);
  });

  it("gives the refreshed cookie of an untouched session with saveEveryRequest, saving it once", async () => {
    const { cookie, key } = await loggedIn();
    const store = new CountingStore();
    await store.inner.save(key, { data: '{"user":"ada"}', expiresAt: Date.now() + 60_000 }, true);
    let early: string | null = null;
    const call = wrap(async (req) => {
      early = await sessionCookieHeader(req);
      return undefined;
    }, { store, saveEveryRequest: true });
    await call(cookie);
    assert.match(early!, new RegExp(`^sessionid=${key}; `));
    assert.equal(store.calls, 2, "one load, one save");
  });

  it("saves changes made after it under the same key when the handler upgrades", async () => {
    const store = new MemoryStore();
    let early: string | null = null;
    const call = wrap(async (req) => {
      const session = await getSession(req);
      session.set("a", 1);
      early = await sessionCookieHeader(req);
      session.set("b", 2);
      return undefined;
    }, { store });
    await call();
    const key = /^sessionid=([a-z0-9]{32});/.exec(early!)![1]!;
    assert.deepEqual(JSON.parse((await store.load(key))!.data), { a: 1, b: 2 });
    assert.equal(store.size, 1);
  });

  it("gives a signed-cookie session's cookie, and warns of changes made after it that an upgrade loses", async () => {
    const logger = new RecordingLogger();
    let early: string | null = null;
    const secret = "a-secret-of-at-least-32-bytes-for-tests";
    const call = wrap(async (req) => {
      const session = await getSession(req);
      session.set("a", 1);
      early = await sessionCookieHeader(req);
      session.set("b", 2); // lives only in a cookie the client can no longer get
      return undefined;
    }, { store: new CookieStore(), secret, logger });
    assert.equal(await call(), undefined);
    const check = wrap(async (req) => Response.json((await getSession(req)).items()), {
      store: new CookieStore(),
      secret,
    });
    assert.deepEqual(await (await check(early!.split(";")[0]!)).json(), [["a", 1]]);
    assert.equal(logger.warnings.length, 1);
    assert.match(
      logger.warnings[0]!,
      /^Cannot send the session's new cookie after a WebSocket upgrade/,
    );
  });

  it("throws a clear error naming withSessions outside of it", async () => {
    await assert.rejects(sessionCookieHeader(new Request("http://localhost/")), {
      name: "Error",
      message:
        /^Cannot get the session cookie as this request is not being handled inside withSessions\(\)/,
    });
  });
});

describe("withSessions(): values changed in place after set()", () => {
  const cases: [string, (value: { list: unknown[] }) => void, RegExp][] = [
    [
      "into a cycle",
      (value) => value.list.push(value),
      /'cart'.*cart\.list\[0\] refers back to itself \(a cycle\)/,
    ],
    ["to hold a Date", (value) => value.list.push(new Date()), /'cart'.*cart\.list\[0\] is a Date/],
    [
      "to hold a function",
      (value) => value.list.push(() => 1),
      /'cart'.*cart\.list\[0\] is a function/,
    ],
    [
      "to give an array a property",
      (value) => Object.assign(value.list, { note: "x" }),
      /'cart'.*cart\.list is an array with a property 'note'/,
    ],
  ];
  for (const [what, change, message] of cases) {
    it(`answers 500 with a logged error naming the key for a value changed ${what}, and keeps the stored session`, async () => {
      const { store, key, cookie } = await loggedIn();
      const logger = new RecordingLogger();
      const call = wrap(async (req) => {
        const session = await getSession(req);
        const cart = { list: [] as unknown[] };
        session.set("cart", cart);
        change(cart);
        return new Response("ok");
      }, { store, logger });
      const response = await call(cookie);
      assert.equal(response.status, 500);
      assert.equal(response.headers.get("set-cookie"), null);
      assert.equal(logger.errors.length, 1);
      assert.match(logger.errors[0]!.message, /^Cannot save the session as JSON cannot represent/);
      assert.match(logger.errors[0]!.message, message);
      assert.deepEqual(JSON.parse((await store.load(key))!.data), { user: "ada" });
    });
  }

  it("saves a value changed in place through get() when it still fits JSON and the session is marked", async () => {
    const { store, key, cookie } = await loggedIn();
    const call = wrap(async (req) => {
      const session = await getSession(req);
      session.set("cart", [1]);
      (session.get("cart") as number[]).push(2);
      return new Response("ok");
    }, { store });
    assert.equal((await call(cookie)).status, 200);
    assert.deepEqual(JSON.parse((await store.load(key))!.data), { user: "ada", cart: [1, 2] });
  });

  it("saves -0 as 0", async () => {
    const store = new MemoryStore();
    const browser = start(async (req) => {
      const session = await getSession(req);
      if (new URL(req.url).pathname === "/set") session.set("n", -0);
      const n = session.get("n") as number;
      return new Response(Object.is(n, -0) ? "-0" : String(n));
    }, { store });
    assert.equal((await browser.text("/set")).body, "-0", "as set, within the request");
    assert.equal((await browser.text("/read")).body, "0", "as saved, on the next one");
  });

  it("refuses an array with properties besides its items at set(), and takes its copy", async () => {
    const store = new MemoryStore();
    const call = wrap(async (req) => {
      const session = await getSession(req);
      const match = /b/.exec("abc")!; // an array with index, input and groups
      assert.throws(() => session.set("match", match), {
        name: "TypeError",
        message: /'match'.*match is an array with a property 'index' that JSON leaves out/,
      });
      session.set("match", [...match]);
      return new Response("ok");
    }, { store });
    const response = await call();
    const key = /^sessionid=([a-z0-9]{32});/.exec(response.headers.get("set-cookie")!)![1]!;
    assert.deepEqual(JSON.parse((await store.load(key))!.data), { match: ["b"] });
  });
});
