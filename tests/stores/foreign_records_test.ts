// What SqliteStore and RedisStore did not write is no session: a cookie
// value outside the key alphabet never reaches the database, and a row or a
// value in another format loads as no session, with a warning that names no
// key, never as a 500.

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { getSession, RedisStore, type SessionStore, SqliteStore, withSessions } from "../../mod.ts";
import { generateKey } from "../../src/_key.ts";
import { RecordingLogger } from "../_config.ts";
import { REDIS_CLIENTS, type RedisClientHandle, startRedis } from "../_redis.ts";
import { serve } from "../_server.ts";

const redis = await startRedis();
const handles: RedisClientHandle[] = [];
for (const kind of REDIS_CLIENTS) handles.push(await kind.connect(redis.url));
const dir = mkdtempSync(join(tmpdir(), "tessera-foreign-"));
after(async () => {
  for (const handle of handles) await handle.close();
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
});
let files = 0;
function freshFile(): string {
  return join(dir, `sessions-${++files}.sqlite3`);
}

function command(...args: string[]): Promise<unknown> {
  return (handles[0]!.client as { sendCommand(args: string[]): Promise<unknown> }).sendCommand(
    args,
  );
}

const HOSTILE_KEYS = [
  "",
  "short",
  "../../etc/passwd",
  "abc' OR '1'='1' --xx",
  "ABCDEFGHIJKLMNOP",
  "a".repeat(41),
  "x".repeat(100_000),
  "abcdefgh\u0000ijklmnop",
  "abcdefgh12345678\n",
  "*",
];

// What a browser sees for a cookie whose record is not the store's own: a
// 200 with an empty session, the cookie deleted, and one warning without
// the key.
async function assertNoSessionThroughServer(store: SessionStore, key: string): Promise<void> {
  const logger = new RecordingLogger();
  const server = serve(withSessions(async (req) => {
    const session = await getSession(req);
    return new Response(JSON.stringify({ user: session.get("user") ?? null }));
  }, { store, logger }));
  try {
    const response = await fetch(`${server.url}/`, { headers: { cookie: `sessionid=${key}` } });
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { user: null });
    assert.match(
      response.headers.get("set-cookie") ?? "",
      /^sessionid=;.*; Max-Age=0;/,
    );
    assert.equal(logger.errors.length, 0, JSON.stringify(logger.errors));
    assert.equal(logger.warnings.length, 1, logger.warnings.join("\n"));
    assert.ok(!logger.warnings[0]!.includes(key), logger.warnings[0]);
  } finally {
    await server.close();
  }
}

describe("SqliteStore: what it did not write", () => {
  it("answers a value outside the key alphabet without querying the database", async () => {
    const store = new SqliteStore({ path: freshFile() });
    // A closed database fails every query: an answer proves none was made.
    store.close();
    await assert.rejects(store.load(generateKey()), /Cannot read a session in the SQLite database/);
    for (const key of HOSTILE_KEYS) {
      assert.equal(await store.load(key), null, JSON.stringify(key.slice(0, 20)));
      assert.equal(await store.exists(key), false);
      await store.delete(key);
      await assert.rejects(store.save(key, { data: "{}", expiresAt: Date.now() + 60_000 }), {
        name: "TypeError",
        message: "Cannot save a session as the key is not a session key",
      });
    }
  });

  for (
    const [name, data, expireDate] of [
      ["data that is not UTF-8", new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), "2999-01-01 00:00:00"],
      ["an expiry that is not a date", '{"user":"admin"}', "2999-01-01 later"],
      ["an expiry stored as a number", '{"user":"admin"}', 32503680000],
    ] as const
  ) {
    it(`loads a row with ${name} as no session, with a warning, never a 500`, async () => {
      const path = freshFile();
      const store = new SqliteStore({ path });
      const key = generateKey();
      const db = new DatabaseSync(path);
      db.prepare("INSERT INTO django_session VALUES (?, ?, ?)").run(key, data, expireDate);
      db.close();
      try {
        if (typeof expireDate === "number") {
          // SQLite sorts every number before every text: such a row never
          // counts as live, so it is no session and not worth a warning.
          const logger = new RecordingLogger();
          store.configure({ cookieName: "sessionid", cookieAge: 60, secrets: [], logger });
          assert.equal(await store.load(key), null);
          assert.deepEqual(logger.warnings, []);
        } else {
          await assertNoSessionThroughServer(store, key);
        }
      } finally {
        store.close();
      }
    });
  }
});

for (const [index, kind] of REDIS_CLIENTS.entries()) {
  describe(`RedisStore (${kind.name}): what it did not write`, () => {
    const client = handles[index]!.client;

    it("loads a value of another Redis type as no session, with a warning, never a 500", async () => {
      const prefix = `foreign:${generateKey().slice(0, 8)}:`;
      const store = new RedisStore({ client, prefix });
      for (const plant of [["HSET", "user", "admin"], ["RPUSH", "admin"], ["SADD", "admin"]]) {
        const key = generateKey();
        await command(plant[0]!, prefix + key, ...plant.slice(1));
        await assertNoSessionThroughServer(store, key);
      }
    });

    it("loads a string not in its format as no session, with a warning, never a 500", async () => {
      const prefix = `foreign:${generateKey().slice(0, 8)}:`;
      const store = new RedisStore({ client, prefix });
      for (
        const value of ['{"user":"admin"}', "\n{}", "soon\n{}", "Infinity\n{}", "\u00ff\u0000"]
      ) {
        const key = generateKey();
        await command("SET", prefix + key, value);
        await assertNoSessionThroughServer(store, key);
      }
    });
  });
}
