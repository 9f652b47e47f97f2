import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { generateKey } from "../../src/_key.ts";
import { getSession, RedisStore, SessionInterruptedError, withSessions } from "../../mod.ts";
import { RecordingLogger } from "../_config.ts";
import { REDIS_CLIENTS, type RedisClientHandle, startRedis } from "../_redis.ts";
import { storeContract } from "./_contract.ts";

const redis = await startRedis();
const handles: RedisClientHandle[] = [];
for (const kind of REDIS_CLIENTS) handles.push(await kind.connect(redis.url));
// A client of our own to look at what the store wrote.
const raw = handles[0]!;
after(async () => {
  for (const handle of handles) await handle.close();
  await redis.stop();
});

function command(...args: string[]): Promise<unknown> {
  return (raw.client as { sendCommand(args: string[]): Promise<unknown> }).sendCommand(args);
}

// Each test gets a prefix of its own, so that tests never see each other's keys.
function freshPrefix(): string {
  return `test:${generateKey().slice(0, 8)}:`;
}

for (const [index, kind] of REDIS_CLIENTS.entries()) {
  const client = handles[index]!.client;
  storeContract(
    `RedisStore (${kind.name})`,
    () => ({ store: new RedisStore({ client, prefix: freshPrefix() }) }),
  );

  describe(`RedisStore (${kind.name})`, () => {
    it("writes prefix + key with a TTL that ends at the session's expiry", async () => {
      const prefix = freshPrefix();
      const store = new RedisStore({ client, prefix });
      const expiresAt = Date.now() + 60_000;
      const key = await store.create({ data: '{"a":1}', expiresAt });
      assert.equal(await command("GET", prefix + key), `${expiresAt}\n{"a":1}`);
      const ttl = Number(await command("PTTL", prefix + key));
      assert.ok(ttl > 55_000 && ttl <= 60_000, String(ttl));
      await store.save(key, { data: '{"a":2}', expiresAt: expiresAt + 60_000 });
      const later = Number(await command("PTTL", prefix + key));
      assert.ok(later > 115_000 && later <= 120_000, String(later));
    });

    it("an update to an expiry in the past deletes the session", async () => {
      const prefix = freshPrefix();
      const store = new RedisStore({ client, prefix });
      const key = await store.create({ data: "{}", expiresAt: Date.now() + 60_000 });
      await store.save(key, { data: "{}", expiresAt: Date.now() - 1000 });
      assert.equal(await command("EXISTS", prefix + key), 0);
      await assert.rejects(
        store.save(key, { data: "{}", expiresAt: Date.now() - 1000 }),
        SessionInterruptedError,
      );
    });

    it("sends nothing to Redis for a value that is not a session key", async () => {
      const prefix = freshPrefix();
      const sent: string[][] = [];
      const spy = {
        sendCommand: (args: string[]) => {
          sent.push(args);
          return command(...args);
        },
      };
      const store = new RedisStore({ client: spy, prefix });
      for (const key of ["", "*", "../x", "x".repeat(1240), "ABCDEFGHIJKL", "a b c d e f"]) {
        assert.equal(await store.load(key), null);
        assert.equal(await store.exists(key), false);
        await store.delete(key);
      }
      assert.deepEqual(sent, []);
      await assert.rejects(
        store.save("*", { data: "{}", expiresAt: Date.now() + 1000 }, true),
        TypeError,
      );
      assert.deepEqual(sent, []);
    });

    it("keeps sessions apart from other data under the default prefix (CVE-2011-4136)", async () => {
      const store = new RedisStore({ client });
      assert.equal(store.prefix, "django.contrib.sessions.cache");
      const key = await store.create({ data: '{"mine":1}', expiresAt: Date.now() + 60_000 });
      await command("SET", key, `${Date.now() + 60_000}\n{"planted":1}`);
      assert.equal((await store.load(key))?.data, '{"mine":1}');
      assert.equal(await command("EXISTS", `django.contrib.sessions.cache${key}`), 1);
      await store.delete(key);
      assert.equal(await command("EXISTS", key), 1, "data outside the prefix is left alone");
      await command("DEL", key);
    });

    it("reads a value it did not write as no session, logged without the key", async () => {
      const prefix = freshPrefix();
      const store = new RedisStore({ client, prefix });
      const logger = new RecordingLogger();
      store.configure({ cookieName: "sessionid", cookieAge: 60, secrets: [], logger });
      const key = generateKey();
      for (const value of ["", "no newline", "NaN\n{}"]) {
        await command("SET", prefix + key, value);
        assert.equal(await store.load(key), null);
      }
      assert.equal(logger.warnings.length, 3);
      assert.ok(logger.warnings.every((message) => !message.includes(key)));
    });

    it("serves sessions through withSessions", async () => {
      const store = new RedisStore({ client, prefix: freshPrefix() });
      const handler = withSessions(async (req) => {
        const session = await getSession<{ n: number }>(req);
        session.set("n", (session.get("n") ?? 0) + 1);
        return new Response(String(session.get("n")));
      }, { store });
      const first = await handler(new Request("http://localhost/"));
      const cookie = first.headers.get("set-cookie")!.split(";")[0]!;
      const second = await handler(new Request("http://localhost/", { headers: { cookie } }));
      assert.equal(await second.text(), "2");
    });
  });
}

