// A logout is final on CachedStore: a fill or an update that read or wrote
// the durable store before a concurrent delete, and reaches the cache after
// it, must not bring the session back. Each race is run paused at its
// critical point, then thousands of times at random.

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import {
  CachedStore,
  getSession,
  MemoryStore,
  RedisStore,
  type SessionStore,
  SqliteStore,
  type StoredSession,
  withSessions,
} from "../../mod.ts";
import { generateKey } from "../../src/_key.ts";
import { RecordingLogger } from "../_config.ts";
import { REDIS_CLIENTS, type RedisClientHandle, startRedis } from "../_redis.ts";
import { serve } from "../_server.ts";

const redis = await startRedis();
// Two clients of two libraries: two servers sharing one Redis.
const redisClients: RedisClientHandle[] = [
  await REDIS_CLIENTS[0]!.connect(redis.url),
  await REDIS_CLIENTS[1]!.connect(redis.url),
];
// On a RAM disk where there is one: every delete commits, and thousands of
// commits to a real disk take seconds.
const dir = mkdtempSync(
  join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "tessera-cached-race-"),
);
const sqliteStores: SqliteStore[] = [];
after(async () => {
  for (const store of sqliteStores) store.close();
  for (const handle of redisClients) await handle.close();
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
});

let files = 0;
function sqlite(path = join(dir, `sessions-${++files}.sqlite3`)): SqliteStore {
  const store = new SqliteStore({ path });
  sqliteStores.push(store);
  return store;
}

const HOUR = 3_600_000;

function record(data = '{"user":"42"}'): StoredSession {
  return { data, expiresAt: Date.now() + HOUR };
}

// Thousands of sessions written in one transaction, straight into the
// database file (one commit each through the store would take seconds).
function seed(path: string, count: number): string[] {
  const db = new DatabaseSync(path);
  const expireDate = new Date(Date.now() + HOUR).toISOString().replace("T", " ").replace(
    "Z",
    "000",
  );
  const keys = Array.from({ length: count }, () => generateKey());
  const insert = db.prepare("INSERT INTO django_session VALUES (?, ?, ?)");
  db.exec("BEGIN");
  for (const key of keys) insert.run(key, '{"user":"42"}', expireDate);
  db.exec("COMMIT");
  db.close();
  return keys;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

interface Pause {
  /** Resolves once the durable store has answered and is held back. */
  reached: Promise<void>;
  /** Lets the held answer go on to the CachedStore. */
  release(): void;
}

// A real durable store whose next load() or save() answer can be held back
// after the database has run it: the instant a concurrent logout lands in.
// With `jitter`, every other load() and save() answer is late by a random
// few milliseconds.
class PausingStore implements SessionStore {
  #loadPause: { reached(): void; gate: Promise<void> } | null = null;
  #savePause: { reached(): void; gate: Promise<void> } | null = null;
  readonly #readers = new Map<string, () => void>();
  readonly #held = new Set<string>();

  /** Whether a load() answer of `key` with a record in it is being held back. */
  isHeld(key: string): boolean {
    return this.#held.has(key);
  }
  constructor(readonly inner: SessionStore, readonly jitter = 0) {}

  /** Resolves when a load() of `key` reaches this store. */
  whenRead(key: string): Promise<void> {
    return new Promise((resolve) => this.#readers.set(key, resolve));
  }

  pauseNextLoad(): Pause {
    return this.#pause((pause) => this.#loadPause = pause);
  }

  pauseNextSave(): Pause {
    return this.#pause((pause) => this.#savePause = pause);
  }

  #pause(install: (pause: { reached(): void; gate: Promise<void> }) => void): Pause {
    let reached!: () => void;
    let release!: () => void;
    const reachedPromise = new Promise<void>((resolve) => reached = resolve);
    install({ reached, gate: new Promise<void>((resolve) => release = resolve) });
    return { reached: reachedPromise, release };
  }

  async load(key: string): Promise<StoredSession | null> {
    this.#readers.get(key)?.();
    this.#readers.delete(key);
    const answer = await this.inner.load(key);
    const pause = this.#loadPause;
    this.#loadPause = null;
    if (pause !== null) {
      pause.reached();
      await pause.gate;
    } else if (this.jitter > 0) {
      if (answer !== null) this.#held.add(key);
      await sleep(Math.floor(Math.random() * (this.jitter + 1)));
      this.#held.delete(key);
    }
    return answer;
  }
  exists(key: string): Promise<boolean> {
    return this.inner.exists(key);
  }
  create(record: StoredSession): Promise<string> {
    return this.inner.create(record);
  }
  async save(key: string, record: StoredSession, mustCreate?: boolean): Promise<string> {
    const answer = await this.inner.save(key, record, mustCreate);
    const pause = this.#savePause;
    this.#savePause = null;
    if (pause !== null) {
      pause.reached();
      await pause.gate;
    } else if (this.jitter > 0) {
      await sleep(Math.floor(Math.random() * (this.jitter + 1)));
    }
    return answer;
  }
  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }
  clearExpired(): Promise<number> {
    return this.inner.clearExpired();
  }
}

