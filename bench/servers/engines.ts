// Tessera's engines as the benchmark builds them: one line per engine.
//
// A factory gets a context with a fresh temp directory for this server
// process and a list of clean-ups to run when it stops (an engine that needs
// a service of its own, such as a Redis server on a free 127.0.0.1 port,
// starts it in its factory and registers its stop there).
import { join } from "node:path";
import { CookieStore, FileStore, MemoryStore, type SessionStore, SqliteStore } from "../../mod.ts";

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
 * own so that runs never share files.
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
};
