// The engines the reliability tests run against, one line each. Every test
// in this folder that is not about one engine's own medium (files on a full
// disk, a killed process writing files) loops over ENGINES, so a new engine
// joins the load, fuzz and hygiene tests by adding its line here. The
// signed-cookie engine keeps no record on the server to plant or corrupt:
// it joins the load and hygiene tests as COOKIE_ENGINE, and has hostile-input
// properties of its own (cookie_fuzz_test.ts).

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { chmodSync, existsSync, mkdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import {
  CachedStore,
  CookieStore,
  type DenoKv,
  FileStore,
  KvStore,
  MemoryStore,
  PostgresStore,
  RedisStore,
  type SessionStore,
  SqliteStore,
} from "../../mod.ts";
import {
  freshTable,
  POSTGRES_CLIENTS,
  type PostgresClientHandle,
  type PostgresServer,
  startPostgres,
} from "../_postgres.ts";
import { REDIS_CLIENTS, type RedisClientHandle, type RedisServer, startRedis } from "../_redis.ts";

/** One engine's store, opened inside a directory the test owns. */
export interface OpenStore {
  store: SessionStore;
  /** Releases what the engine holds (connections, handles); files stay for the test to check. */
  close(): Promise<void>;
}

/** A store that keeps its records on the server, where a test can plant one. */
export interface OpenEngine extends OpenStore {
  /**
   * Stores `data` (any bytes) under `key` with the expiry `expiresAt`, the
   * way the engine keeps a record but bypassing the session layer: a
   * tampered file, a corrupted entry. Used by the fuzz tests.
   */
  plant(key: string, data: Uint8Array, expiresAt: number): Promise<void>;
  /**
   * The names of the files the engine itself writes in `root/store`: the
   * tests check that nothing else under `root` is read or written.
   */
  files: RegExp | null;
}

/** An engine the load and hygiene tests serve sessions with. */
export interface ServedEngine {
  name: string;
  /**
   * True when the cookie value is the session itself, signed anew on every
   * save, rather than a key that stays the same.
   */
  reissuesCookie: boolean;
  /**
   * A fresh store whose files, if it has any, live under `root/store`.
   * Engines that need a server (Redis) start it on first use; a test file
   * that opens one calls releaseEngines() in after().
   */
  open(root: string): Promise<OpenStore>;
}

/** An engine that keeps records on the server: it also runs the fuzz tests. */
export interface Engine extends ServedEngine {
  open(root: string): Promise<OpenEngine>;
}

/**
 * Where the load and fuzz tests keep their stores: on Linux the
 * memory-backed /dev/shm. What they check (no lost update, no escaping
 * path) does not depend on the medium, and a write there costs a fraction
 * of a shared disk's; the crash and storage fault tests use real disks.
 */
export const SCRATCH: string = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();

const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
const encoder = new TextEncoder();

// The names SQLite gives a database and its companions (WAL, shared memory,
// rollback journal).
const SQLITE_FILES = /^sessions\.sqlite3(-wal|-shm|-journal)?$/;

/**
 * A SqliteStore in `root/store`, and a second connection to the same file
 * that plants rows as they are kept: the data as text (a stored row is
 * read as text, as a file's bytes are), the expiry in Django's format.
 */
function openSqlite(root: string): Omit<OpenEngine, "files"> & { store: SqliteStore } {
  const dir = join(root, "store");
  mkdirSync(dir, { recursive: true });
  const path = join(dir, "sessions.sqlite3");
  const store = new SqliteStore({ path });
  const planter = new DatabaseSync(path, { timeout: 5000 });
  const insert = planter.prepare(
    "INSERT OR REPLACE INTO django_session (session_key, session_data, expire_date) VALUES (?, ?, ?)",
  );
  return {
    store,
    plant(key, data, expiresAt) {
      // Django's UTC "YYYY-MM-DD HH:MM:SS.ffffff".
      const iso = new Date(expiresAt).toISOString();
      insert.run(key, decoder.decode(data), `${iso.slice(0, 10)} ${iso.slice(11, 23)}000`);
      return Promise.resolve();
    },
    close() {
      planter.close();
      store.close();
      return Promise.resolve();
    },
  };
}

// One redis-server and one node-redis connection per test file, started by
// the first engine that needs them and stopped by releaseEngines().
let redis: Promise<{ server: RedisServer; handle: RedisClientHandle }> | undefined;
let prefixes = 0;

function sharedRedis(): Promise<{ server: RedisServer; handle: RedisClientHandle }> {
  redis ??= (async () => {
    const server = await startRedis();
    const kind = REDIS_CLIENTS.find((client) => client.name === "node-redis")!;
    try {
      return { server, handle: await kind.connect(server.url) };
    } catch (error) {
      await server.stop();
      throw error;
    }
  })();
  return redis;
}

// One PostgreSQL cluster and one `postgres` pool per test file, likewise;
// each store gets a table of its own.
let cluster: Promise<{ server: PostgresServer; handle: PostgresClientHandle }> | undefined;

function sharedPostgres(): Promise<{ server: PostgresServer; handle: PostgresClientHandle }> {
  cluster ??= (async () => {
    const server = await startPostgres();
    const kind = POSTGRES_CLIENTS.find((client) => client.name === "postgres")!;
    try {
      return { server, handle: await kind.connect(server.url, 20) };
    } catch (error) {
      await server.destroy();
      throw error;
    }
  })();
  return cluster;
}

/** Stops what the engines started (the Redis and PostgreSQL servers, their clients); for after(). */
export async function releaseEngines(): Promise<void> {
  const started = redis;
  redis = undefined;
  if (started !== undefined) {
    const { server, handle } = await started;
    await handle.close();
    await server.stop();
  }
  const postgres = cluster;
  cluster = undefined;
  if (postgres !== undefined) {
    const { server, handle } = await postgres;
    await handle.close();
    await server.destroy();
  }
}

// Deno KV exists on Deno only: under Bun the engine is not in the list at
// all, rather than listed and skipped.
const deno = (globalThis as { Deno?: { openKv(path: string): Promise<DenoKv> } }).Deno;
const KV_ENGINES: readonly Engine[] = deno === undefined ? [] : [{
  name: "KvStore (local file)",
  reissuesCookie: false,
  async open(root) {
    const dir = join(root, "store");
    mkdirSync(dir, { recursive: true });
    const kv = await deno.openKv(join(dir, "sessions.kv"));
    const store = new KvStore({ kv });
    return {
      store,
      files: /^sessions\.kv(-wal|-shm|-journal)?$/,
      // The engine's value: the expiry line, then the data's bytes as they
      // are, with no deletion time, as if KV had not yet expired it.
      async plant(key, data, expiresAt) {
        const head = encoder.encode(`${expiresAt}\n`);
        const value = new Uint8Array(head.length + data.length);
        value.set(head);
        value.set(data, head.length);
        await kv.atomic().set([...store.prefix, key], value).commit();
      },
      close() {
        kv.close();
        return Promise.resolve();
      },
    };
  },
}];

export const ENGINES: readonly Engine[] = [
  {
    name: "FileStore",
    reissuesCookie: false,
    open(root) {
      const path = join(root, "store");
      mkdirSync(path, { recursive: true });
      const store = new FileStore({ path });
      return Promise.resolve({
        store,
        // Session files and the tombstones logouts leave.
        files: /^sessionid[a-z0-9]{8,40}(\.gone)?$/,
        plant(key, data, expiresAt) {
          // A new session under a key that was logged out: its tombstone,
          // which keeps a logged-out key dead for a while, is gone first.
          rmSync(`${store.fileOf(key)}.gone`, { force: true });
          const head = encoder.encode(`${expiresAt}\n`);
          const file = new Uint8Array(head.length + data.length);
          file.set(head);
          file.set(data, head.length);
          // Owned by this user and 0600, as the engine's own files are: what
          // is tested is the content, not the file's ownership or mode.
          writeFileSync(store.fileOf(key), file, { mode: 0o600 });
          chmodSync(store.fileOf(key), 0o600);
          // The engine's sweeper reads the expiry from the modification time.
          utimesSync(store.fileOf(key), new Date(), new Date(expiresAt));
          return Promise.resolve();
        },
        close: () => Promise.resolve(),
      });
    },
  },
  {
    name: "MemoryStore",
    reissuesCookie: false,
    open() {
      const store = new MemoryStore({ maxEntries: 100_000 });
      return Promise.resolve({
        store,
        files: null,
        // The memory engine keeps the serialized text: the bytes become
        // text as a file's would when read, byte order mark included.
        async plant(key, data, expiresAt) {
          await store.delete(key);
          await store.save(key, { data: decoder.decode(data), expiresAt }, true);
        },
        close: () => Promise.resolve(),
      });
    },
  },
  {
    name: "SqliteStore",
    reissuesCookie: false,
    open(root) {
      return Promise.resolve({ ...openSqlite(root), files: SQLITE_FILES });
    },
  },
  {
    name: "RedisStore (node-redis)",
    reissuesCookie: false,
    async open() {
      const { handle } = await sharedRedis();
      const client = handle.client as {
        sendCommand(args: (string | Uint8Array)[]): Promise<unknown>;
      };
      // A prefix per store: the tests of one file share the server.
      const prefix = `tessera:reliability:${++prefixes}:`;
      const store = new RedisStore({ client: handle.client, prefix });
      return {
        store,
        files: null,
        // The engine's value: the expiry line, then the data's bytes as
        // they are. A live record gets the TTL the engine gives it; a past
        // one none, as if Redis had not yet expired it.
        async plant(key, data, expiresAt) {
          const head = encoder.encode(`${expiresAt}\n`);
          const value = new Uint8Array(head.length + data.length);
          value.set(head);
          value.set(data, head.length);
          const ttl = Math.ceil(expiresAt - Date.now());
          await client.sendCommand([
            "SET",
            prefix + key,
            Buffer.from(value),
            ...(ttl > 0 ? ["PX", String(ttl)] : []),
          ]);
        },
        close: () => Promise.resolve(),
      };
    },
  },
  {
    name: "PostgresStore (postgres)",
    reissuesCookie: false,
    async open() {
      const { handle } = await sharedPostgres();
      const client = handle.client as {
        unsafe(text: string, parameters: string[]): Promise<unknown>;
      };
      const table = freshTable();
      const store = new PostgresStore({ client: handle.client, table });
      await store.ready();
      return {
        store,
        files: null,
        // The data as text, as a stored row is read; a text column cannot
        // hold NUL, so a planted NUL becomes another character JSON
        // refuses unescaped (U+0001): what was not a session stays none.
        async plant(key, data, expiresAt) {
          await client.unsafe(
            `INSERT INTO "${table}" (session_key, session_data, expire_date)
             VALUES ($1, $2, $3::text::timestamptz)
             ON CONFLICT (session_key) DO UPDATE SET session_data = excluded.session_data, expire_date = excluded.expire_date`,
            [
              key,
              decoder.decode(data).replaceAll("\u0000", "\u0001"),
              new Date(expiresAt).toISOString(),
            ],
          );
        },
        close: () => Promise.resolve(),
      };
    },
  },
  {
    name: "CachedStore (Memory over Sqlite)",
    reissuesCookie: false,
    open(root) {
      const sqlite = openSqlite(root);
      const cache = new MemoryStore({ maxEntries: 100_000 });
      const store = new CachedStore(cache, sqlite.store);
      return Promise.resolve({
        store,
        files: SQLITE_FILES,
        // A tampered row in the durable store, read on the next cache miss:
        // the cached copy goes, as when the cache evicts it.
        async plant(key, data, expiresAt) {
          await sqlite.plant(key, data, expiresAt);
          await cache.delete(key);
        },
        close: sqlite.close,
      });
    },
  },
  ...KV_ENGINES,
];

/**
 * The data of a record that withSessions stored with a secret: what follows
 * the signature ("s1:" + 43 characters + ":"). Throws for an unsigned record.
 */
export function signedData(stored: string): string {
  assert.match(stored, /^s1:[A-Za-z0-9_-]{43}:/, "the record is signed");
  return stored.slice(47);
}

/** A secret of the signed-cookie engine, for tests that only need one that works. */
export const COOKIE_SECRET = "reliability-cookie-secret-0123456789abcdef";

/** The signed-cookie engine; withSessions gives it its secret (option `secret`). */
export const COOKIE_ENGINE: ServedEngine = {
  name: "CookieStore",
  reissuesCookie: true,
  open: () => Promise.resolve({ store: new CookieStore(), close: () => Promise.resolve() }),
};

/** Every engine, for the tests that serve sessions without planting records. */
export const SERVED_ENGINES: readonly ServedEngine[] = [...ENGINES, COOKIE_ENGINE];