// One application server: its CachedStore over a cache and a database that
// other servers may share.
interface Server {
  store: CachedStore;
  cache: SessionStore;
  durable: PausingStore;
}

// Two servers sharing one cache and one database file. For the memory
// cache, "another server" is a second CachedStore on the same MemoryStore:
// what matters is that the delete does not go through the filling store.
interface Setup {
  name: string;
  make(jitter?: number): { here: Server; there: Server; path: string };
}

const SETUPS: Setup[] = [
  {
    name: "Memory over Sqlite",
    make(jitter = 0) {
      const path = join(dir, `sessions-${++files}.sqlite3`);
      const cache = new MemoryStore({ maxEntries: 100_000 });
      const server = (): Server => {
        const durable = new PausingStore(sqlite(path), jitter);
        return { store: new CachedStore(cache, durable), cache, durable };
      };
      return { here: server(), there: server(), path };
    },
  },
  {
    name: "Redis over Sqlite",
    make(jitter = 0) {
      const path = join(dir, `sessions-${++files}.sqlite3`);
      const prefix = `cached_db:${generateKey().slice(0, 8)}:`;
      const server = (handle: RedisClientHandle): Server => {
        const cache = new RedisStore({ client: handle.client, prefix });
        const durable = new PausingStore(sqlite(path), jitter);
        return { store: new CachedStore(cache, durable), cache, durable };
      };
      return { here: server(redisClients[0]!), there: server(redisClients[1]!), path };
    },
  },
];

// Sessions either server would still serve: in a cache, or in the database.
async function countAlive(keys: string[], here: Server, there: Server): Promise<number> {
  let alive = 0;
  for (const key of keys) {
    if (
      await here.cache.exists(key) || await there.cache.exists(key) ||
      await here.durable.inner.exists(key)
    ) alive++;
  }
  return alive;
}

for (const setup of SETUPS) {
  describe(`CachedStore (${setup.name}): no logout is undone`, () => {
    for (const by of ["this server", "another server"] as const) {
      it(`a logout by ${by} during the fill's durable read stays final`, async () => {
        const { here, there } = setup.make();
        const key = await here.durable.inner.create(record());
        const pause = here.durable.pauseNextLoad();
        const loading = here.store.load(key);
        await pause.reached;
        // The durable store has read the session; the logout lands now.
        await (by === "this server" ? here : there).store.delete(key);
        pause.release();
        await loading;
        assert.equal(await here.cache.exists(key), false, "the cache holds the logged-out session");
        assert.equal(await here.store.load(key), null);
        assert.equal(await there.store.load(key), null);
      });

      it(`a logout by ${by} during an update stays final`, async () => {
        const { here, there } = setup.make();
        const key = await here.store.create(record('{"v":1}'));
        const pause = here.durable.pauseNextSave();
        const saving = here.store.save(key, record('{"v":2}'));
        await pause.reached;
        // The durable store has taken the update; the logout lands now.
        await (by === "this server" ? here : there).store.delete(key);
        pause.release();
        await saving;
        assert.equal(await here.cache.exists(key), false, "the cache holds the logged-out session");
        assert.equal(await here.store.load(key), null);
        assert.equal(await there.store.load(key), null);
      });
    }

    it("a fill with no logout still fills the cache, and a hit asks only the cache", async () => {
      const { here } = setup.make();
      const key = await here.durable.inner.create(record('{"n":1}'));
      assert.equal((await here.store.load(key))?.data, '{"n":1}');
      assert.equal((await here.cache.load(key))?.data, '{"n":1}');
      // The database is gone: a hit must not need it.
      await here.durable.inner.delete(key);
      assert.equal((await here.store.load(key))?.data, '{"n":1}');
    });

    it("2,000 concurrent load/logout pairs: 0 resurrections", async () => {
      const { here, there, path } = setup.make(3);
      const pairs = 2000;
      const keys = seed(path, pairs);
      let returned = 0;
      let raced = 0;
      await Promise.all(keys.map(async (key, i) => {
        const deleter = i % 2 === 0 ? here : there;
        // The logout lands a random 0-3 ms into the durable read, whose
        // answer is itself 0-3 ms late.
        const read = here.durable.whenRead(key);
        const [loaded] = await Promise.all([
          here.store.load(key),
          read.then(() => sleep(Math.floor(Math.random() * 4))).then(() => {
            if (here.durable.isHeld(key)) raced++;
            return deleter.store.delete(key);
          }),
        ]);
        if (loaded !== null) returned++;
      }));
      const resurrected = await countAlive(keys, here, there);
      console.log(
        `CachedStore (${setup.name}): ${pairs} load/logout pairs, ${raced} logouts landed after the durable read found the session and before its answer came back (${returned} loads returned the session), ${resurrected} resurrections`,
      );
      // Enough logouts must land in the window for the race to be run.
      assert.ok(raced > pairs / 10, `${raced} logouts landed in the window`);
      assert.equal(resurrected, 0);
    });

    it("2,000 concurrent update/logout pairs: 0 resurrections", async () => {
      const { here, there, path } = setup.make(3);
      const pairs = 2000;
      const keys = seed(path, pairs);
      for (const key of keys) await here.store.load(key);
      let saved = 0;
      let interrupted = 0;
      await Promise.all(keys.map(async (key, i) => {
        const deleter = i % 2 === 0 ? here : there;
        await Promise.all([
          sleep(Math.floor(Math.random() * 4)).then(() =>
            here.store.save(key, record('{"v":2}')).then(
              () => saved++,
              () => interrupted++,
            )
          ),
          sleep(Math.floor(Math.random() * 4)).then(() => deleter.store.delete(key)),
        ]);
      }));
      const resurrected = await countAlive(keys, here, there);
      console.log(
        `CachedStore (${setup.name}): ${pairs} update/logout pairs, ${saved} updates saved before the logout, ${interrupted} refused after it, ${resurrected} resurrections`,
      );
      assert.equal(saved + interrupted, pairs);
      assert.equal(resurrected, 0);
    });
  });
}