describe("RedisStore", () => {
  it("rejects a client without call(), send() or sendCommand(), and a prefix that is not a string", () => {
    for (const client of [undefined, null, {}, { get: () => null }, "redis://127.0.0.1"]) {
      assert.throws(() => new RedisStore({ client: client as never }), {
        name: "TypeError",
        message: /'client' must be a Redis client with a call\(\), send\(\) or sendCommand\(\)/,
      });
    }
    assert.throws(() => new RedisStore({ client: raw.client, prefix: 5 as never }), {
      name: "TypeError",
      message: /'prefix'/,
    });
  });

  it("lets Redis expire a session when its TTL ends", async () => {
    const prefix = freshPrefix();
    const store = new RedisStore({ client: raw.client, prefix });
    const key = await store.create({ data: "{}", expiresAt: Date.now() + 500 });
    assert.equal(await store.exists(key), true);
    await new Promise((resolve) => setTimeout(resolve, 600));
    assert.equal(await store.exists(key), false);
    assert.equal(await command("EXISTS", prefix + key), 0);
  });

  it("says that Redis expires sessions itself", async () => {
    const store = new RedisStore({ client: raw.client });
    assert.equal(store.expiresOnItsOwn, true);
    assert.equal(await store.clearExpired(), 0);
  });

  it("picks ioredis's call() over its sendCommand(), which takes a command object", async () => {
    const seen: string[] = [];
    const client = {
      call: (command: string, ...args: string[]) => {
        seen.push(`call ${command} ${args.length}`);
        return Promise.resolve(null);
      },
      sendCommand: () => Promise.reject(new Error("not this one")),
    };
    assert.equal(await new RedisStore({ client }).load(generateKey()), null);
    assert.deepEqual(seen, ["call GET 1"]);
  });

  it("turns a client error into one that names neither the key nor the command", async () => {
    const key = generateKey();
    const failure = Object.assign(new Error(`boom on django.contrib.sessions.cache${key}`), {
      command: { name: "get", args: [`django.contrib.sessions.cache${key}`] },
    });
    const store = new RedisStore({ client: { sendCommand: () => Promise.reject(failure) } });
    await assert.rejects(store.load(key), (error: Error) => {
      assert.match(error.message, /^Cannot read a session in Redis: boom/);
      assert.ok(!error.message.includes(key));
      assert.equal((error as { command?: unknown }).command, undefined);
      assert.equal(error.cause, undefined);
      return true;
    });
  });
});
