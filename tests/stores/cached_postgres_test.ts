// Django's cached_db for many machines: CachedStore(RedisStore, PostgresStore)
// on a real Redis and a real PostgreSQL, through the shared contract and the
// points where the two stores meet.

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  CachedStore,
  getSession,
  PostgresStore,
  RedisStore,
  SessionInterruptedError,
  type StoredSession,
  withSessions,
} from "../../mod.ts";
import { generateKey } from "../../src/_key.ts";
import { RecordingLogger } from "../_config.ts";
import { freshTable, POSTGRES_CLIENTS, startPostgres } from "../_postgres.ts";
import { REDIS_CLIENTS, startRedis } from "../_redis.ts";
import { storeContract } from "./_contract.ts";

const redis = await startRedis();
const postgres = await startPostgres();
const redisClient = await REDIS_CLIENTS[0]!.connect(redis.url);
const postgresClient = await POSTGRES_CLIENTS[0]!.connect(postgres.url);
after(async () => {
  await redisClient.close();
  await postgresClient.close();
  await redis.stop();
  await postgres.destroy();
});

const HOUR = 3_600_000;

function redisCache(): RedisStore {
  return new RedisStore({
    client: redisClient.client,
    prefix: `django.contrib.sessions.cached_db:${generateKey().slice(0, 8)}:`,
  });
}

function database(): PostgresStore {
  return new PostgresStore({ client: postgresClient.client, table: freshTable() });
}

function record(data = "{}"): StoredSession {
  return { data, expiresAt: Date.now() + HOUR };
}

storeContract("CachedStore (Redis over Postgres)", () => ({
  store: new CachedStore(redisCache(), database()),
}));

describe("CachedStore (Redis over Postgres)", () => {
  it("writes PostgreSQL first and Redis after, and reads Redis first", async () => {
    const cache = redisCache();
    const durable = database();
    const store = new CachedStore(cache, durable);
    const key = await store.create(record('{"v":1}'));
    await store.save(key, record('{"v":2}'));
    assert.equal((await durable.load(key))?.data, '{"v":2}');
    assert.equal((await cache.load(key))?.data, '{"v":2}');
    // Redis's copy answers while it lasts.
    await durable.save(key, record('{"v":"behind the cache"}'));
    assert.equal((await store.load(key))?.data, '{"v":2}');
  });

  it("a row deleted in PostgreSQL refuses the next update and drops Redis's copy", async () => {
    const cache = redisCache();
    const durable = database();
    const store = new CachedStore(cache, durable);
    const key = await store.create(record());
    await durable.delete(key);
    await assert.rejects(store.save(key, record('{"v":3}')), SessionInterruptedError);
    assert.equal(await cache.exists(key), false);
    assert.equal(await store.load(key), null);
    assert.equal(await durable.exists(key), false);
  });

  it("reads PostgreSQL on a miss and fills Redis", async () => {
    const cache = redisCache();
    const durable = database();
    const store = new CachedStore(cache, durable);
    const key = await durable.create(record('{"from":"postgres"}'));
    assert.equal(await cache.exists(key), false);
    assert.equal((await store.load(key))?.data, '{"from":"postgres"}');
    assert.equal((await cache.load(key))?.data, '{"from":"postgres"}');
  });

  it("sweeps PostgreSQL, not Redis", async () => {
    const durable = database();
    const store = new CachedStore(redisCache(), durable);
    await store.create({ data: "{}", expiresAt: Date.now() - 1 });
    const live = await store.create(record('{"live":1}'));
    assert.equal(store.expiresOnItsOwn, false);
    assert.equal(await store.clearExpired(), 1);
    assert.equal((await store.load(live))?.data, '{"live":1}');
  });

  it("serves every request with Redis down, from PostgreSQL, and logs each cache failure", async () => {
    const downRedis = await startRedis();
    const handle = await REDIS_CLIENTS[0]!.connect(downRedis.url);
    const logger = new RecordingLogger();
    const cache = new RedisStore({ client: handle.client });
    const durable = database();
    const handler = withSessions(async (req) => {
      const session = await getSession<{ n: number }>(req);
      session.set("n", (session.get("n") ?? 0) + 1);
      return new Response(String(session.get("n")));
    }, { store: new CachedStore(cache, durable), logger });
    try {
      const first = await handler(new Request("http://localhost/"));
      const cookie = first.headers.get("set-cookie")!.split(";")[0]!;
      await downRedis.stop();
      for (let n = 2; n <= 5; n++) {
        const response = await handler(new Request("http://localhost/", { headers: { cookie } }));
        assert.equal(response.status, 200);
        assert.equal(await response.text(), String(n));
      }
      assert.equal((await durable.load(cookie.split("=")[1]!))?.data, '{"n":5}');
      assert.ok(
        logger.errors.some((entry) => entry.message === "Error saving to cache (RedisStore)"),
      );
    } finally {
      await handle.close();
      await downRedis.stop();
    }
  });
});