describe("CachedStore: no logout is undone, through a server and with a failing cache", () => {
  it("a logout during another tab's slow read leaves the old cookie logged out", async () => {
    const cache = new MemoryStore();
    const durable = new PausingStore(sqlite());
    const store = new CachedStore(cache, durable);
    const handler = withSessions(async (req) => {
      const session = await getSession<{ user: string }>(req);
      const path = new URL(req.url).pathname;
      if (path === "/login") session.set("user", "admin");
      if (path === "/logout") await session.flush();
      return new Response(session.get("user") ?? "anonymous");
    }, { store, logger: new RecordingLogger() });
    const server = serve(handler);
    try {
      const login = await fetch(`${server.url}/login`);
      assert.equal(await login.text(), "admin");
      const cookie = login.headers.get("set-cookie")!.split(";")[0]!;
      // A fresh cache, as after a restart: the next read goes to the database.
      const key = cookie.split("=")[1]!;
      await cache.delete(key);
      const pause = durable.pauseNextLoad();
      const slow = fetch(`${server.url}/page`, { headers: { cookie } });
      await pause.reached;
      const logout = await fetch(`${server.url}/logout`, { headers: { cookie } });
      assert.equal(await logout.text(), "anonymous");
      pause.release();
      await (await slow).text();
      const after = await fetch(`${server.url}/page`, { headers: { cookie } });
      assert.equal(await after.text(), "anonymous", "the logged-out cookie still logs in");
    } finally {
      await server.close();
    }
  });

  it("a fill whose cache write landed but answered with an error is confirmed too", async () => {
    const durable = new PausingStore(sqlite());
    const cache = new MemoryStore();
    const store = new CachedStore(cache, durable);
    store.configure({
      cookieName: "sessionid",
      cookieAge: 60,
      secrets: [],
      logger: new RecordingLogger(),
    });
    const other = new CachedStore(cache, durable.inner);
    const key = await durable.inner.create(record());
    const pause = durable.pauseNextLoad();
    const loading = store.load(key);
    await pause.reached;
    await other.delete(key);
    // The write lands, then the client gives up waiting for the reply.
    const save = cache.save.bind(cache);
    cache.save = async (...args) => {
      await save(...args);
      throw new Error("Command timed out");
    };
    pause.release();
    assert.equal(await loading, null);
    assert.equal(await cache.exists(key), false, "the cache holds the logged-out session");
  });

  it("a cache that cannot remove a resurrected copy fails the request rather than serve it", async () => {
    const durable = new PausingStore(sqlite());
    const cache = new MemoryStore();
    const store = new CachedStore(cache, durable);
    const other = new CachedStore(cache, durable.inner);
    const key = await durable.inner.create(record());
    const pause = durable.pauseNextLoad();
    const loading = store.load(key);
    await pause.reached;
    await other.delete(key);
    // The cache now refuses deletes, as a cache that went down would.
    cache.delete = () => Promise.reject(new Error("cache down"));
    pause.release();
    await assert.rejects(
      loading,
      /Cannot remove a deleted session from the cache \(MemoryStore\): cache down/,
    );
  });
});
