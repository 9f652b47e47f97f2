/**
 * Tessera: Django's session framework for Deno and Bun.
 *
 * Wrap a fetch handler with {@link withSessions}, call
 * `await getSession(req)` inside it, and use the session as in Django. The
 * default engine keeps one file per session in the OS temp dir; others are
 * one option away.
 *
 * @example A counter, a login and a logout
 * ```ts
 * import assert from "node:assert/strict";
 * import { getSession, MemoryStore, withSessions } from "@tessera/sessions";
 *
 * type Data = { visits: number; user: string };
 * const handler = withSessions(async (req) => {
 *   const session = await getSession<Data>(req);
 *   const path = new URL(req.url).pathname;
 *   if (path === "/login") {
 *     await session.cycleKey(); // a new key at login, against session fixation
 *     session.set("user", "ada");
 *   } else if (path === "/logout") {
 *     await session.flush();
 *   } else {
 *     session.set("visits", (session.get("visits") ?? 0) + 1);
 *   }
 *   return new Response(`${session.get("user") ?? "anonymous"}: ${session.get("visits") ?? 0}`);
 * }, { store: new MemoryStore() });
 *
 * const first = await handler(new Request("http://localhost/"));
 * const cookie = first.headers.get("set-cookie")!.split(";")[0]!;
 * const login = await handler(new Request("http://localhost/login", { headers: { cookie } }));
 * assert.equal(await login.text(), "ada: 1");
 * ```
 *
 * @module
 */

export { getSession, sessionCookieHeader, withSessions } from "./src/middleware.ts";
export type { SameSite, SessionOptions } from "./src/options.ts";
export { type ExpiryOptions, Session, type SessionConfig } from "./src/session.ts";
export { JSON_SERIALIZER, type Serializer, type SessionData } from "./src/serializer.ts";
export type { Logger } from "./src/logger.ts";
export { SessionExistsError, SessionInterruptedError, SessionStoreError } from "./src/errors.ts";
export type { SessionStore, StoredSession, StoreSettings } from "./src/stores/store.ts";
export { FileStore, type FileStoreOptions } from "./src/stores/file.ts";
export { MemoryStore, type MemoryStoreOptions } from "./src/stores/memory.ts";
export { CookieStore } from "./src/stores/cookie.ts";
export {
  BadSignatureError,
  dumps,
  dumpsJson,
  type DumpsOptions,
  type LoadedJson,
  loads,
  loadsJson,
  type LoadsOptions,
  sign,
  SignatureExpiredError,
  type SignOptions,
  unsign,
  type UnsignOptions,
  type Verified,
  verify,
} from "./src/signing.ts";
export { SqliteStore, type SqliteStoreOptions } from "./src/stores/sqlite.ts";
export { type RedisCommandClient, RedisStore, type RedisStoreOptions } from "./src/stores/redis.ts";
export {
  type PostgresClient,
  type PostgresRow,
  PostgresStore,
  type PostgresStoreOptions,
} from "./src/stores/postgres.ts";
export { CachedStore, type CachedStoreOptions } from "./src/stores/cached.ts";
export {
  type DenoKv,
  type DenoKvAtomicOperation,
  type DenoKvEntry,
  type DenoKvKey,
  KvStore,
  type KvStoreOptions,
} from "./src/stores/kv.ts";
export type { SweepOptions, SweepReport } from "./src/stores/store.ts";
export {
  type PostgresUserIndexOptions,
  type RedisUserIndexOptions,
  type SqliteUserIndexOptions,
  type UserSessionInfo,
  UserSessions,
  type UserSessionsOptions,
} from "./src/users.ts";
export { startSweeper, type Sweeper, type SweeperOptions } from "./src/sweeper.ts";
