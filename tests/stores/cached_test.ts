import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  CachedStore,
  getSession,
  MemoryStore,
  RedisStore,
  SessionInterruptedError,
  type SessionStore,
  SqliteStore,
  type StoredSession,
  withSessions,
} from "../../mod.ts";
import { generateKey } from "../../src/_key.ts";
import { RecordingLogger } from "../_config.ts";
import { REDIS_CLIENTS, startRedis } from "../_redis.ts";
import { storeContract } from "./_contract.ts";

const redis = await startRedis();
const redisClient = await REDIS_CLIENTS[0]!.connect(redis.url);
const sqliteStores: SqliteStore[] = [];
after(async () => {
  for (const store of sqliteStores) store.close();
  await redisClient.close();
  await redis.stop();
});

function sqlite(): SqliteStore {
  const store = new SqliteStore({ path: ":memory:" });
  sqliteStores.push(store);
  return store;
}

function redisCache(): RedisStore {
  return new RedisStore({
    client: redisClient.client,
    prefix: `django.contrib.sessions.cached_db:${generateKey().slice(0, 8)}:`,
  });
}

storeContract("CachedStore (Memory over Sqlite)", () => ({
  store: new CachedStore(new MemoryStore(), sqlite()),
}));
storeContract("CachedStore (Redis over Sqlite)", () => ({
  store: new CachedStore(redisCache(), sqlite()),
}));

const HOUR = 3_600_000;

// A real store that counts the calls it gets, to tell which store answered.
class CountingStore implements SessionStore {
  readonly calls: string[] = [];
  constructor(readonly inner: SessionStore) {}
  load(key: string): Promise<StoredSession | null> {
    this.calls.push("load");
    return this.inner.load(key);
  }
  exists(key: string): Promise<boolean> {
    this.calls.push("exists");
    return this.inner.exists(key);
  }
  create(record: StoredSession): Promise<string> {
    this.calls.push("create");
    return this.inner.create(record);
  }
  save(key: string, record: StoredSession, mustCreate?: boolean): Promise<string> {
    this.calls.push(mustCreate ? "save(create)" : "save");
    return this.inner.save(key, record, mustCreate);
  }
  delete(key: string): Promise<void> {
    this.calls.push("delete");
    return this.inner.delete(key);
  }
  clearExpired(): Promise<number> {
    this.calls.push("clearExpired");
    return this.inner.clearExpired();
  }
}

// A cache that is down: every call fails, as a client with Redis gone does.
class BrokenStore implements SessionStore {
  load(): Promise<StoredSession | null> {
    return Promise.reject(new Error("cache down"));
  }
  exists(): Promise<boolean> {
    return Promise.reject(new Error("cache down"));
  }
  create(): Promise<string> {
    return Promise.reject(new Error("cache down"));
  }
  save(): Promise<string> {
    return Promise.reject(new Error("cache down"));
  }
  delete(): Promise<void> {
    return Promise.reject(new Error("cache down"));
  }
  clearExpired(): Promise<number> {
    return Promise.reject(new Error("cache down"));
  }
}

function record(data = "{}"): StoredSession {
  return { data, expiresAt: Date.now() + HOUR };
}

function configured(store: CachedStore): RecordingLogger {
  const logger = new RecordingLogger();
  store.configure({ cookieName: "sessionid", cookieAge: 60, secrets: [], logger });
  return logger;
}

