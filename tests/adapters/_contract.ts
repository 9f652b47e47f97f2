// The behaviour every framework adapter must show through a real server:
// each adapter's test file builds an app with the routes below on its
// framework, and this suite drives it over loopback with a cookie jar.
//
// Routes, all GET:
//   /count        visits + 1, answers the new count
//   /read         answers visits (0 when absent), changes nothing
//   /login        cycleKey(), user = "ada", answers "in"
//   /whoami       answers user, or "anonymous"
//   /logout       flush(), answers "out"
//   /fail         visits = 99, answers 500 the framework's normal way
//   /plain        never touches the session, answers "plain"
//   /denied       visits = 5, throws the framework's own 401 error
//   /crash        visits = 7, throws the framework's own 503 error
//   /interrupted  visits + 1, then the session is deleted behind its back

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  MemoryStore,
  type SessionOptions,
  type SessionStore,
  type StoredSession,
} from "../../mod.ts";
import { Browser } from "../_browser.ts";
import type { TestServer } from "../_server.ts";

/** The data every contract app keeps in its session. */
export interface ContractData {
  visits: number;
  user: string;
}

/** A real MemoryStore that counts the calls made to it. */
export class CountingStore implements SessionStore {
  readonly inner: MemoryStore = new MemoryStore();
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

/** Starts the adapter's contract app on `store` with `options`; the suite closes it. */
export type StartApp = (store: CountingStore, options: SessionOptions) => Promise<TestServer>;

const KEY_COOKIE = /^sessionid=([a-z0-9]{32}); /;
const DELETION =
  /^sessionid=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=\/; HttpOnly; SameSite=Lax$/;

/** Runs the adapter contract against the app `start` serves. */
export function adapterContract(name: string, start: StartApp): void {
  async function open(options: SessionOptions = {}): Promise<
    { browser: Browser; store: CountingStore; close(): Promise<void> }
  > {
    const store = new CountingStore();
    const server = await start(store, options);
    return { browser: new Browser(server.url), store, close: () => server.close() };
  }

  describe(`${name}: the session contract over a real server`, () => {
    it("creates a session and its cookie on the first change", async () => {
      const { browser, store, close } = await open();
      try {
        const { response, body } = await browser.text("/count");
        assert.equal(response.status, 200);
        assert.equal(body, "1");
        const setCookie = response.headers.get("set-cookie")!;
        assert.match(setCookie, KEY_COOKIE);
        assert.match(setCookie, /; Max-Age=1209600; Path=\/; HttpOnly; SameSite=Lax$/);
        assert.equal(response.headers.get("vary"), "Cookie");
        assert.equal(store.inner.size, 1);
        assert.equal((await browser.text("/count")).body, "2");
      } finally {
        await close();
      }
    });

    it("reads a session without changing it: no Set-Cookie, Vary: Cookie", async () => {
      const { browser, close } = await open();
      try {
        await browser.text("/count");
        const { response, body } = await browser.text("/read");
        assert.equal(body, "1");
        assert.equal(response.headers.get("set-cookie"), null);
        assert.equal(response.headers.get("vary"), "Cookie");
      } finally {
        await close();
      }
    });

    it("deletes the cookie and the stored session on flush()", async () => {
      const { browser, store, close } = await open();
      try {
        await browser.text("/count");
        assert.equal(store.inner.size, 1);
        const { response, body } = await browser.text("/logout");
        assert.equal(body, "out");
        assert.match(response.headers.get("set-cookie")!, DELETION);
        assert.equal(response.headers.get("vary"), "Cookie");
        assert.equal(store.inner.size, 0);
        assert.equal(browser.cookies.size, 0);
      } finally {
        await close();
      }
    });

    it("saves nothing on a 500", async () => {
      const { browser, store, close } = await open();
      try {
        const fresh = await browser.text("/fail");
        assert.equal(fresh.response.status, 500);
        assert.equal(fresh.response.headers.get("set-cookie"), null);
        assert.equal(store.inner.size, 0);
        await browser.text("/count");
        const known = await browser.text("/fail");
        assert.equal(known.response.status, 500);
        assert.equal(known.response.headers.get("set-cookie"), null);
        assert.equal((await browser.text("/read")).body, "1", "99 was not saved");
      } finally {
        await close();
      }
    });

    it("moves the session to a new key on cycleKey() at login, and drops the old key", async () => {
      const { browser, close } = await open();
      try {
        const first = await browser.text("/count");
        const before = KEY_COOKIE.exec(first.response.headers.get("set-cookie")!)![1]!;
        const login = await browser.text("/login");
        const after = KEY_COOKIE.exec(login.response.headers.get("set-cookie")!)![1]!;
        assert.notEqual(after, before);
        assert.equal((await browser.text("/whoami")).body, "ada");
        assert.equal((await browser.text("/read")).body, "1", "the data moved with the key");
        const stale = await browser.text("/read", { headers: { cookie: `sessionid=${before}` } });
        assert.equal(stale.body, "0");
        assert.match(stale.response.headers.get("set-cookie")!, DELETION);
      } finally {
        await close();
      }
    });

    it("makes no store call and adds no header for a handler that never touches the session", async () => {
      const { browser, store, close } = await open();
      try {
        await browser.text("/count");
        const calls = store.calls;
        for (let i = 0; i < 5; i++) {
          const { response, body } = await browser.text("/plain");
          assert.equal(body, "plain");
          assert.equal(response.headers.get("set-cookie"), null);
          assert.equal(response.headers.get("vary"), null);
        }
        assert.equal(store.calls, calls);
        console.log(
          `${name}: 5 untouched requests with a cookie, ${store.calls - calls} store calls`,
        );
      } finally {
        await close();
      }
    });

    it("follows the status of the framework's own 4xx error: saved, cookie set", async () => {
      const { browser, close } = await open();
      try {
        const { response } = await browser.text("/denied");
        assert.equal(response.status, 401);
        assert.match(response.headers.get("set-cookie")!, KEY_COOKIE);
        assert.match(response.headers.get("vary")!, /\bCookie\b/);
        assert.equal((await browser.text("/read")).body, "5");
      } finally {
        await close();
      }
    });

    it("follows the status of the framework's own 5xx error: nothing saved", async () => {
      const { browser, store, close } = await open();
      try {
        const { response } = await browser.text("/crash");
        assert.equal(response.status, 503);
        assert.equal(response.headers.get("set-cookie"), null);
        assert.equal(store.inner.size, 0);
      } finally {
        await close();
      }
    });

    it("re-saves a known session on every request with saveEveryRequest, even when untouched", async () => {
      const { browser, store, close } = await open({ saveEveryRequest: true });
      try {
        await browser.text("/count");
        const key = browser.cookies.get("sessionid");
        const calls = store.calls;
        const { response, body } = await browser.text("/plain");
        assert.equal(body, "plain");
        assert.match(response.headers.get("set-cookie")!, new RegExp(`^sessionid=${key}; `));
        assert.equal(response.headers.get("vary"), "Cookie");
        assert.ok(store.calls > calls, "loaded and saved");
        const anonymous = await fetch(`${browser.base}/plain`);
        assert.equal(await anonymous.text(), "plain");
        assert.equal(anonymous.headers.get("set-cookie"), null, "no cookie, nothing written");
        assert.equal(store.inner.size, 1);
      } finally {
        await close();
      }
    });

    it("answers hostile Cookie headers with an empty session, never a 5xx", async () => {
      const { browser, store, close } = await open();
      try {
        const hostile = [
          "sessionid=../../../etc/passwd",
          "sessionid=a; sessionid=b; sessionid=c",
          `sessionid=${"x".repeat(8000)}`,
          "sessionid=%00%2F..",
          "sessionid=\u00e9t\u00e9",
          "sessionid",
          "=; ; ;=;",
          `${"a=b; ".repeat(2000)}sessionid=zzz`,
        ];
        let answered = 0;
        for (const cookie of hostile) {
          const { response, body } = await browser.text("/read", { headers: { cookie } });
          assert.equal(response.status, 200, cookie.slice(0, 40));
          assert.equal(body, "0");
          answered++;
        }
        assert.equal(store.inner.size, 0);
        console.log(`${name}: ${answered} hostile Cookie headers, 0 5xx, 0 sessions adopted`);
      } finally {
        await close();
      }
    });

    it("keeps concurrent clients apart: 100 new sessions at once, 100 keys", async () => {
      const { store, close, browser } = await open();
      try {
        const clients = Array.from({ length: 100 }, () => new Browser(browser.base));
        const answers = await Promise.all(clients.map((client) => client.text("/count")));
        assert.ok(answers.every(({ body }) => body === "1"));
        const keys = new Set(clients.map((client) => client.cookies.get("sessionid")));
        assert.equal(keys.size, 100);
        assert.equal(store.inner.size, 100);
        const again = await Promise.all(clients.map((client) => client.text("/count")));
        assert.ok(again.every(({ body }) => body === "2"));
        console.log(`${name}: 100 concurrent clients, ${keys.size} distinct keys, 0 crossed`);
      } finally {
        await close();
      }
    });

    it("answers 400 when the session was deleted before the request completed", async () => {
      const { browser, store, close } = await open();
      try {
        await browser.text("/count");
        const { response, body } = await browser.text("/interrupted");
        assert.equal(response.status, 400);
        assert.match(body, /^The request's session was deleted before the request completed/);
        assert.equal(response.headers.get("set-cookie"), null);
        assert.equal(store.inner.size, 0, "the deleted session is not brought back");
      } finally {
        await close();
      }
    });
  });
}
