// CachedStore in front of a store in Django's format: the bound on how long
// a cached copy outlives a change or a delete made in the durable store by
// something else (a Django app), and the cache's copies signed here since
// withSessions signs nothing for such a store.

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import {
  CachedStore,
  getSession,
  MemoryStore,
  SqliteStore,
  type StoredSession,
  withSessions,
} from "../../mod.ts";
import { decodeDjangoSession } from "../../src/stores/_django_format.ts";
import { RecordingLogger } from "../_config.ts";

const SECRET = "cached-django-secret-0123456789abcdefghijklmnopqrstuv";
const COOKIE = "sessionid";
const dir = mkdtempSync(join(tmpdir(), "tessera-cached-django-"));
const stores: SqliteStore[] = [];
after(() => {
  for (const store of stores) store.close();
  rmSync(dir, { recursive: true, force: true });
});

let files = 0;
function durable(format?: "django"): SqliteStore {
  const path = join(dir, `sessions-${++files}.sqlite3`);
  const store = format === undefined
    ? new SqliteStore({ path })
    : new SqliteStore({ path, format });
  stores.push(store);
  return store;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A Tessera app: /set?k=v, /get; answers the session's data. */
function app(
  store: CachedStore,
  logger = new RecordingLogger(),
): (req: Request) => Promise<Response> {
  return withSessions(async (req) => {
    const url = new URL(req.url);
    const session = await getSession(req);
    if (url.pathname === "/set") {
      for (const [name, value] of url.searchParams) session.set(name, value);
    }
    return Response.json(Object.fromEntries(session.items()));
  }, { store, secret: SECRET, cookieName: COOKIE, logger });
}

async function call(
  handler: (req: Request) => Promise<Response>,
  path: string,
  key?: string,
): Promise<{ key: string | undefined; data: Record<string, unknown> }> {
  const headers: Record<string, string> = key === undefined ? {} : { cookie: `${COOKIE}=${key}` };
  const response = await handler(new Request(`http://x${path}`, { headers }));
  assert.equal(response.status, 200);
  const cookie = /sessionid=([a-z0-9]+)/.exec(response.headers.getSetCookie().join());
  return { key: cookie?.[1] ?? key, data: await response.json() as Record<string, unknown> };
}

describe("CachedStore in front of a store in Django's format", () => {
  it("bounds a cached copy to 10 seconds by default, and to cacheTtl when given; other stores keep no bound", () => {
    assert.equal(new CachedStore(new MemoryStore(), durable("django")).cacheTtl, 10);
    assert.equal(
      new CachedStore(new MemoryStore(), durable("django"), { cacheTtl: 2.5 }).cacheTtl,
      2.5,
    );
    assert.equal(new CachedStore(new MemoryStore(), durable()).cacheTtl, undefined);
    assert.equal(new CachedStore(new MemoryStore(), durable(), { cacheTtl: 60 }).cacheTtl, 60);
    for (const bad of [0, -1, Number.NaN, Infinity, "10"]) {
      assert.throws(
        () => new CachedStore(new MemoryStore(), durable(), { cacheTtl: bad as number }),
        (error: Error) =>
          error instanceof RangeError &&
          error.message.startsWith(
            "Cannot create a CachedStore as 'cacheTtl' must be a positive number of seconds: current value is ",
          ),
        String(bad),
      );
    }
  });

  it("withSessions(...) without a secret fails at once, naming the durable store", () => {
    const store = new CachedStore(new MemoryStore(), durable("django"));
    assert.throws(
      () => withSessions(() => new Response("ok"), { store }),
      /^TypeError: Cannot create sessions as SqliteStore with format "django" needs 'secret'/,
    );
  });

  it("keeps Django's session_data in the durable store and a copy signed here in the cache", async () => {
    const cache = new MemoryStore();
    const rows = durable("django");
    const store = new CachedStore(cache, rows);
    const handler = app(store);
    assert.equal(store.authenticatesRecords, true);
    const { key } = await call(handler, "/set?_auth_user_id=4&color=red");
    const copy = (await cache.load(key!))!;
    assert.match(copy.data, /^s1:[A-Za-z0-9_-]{43}:\{/);
    // The durable store, read on its own, gives the data Django signed.
    assert.deepEqual(JSON.parse((await rows.load(key!))!.data), {
      _auth_user_id: "4",
      color: "red",
    });
  });

  it("a copy planted in the cache without Tessera's signature is not a session", async () => {
    const cache = new MemoryStore();
    const rows = durable("django");
    const logger = new RecordingLogger();
    const handler = app(new CachedStore(cache, rows), logger);
    const { key } = await call(handler, "/set?_auth_user_id=5");
    await cache.save(key!, { data: '{"_auth_user_id":"1"}', expiresAt: Date.now() + 60_000 });
    const planted = "plantedkey000000000000000000001";
    await cache.save(
      planted,
      { data: '{"_auth_user_id":"1"}', expiresAt: Date.now() + 60_000 },
      true,
    );
    // The planted copy is refused and the durable row answers.
    assert.deepEqual((await call(handler, "/get", key)).data, { _auth_user_id: "5" });
    assert.deepEqual((await call(handler, "/get", planted)).data, {});
    assert.match(logger.warnings.join("\n"), /without a signature was ignored/);
  });

  it("a row deleted or changed behind the cache (a logout or a change in Django) reaches Tessera within cacheTtl", async () => {
    const cache = new MemoryStore();
    const rows = durable("django");
    const handler = app(new CachedStore(cache, rows, { cacheTtl: 0.3 }));
    const deleted = (await call(handler, "/set?_auth_user_id=6")).key!;
    const changed = (await call(handler, "/set?_auth_user_id=7")).key!;
    const saved = Date.now();
    // What Django does: its logout deletes the row; its save rewrites it.
    await rows.delete(deleted);
    const record: StoredSession = {
      data: JSON.stringify({ _auth_user_id: "7", color: "from-django" }),
      expiresAt: Date.now() + 60_000,
    };
    await rows.save(changed, record);
    const early = [await call(handler, "/get", deleted), await call(handler, "/get", changed)];
    if (Date.now() - saved < 250) {
      // Still the cached copies: the bound, not an instant logout.
      assert.deepEqual(early[0]!.data, { _auth_user_id: "6" });
      assert.deepEqual(early[1]!.data, { _auth_user_id: "7" });
    }
    await sleep(Math.max(0, saved + 350 - Date.now()));
    assert.deepEqual((await call(handler, "/get", deleted)).data, {});
    assert.deepEqual((await call(handler, "/get", changed)).data, {
      _auth_user_id: "7",
      color: "from-django",
    });
  });

  it("a session saved again keeps its full expiry in the durable store; only the copy is short", async () => {
    const cache = new MemoryStore();
    const rows = durable("django");
    const store = new CachedStore(cache, rows, { cacheTtl: 5 });
    app(store);
    const expiresAt = Date.now() + 3_600_000;
    const key = await store.create({ data: '{"a":1}', expiresAt });
    const copy = (await cache.load(key))!;
    assert.ok(copy.expiresAt <= Date.now() + 5_000, String(copy.expiresAt - Date.now()));
    assert.equal((await rows.load(key))!.expiresAt, expiresAt);
    // A fill after the copy is gone is bounded too.
    await cache.delete(key);
    assert.equal((await store.load(key))!.expiresAt, expiresAt);
    assert.ok((await cache.load(key))!.expiresAt <= Date.now() + 5_000);
  });

  it("2000 concurrent saves and deletes of 1000 sessions: no deleted session comes back through the cache", async () => {
    const cache = new MemoryStore();
    const rows = durable("django");
    const store = new CachedStore(cache, rows, { cacheTtl: 30 });
    app(store);
    const keys = await Promise.all(
      Array.from(
        { length: 1000 },
        () => store.create({ data: '{"v":0}', expiresAt: Date.now() + 60_000 }),
      ),
    );
    let interrupted = 0;
    await Promise.all(keys.flatMap((key, i) => [
      store.save(key, { data: '{"v":1}', expiresAt: Date.now() + 60_000 }).catch((error) => {
        if ((error as Error).name !== "SessionInterruptedError") throw error;
        interrupted++;
      }),
      // A third of the deletes at once, the others a few milliseconds later.
      i % 3 === 0 ? store.delete(key) : sleep(i % 5).then(() => store.delete(key)),
    ]));
    let resurrected = 0;
    for (const key of keys) {
      if (await store.load(key) !== null || await cache.load(key) !== null) resurrected++;
    }
    console.log(
      `1000 pairs through the cache, ${interrupted} updates interrupted, ${resurrected} resurrections`,
    );
    assert.equal(resurrected, 0);
  });

  it("the durable row written through the cache is Django's session_data", async () => {
    const rows = durable("django");
    const handler = app(new CachedStore(new MemoryStore(), rows));
    const { key } = await call(handler, "/set?_auth_user_id=9");
    const db = new DatabaseSync(rows.path);
    try {
      const row = db.prepare("SELECT session_data FROM django_session WHERE session_key = ?")
        .get(key!) as { session_data: string };
      assert.doesNotMatch(row.session_data, /^s1:/);
      // The format module's decoder, checked against Django's own in
      // tests/stores/django_format_test.ts (and live in django_live_test.ts).
      const decoded = await decodeDjangoSession(row.session_data, {
        secrets: [SECRET],
        logger: new RecordingLogger(),
      });
      assert.deepEqual(JSON.parse(decoded!.json), { _auth_user_id: "9" });
    } finally {
      db.close();
    }
  });
});