describe("CachedStore", () => {
  it("answers exists() from the cache without asking the durable store (test_exists_searches_cache_first)", async () => {
    const durable = new CountingStore(sqlite());
    const store = new CachedStore(new MemoryStore(), durable);
    const key = await store.create(record());
    durable.calls.length = 0;
    assert.equal(await store.exists(key), true);
    assert.equal((await store.load(key))?.data, "{}");
    assert.deepEqual(durable.calls, []);
  });

  it("lets the durable store pick new keys; the cache's create() is never used", async () => {
    const cache = new CountingStore(new MemoryStore());
    const durable = new CountingStore(sqlite());
    const store = new CachedStore(cache, durable);
    const key = await store.create(record());
    assert.deepEqual(durable.calls, ["create"]);
    assert.ok(!cache.calls.includes("create"), cache.calls.join());
    assert.equal(await cache.inner.exists(key), true);
  });

  it("writes to the durable store first, so its errors decide", async () => {
    const cache = new MemoryStore();
    const durable = sqlite();
    const store = new CachedStore(cache, durable);
    const key = await store.create(record('{"v":1}'));
    await store.save(key, record('{"v":2}'));
    assert.equal((await durable.load(key))?.data, '{"v":2}');
    assert.equal((await cache.load(key))?.data, '{"v":2}');
    // Deleted from the durable store behind the cache's back: the update is
    // refused and the cached copy goes too.
    await durable.delete(key);
    await assert.rejects(store.save(key, record('{"v":3}')), SessionInterruptedError);
    assert.equal(await cache.exists(key), false);
    assert.equal(await store.load(key), null);
  });

  it("reads the durable store on a miss and fills the cache", async () => {
    const cache = new MemoryStore();
    const durable = sqlite();
    const store = new CachedStore(cache, durable);
    const key = await durable.create(record('{"from":"durable"}'));
    assert.equal(await cache.exists(key), false);
    assert.equal((await store.load(key))?.data, '{"from":"durable"}');
    assert.equal((await cache.load(key))?.data, '{"from":"durable"}');
  });

  it("a fill does not overwrite what a save put in the cache meanwhile", async () => {
    const cache = new MemoryStore();
    const durable = sqlite();
    const key = await durable.create(record('{"old":1}'));
    await cache.save(key, record('{"new":1}'), true);
    const store = new CachedStore(cache, durable);
    await store.load(key);
    assert.equal((await cache.load(key))?.data, '{"new":1}');
  });

  it("gives null for an overlong or hostile key, without error (test_load_overlong_key)", async () => {
    const store = new CachedStore(redisCache(), sqlite());
    assert.equal(await store.load("a".repeat(1240)), null);
    assert.equal(await store.exists("../../etc/passwd"), false);
  });

  it("a failing cache on save is logged as Django's 'Error saving to cache' and the save succeeds (test_cache_set_failure_non_fatal)", async () => {
    const durable = sqlite();
    const store = new CachedStore(new BrokenStore(), durable);
    const logger = configured(store);
    const key = await store.create(record('{"x":1}'));
    await store.save(key, record('{"x":2}'));
    assert.equal((await durable.load(key))?.data, '{"x":2}');
    assert.equal(logger.errors.length, 2);
    for (const entry of logger.errors) {
      assert.equal(entry.message, "Error saving to cache (BrokenStore)");
      assert.match(String(entry.error), /cache down/);
    }
  });

  it("a failing cache on read falls back to the durable store, with a warning", async () => {
    const durable = sqlite();
    const store = new CachedStore(new BrokenStore(), durable);
    const logger = configured(store);
    const key = await durable.create(record('{"x":1}'));
    assert.equal((await store.load(key))?.data, '{"x":1}');
    assert.equal(await store.exists(key), true);
    assert.match(logger.warnings[0]!, /^Error reading from cache \(BrokenStore\)/);
    assert.ok(logger.warnings.every((message) => !message.includes(key)));
  });

  it("serves every request with the cache down (test 79 through the middleware)", async () => {
    const durable = sqlite();
    const logger = new RecordingLogger();
    const store = new CachedStore(new BrokenStore(), durable);
    const handler = withSessions(async (req) => {
      const session = await getSession<{ n: number }>(req);
      session.set("n", (session.get("n") ?? 0) + 1);
      return new Response(String(session.get("n")));
    }, { store, logger });
    const first = await handler(new Request("http://localhost/"));
    assert.equal(first.status, 200);
    const cookie = first.headers.get("set-cookie")!.split(";")[0]!;
    const second = await handler(new Request("http://localhost/", { headers: { cookie } }));
    assert.equal(second.status, 200);
    assert.equal(await second.text(), "2");
    assert.ok(
      logger.errors.some((entry) => entry.message === "Error saving to cache (BrokenStore)"),
    );
  });

  it("deletes from both stores, and fails the delete if the cache cannot forget the session", async () => {
    const cache = new MemoryStore();
    const durable = sqlite();
    const store = new CachedStore(cache, durable);
    const key = await store.create(record());
    await store.delete(key);
    assert.equal(await cache.exists(key), false);
    assert.equal(await durable.exists(key), false);
    const broken = new CachedStore(new BrokenStore(), durable);
    await assert.rejects(broken.delete(key), /cache down/);
  });

  it("sweeps the durable store, and follows its expiresOnItsOwn", async () => {
    const durable = new CountingStore(sqlite());
    const store = new CachedStore(new MemoryStore(), durable);
    await store.create({ data: "{}", expiresAt: Date.now() - 1 });
    assert.equal(await store.clearExpired(), 1);
    assert.deepEqual(durable.calls, ["create", "clearExpired"]);
    assert.equal(store.expiresOnItsOwn, false);
    assert.equal(new CachedStore(new MemoryStore(), redisCache()).expiresOnItsOwn, true);
  });

  it("passes withSessions' settings to both stores", () => {
    const seen: string[] = [];
    const spy = (name: string): SessionStore =>
      Object.assign(new MemoryStore(), {
        configure: (settings: { cookieName: string }) =>
          seen.push(`${name}:${settings.cookieName}`),
      });
    withSessions(() => new Response("ok"), {
      store: new CachedStore(spy("cache"), spy("durable")),
      cookieName: "sid",
    });
    assert.deepEqual(seen, ["cache:sid", "durable:sid"]);
  });

  it("rejects what is not a store, and one store given twice", () => {
    const memory = new MemoryStore();
    assert.throws(() => new CachedStore({} as never, memory), {
      name: "TypeError",
      message: /'cache' must be a session store/,
    });
    assert.throws(
      () => new CachedStore(memory, null as never),
      /'durable' must be a session store/,
    );
    assert.throws(() => new CachedStore(memory, memory), /the same store/);
  });
});
