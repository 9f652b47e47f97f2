// Tessera's engines as the benchmark builds them: one line per engine.
//
// A factory gets a context with a fresh temp directory for this server
// process and a list of clean-ups to run when it stops (an engine that needs
// a service of its own, such as a Redis server on a free 127.0.0.1 port,
// starts it in its factory and registers its stop there).
import { join } from "node:path";
import {
  CookieStore,
  FileStore,
  MemoryStore,
  PostgresStore,
  RedisStore,
  type SessionStore,
  SqliteStore,
} from "../../mod.ts";

/** What an engine factory gets from the server that runs it. */
export interface EngineContext {
  /** A fresh, empty directory that is removed when the server stops. */
  directory: string;
  /** The `maxEntries` of a bounded in-memory engine, when the harness sets one. */
  maxEntries: number | undefined;
  /** Clean-ups the server runs when it stops, last registered first. */
  cleanups: (() => void | Promise<void>)[];
}

/** Builds one engine for one server process. */
export type EngineFactory = (
  context: EngineContext,
) => SessionStore | Promise<SessionStore>;

/**
 * Every engine the benchmark measures, by the name the harness passes. Each
 * runs at its defaults; FileStore and SqliteStore get a directory of their
 * own so that runs never share files, and RedisStore and PostgresStore a
 * private server of their own (the tests' harness: a free 127.0.0.1 port,
 * stopped by its pid), which shares the CPU the benchmark pins the
 * server to, as a local database would.
 */
export const ENGINES: Record<string, EngineFactory> = {
  memory: ({ maxEntries }) => new MemoryStore(maxEntries === undefined ? {} : { maxEntries }),
  file: ({ directory }) => new FileStore({ path: directory }),
  cookie: () => new CookieStore(),
  sqlite: ({ directory, cleanups }) => {
    const store = new SqliteStore({
      path: join(directory, "sessions.sqlite3"),
    });
    cleanups.push(() => store.close());
    return store;
  },
  // The servers' harnesses and clients are loaded only by the rows that
  // use them, so that they weigh on no other row's memory.
  redis: async ({ cleanups }) => {
    const { REDIS_CLIENTS, startRedis } = await import("../../tests/_redis.ts");
    const server = await startRedis();
    cleanups.push(() => server.stop());
    const handle = await REDIS_CLIENTS[0]!.connect(server.url);
    cleanups.push(() => handle.close());
    return new RedisStore({ client: handle.client });
  },
  // One connection of the postgres package, as the floor's: the same
  // round trips, so that the ratio is the store's own cost.
  postgres: async ({ cleanups }) => {
    const { POSTGRES_CLIENTS, startPostgres } = await import("../../tests/_postgres.ts");
    const server = await startPostgres();
    cleanups.push(() => server.destroy());
    const handle = await POSTGRES_CLIENTS[0]!.connect(server.url, 1);
    cleanups.push(() => handle.close());
    const store = new PostgresStore({ client: handle.client });
    await store.ready();
    return store;
  },
};
