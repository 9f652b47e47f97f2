/**
 * A write-through cache in front of a durable store (Django's
 * `backends.cached_db`).
 *
 * @module
 */

import { isValidKey } from "../_key.ts";
import { SessionExistsError, SessionInterruptedError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { sealStore } from "./_sealed.ts";
import type { SessionStore, StoredSession, StoreSettings } from "./store.ts";

// A session that a Django app logs out deletes its row and Django's cache
// entry, never this store's copy: the copy's lifetime is the bound.
const DJANGO_FORMAT_CACHE_TTL = 10;

/**
 * Options of {@link CachedStore}.
 *
 * @example
 * ```ts
 * import type { CachedStoreOptions } from "@tessera/sessions";
 *
 * const options: CachedStoreOptions = { cacheTtl: 30 };
 * ```
 */
export interface CachedStoreOptions {
  /**
   * The longest a copy stays in the cache, in seconds, before the durable
   * store is read again: how long a session that something else deleted
   * from the durable store (a logout in a Django app sharing the table) or
   * changed there can still be served from the cache. Without it, a copy
   * lives as long as its session, except in front of a store in Django's
   * format (`format: "django"`), where it lives 10 seconds.
   *
   * @default {10 in front of a store with format "django", else the session's own expiry}
   */
  cacheTtl?: number;
}

/**
 * Two stores as one: reads try the fast `cache` first and fall back to the
 * `durable` store (filling the cache on a hit); writes go to the durable
 * store first, so that its answer decides (a taken key, a session deleted
 * meanwhile), and then to the cache. The durable store picks new keys.
 *
 * The cache is an optimisation and never fails a request: an error reading
 * it counts as a miss, and an error writing it is logged ("Error saving to
 * cache", as Django logs it) while the request succeeds on the durable
 * store. Deleting is the exception: a session that could not be removed
 * from the cache would outlive its logout, so that error fails the request.
 *
 * A logout is final. A fill (or an update) that read or wrote the durable
 * store before a concurrent delete, and reaches the cache after it, does not
 * bring the session back: a delete by this store tells every fill and update
 * of that key in flight here, which then keeps out of the cache; and after
 * writing the cache, a fill or update asks the durable store whether the
 * session still exists (one `exists()`, never on a cache hit) and removes
 * its copy when it does not, which covers a delete made by another server
 * on a shared cache. Such a copy can be seen by other servers only for that
 * one round trip.
 *
 * What this store does not see is a delete or a change made in the durable
 * store by something else, such as a Django app on the same table (Django's
 * logout deletes its row and its own cache entry). `cacheTtl` bounds how
 * long a cached copy can outlive it: 10 seconds by default in front of a
 * store in Django's format. A durable store that signs its own records
 * (Django's format) gets no signature from `withSessions`; the cache's
 * copies are then signed here, with the same secret, so that a record
 * planted in the cache is still not a session.
 *
 * @example Memory in front of SQLite
 * ```ts
 * import { CachedStore, MemoryStore, SqliteStore, withSessions } from "@tessera/sessions";
 *
 * const durable = new SqliteStore({ path: ":memory:" });
 * const store = new CachedStore(new MemoryStore({ maxEntries: 50_000 }), durable);
 * const handler = withSessions(() => new Response("ok"), { store });
 * durable.close();
 * ```
 */
export class CachedStore implements SessionStore {
  /**
   * The fast store in front.
   */
  readonly cache: SessionStore;
  /**
   * The store that keeps sessions and decides.
   */
  readonly durable: SessionStore;
  /**
   * The longest a copy stays in the cache, in seconds, or `undefined` when
   * a copy lives as long as its session.
   */
  readonly cacheTtl: number | undefined;
  // The cache as this store uses it: `cache`, signed here when the durable
  // store signs its own records and withSessions therefore signs nothing.
  #front: SessionStore;
  #logger: Logger = console;
  // The fills and updates on their way to the cache, by key, so that a
  // delete can tell them their record is gone. Empty when the store is idle.
  readonly #flights = new Map<string, Set<Flight>>();

  /**
   * Puts `cache` in front of `durable`.
   *
   * @throws {TypeError} when either is not a session store, or both are the
   * same store.
   * @throws {RangeError} when `cacheTtl` is not a positive number of seconds.
   * @example
   * ```ts
   * import { CachedStore, MemoryStore, SqliteStore } from "@tessera/sessions";
   *
   * const durable = new SqliteStore({ path: ":memory:" });
   * const store = new CachedStore(new MemoryStore(), durable, { cacheTtl: 60 });
   * durable.close();
   * ```
   */
  constructor(cache: SessionStore, durable: SessionStore, options: CachedStoreOptions = {}) {
    for (const [name, store] of [["cache", cache], ["durable", durable]] as const) {
      if (!isStore(store)) {
        throw new TypeError(
          `Cannot create a CachedStore as '${name}' must be a session store such as new MemoryStore() or new SqliteStore(...)`,
        );
      }
    }
    if (cache === durable) {
      throw new TypeError(
        "Cannot create a CachedStore as 'cache' and 'durable' are the same store: give it two",
      );
    }
    const cacheTtl = options?.cacheTtl ??
      ((durable as { format?: unknown }).format === "django" ? DJANGO_FORMAT_CACHE_TTL : undefined);
    if (
      cacheTtl !== undefined &&
      !(typeof cacheTtl === "number" && cacheTtl > 0 && cacheTtl < Infinity)
    ) {
      throw new RangeError(
        `Cannot create a CachedStore as 'cacheTtl' must be a positive number of seconds: current value is ${
          String(cacheTtl)
        }`,
      );
    }
    this.cache = cache;
    this.durable = durable;
    this.cacheTtl = cacheTtl;
    this.#front = cache;
  }

  /**
   * Whether the durable store signs its own records (Django's format), so
   * that `withSessions` signs nothing and the cache's copies are signed
   * here.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { CachedStore, MemoryStore } from "@tessera/sessions";
   *
   * assert.equal(new CachedStore(new MemoryStore(), new MemoryStore()).authenticatesRecords, false);
   * ```
   */
  get authenticatesRecords(): boolean {
    return this.durable.authenticatesRecords === true;
  }

  /**
   * Whether the durable store's records expire by themselves.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { CachedStore, MemoryStore } from "@tessera/sessions";
   *
   * assert.equal(new CachedStore(new MemoryStore(), new MemoryStore()).expiresOnItsOwn, false);
   * ```
   */
  get expiresOnItsOwn(): boolean {
    return this.durable.expiresOnItsOwn ?? false;
  }

  /**
   * Whether a cookie value can be a key of the durable store.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { CachedStore, MemoryStore } from "@tessera/sessions";
   *
   * const store = new CachedStore(new MemoryStore(), new MemoryStore());
   * assert.equal(store.isValidKey("../etc/passwd"), false);
   * ```
   */
  isValidKey(value: string): boolean {
    const durable = this.durable;
    return durable.isValidKey === undefined ? isValidKey(value) : durable.isValidKey(value);
  }

  /**
   * Passes the settings of `withSessions` to both stores, and keeps its
   * logger for cache failures.
   *
   * @example
   * ```ts
   * import { CachedStore, MemoryStore } from "@tessera/sessions";
   *
   * const store = new CachedStore(new MemoryStore(), new MemoryStore());
   * store.configure({ cookieName: "sid", cookieAge: 60, secrets: [], logger: console });
   * ```
   */
  configure(settings: StoreSettings): void {
    this.cache.configure?.(settings);
    this.durable.configure?.(settings);
    this.#logger = settings.logger;
    this.#front = this.authenticatesRecords && this.cache.authenticatesRecords !== true &&
        settings.secrets.length > 0
      ? sealStore(this.cache, {
        secrets: settings.secrets,
        logger: settings.logger,
        acceptUnsigned: false,
      })
      : this.cache;
  }

  /**
   * The session from the cache, or else from the durable store (and then
   * kept in the cache), or `null`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { CachedStore, MemoryStore } from "@tessera/sessions";
   *
   * const store = new CachedStore(new MemoryStore(), new MemoryStore());
   * assert.equal(await store.load("abcdefgh12345678"), null);
   * ```
   */
  async load(key: string): Promise<StoredSession | null> {
    try {
      const cached = await this.#front.load(key);
      if (cached !== null) return cached;
    } catch (error) {
      // Django counts any cache error as a miss (#17810).
      this.#readFailed(error);
    }
    const flight = this.#board(key);
    try {
      const record = await this.durable.load(key);
      if (record === null || flight.deleted) return null;
      try {
        // Create-only: a fill never overwrites what a concurrent save wrote.
        await this.#front.save(key, this.#copy(record), true);
      } catch (error) {
        if (error instanceof SessionExistsError) return flight.deleted ? null : record;
        this.#saveFailed(error);
        // A write that failed on the way back (a timeout) may still have
        // landed: it is confirmed like one that succeeded.
      }
      return await this.#confirm(key, flight) ? record : null;
    } finally {
      this.#land(key, flight);
    }
  }

  /**
   * Whether a session exists under `key`: a live copy in the cache answers
   * without asking the durable store, which answers otherwise.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { CachedStore, MemoryStore } from "@tessera/sessions";
   *
   * const store = new CachedStore(new MemoryStore(), new MemoryStore());
   * assert.equal(await store.exists("abcdefgh12345678"), false);
   * ```
   */
  async exists(key: string): Promise<boolean> {
    try {
      // A live cached copy settles it. The cache's own exists() could count
      // a copy that expired, which the durable store may have swept.
      if (await this.#front.load(key) !== null) return true;
    } catch (error) {
      this.#readFailed(error);
    }
    return await this.durable.exists(key);
  }

  /**
   * Stores `record` under a new key picked by the durable store, then
   * caches it.
   *
   * @example
   * ```ts
   * import { CachedStore, MemoryStore } from "@tessera/sessions";
   *
   * const store = new CachedStore(new MemoryStore(), new MemoryStore());
   * await store.create({ data: "{}", expiresAt: Date.now() + 60_000 });
   * ```
   */
  async create(record: StoredSession): Promise<string> {
    const key = await this.durable.create(record);
    await this.#cacheSet(key, record, false);
    return key;
  }

  /**
   * Stores `record` in the durable store, then in the cache.
   *
   * @example
   * ```ts
   * import { CachedStore, MemoryStore } from "@tessera/sessions";
   *
   * const store = new CachedStore(new MemoryStore(), new MemoryStore());
   * await store.save("abcdefgh12345678", { data: "{}", expiresAt: Date.now() + 60_000 }, true);
   * ```
   */
  async save(key: string, record: StoredSession, mustCreate = false): Promise<string> {
    const flight = this.#board(key);
    try {
      let savedKey: string;
      try {
        savedKey = await this.durable.save(key, record, mustCreate);
      } catch (error) {
        // Deleted from the durable store behind the cache's back: the cached
        // copy must not keep the session alive.
        if (error instanceof SessionInterruptedError) await this.#front.delete(key).catch(() => {});
        throw error;
      }
      // Saved, then deleted by a concurrent logout whose own cache delete
      // covers any older copy: writing this one would undo the logout.
      if (flight.deleted) return savedKey;
      await this.#cacheSet(savedKey, record, !mustCreate);
      // A new key is known to no one else yet: nobody can have deleted it.
      if (!mustCreate) await this.#confirm(savedKey, flight);
      return savedKey;
    } finally {
      this.#land(key, flight);
    }
  }

  /**
   * Deletes the session from the durable store, then from the cache.
   *
   * @throws {Error} when either store fails: a session left in the cache
   * would outlive its logout.
   * @example
   * ```ts
   * import { CachedStore, MemoryStore } from "@tessera/sessions";
   *
   * await new CachedStore(new MemoryStore(), new MemoryStore()).delete("abcdefgh12345678");
   * ```
   */
  async delete(key: string): Promise<void> {
    await this.durable.delete(key);
    // After the durable delete: a fill that boards later reads no record.
    for (const flight of this.#flights.get(key) ?? []) flight.deleted = true;
    await this.#front.delete(key);
  }

  /**
   * Removes expired sessions from the durable store; cached copies expire
   * by themselves.
   *
   * @returns How many the durable store removed.
   * @example
   * ```ts
   * import { CachedStore, MemoryStore } from "@tessera/sessions";
   *
   * const removed = await new CachedStore(new MemoryStore(), new MemoryStore()).clearExpired();
   * ```
   */
  clearExpired(): Promise<number> {
    return this.durable.clearExpired();
  }

  // The store interface has no unconditional set: try the likely write,
  // then the other one. What cannot be cached is dropped from the cache, so
  // that an older cached copy is not served in its place.
  async #cacheSet(key: string, full: StoredSession, present: boolean): Promise<void> {
    const cache = this.#front;
    const record = this.#copy(full);
    try {
      try {
        await cache.save(key, record, !present);
      } catch (error) {
        const missed = present
          ? error instanceof SessionInterruptedError
          : error instanceof SessionExistsError;
        if (!missed) throw error;
        await cache.save(key, record, present);
      }
    } catch (error) {
      this.#saveFailed(error);
      await cache.delete(key).catch(() => {});
    }
  }

  // The cache's copy of a record: it expires after cacheTtl at the latest,
  // and the durable store is read again.
  #copy(record: StoredSession): StoredSession {
    const ttl = this.cacheTtl;
    if (ttl === undefined) return record;
    return {
      data: record.data,
      expiresAt: Math.min(record.expiresAt, Date.now() + ttl * 1000),
    };
  }

  #board(key: string): Flight {
    const flight: Flight = { deleted: false };
    const flights = this.#flights.get(key);
    if (flights === undefined) this.#flights.set(key, new Set([flight]));
    else flights.add(flight);
    return flight;
  }

  #land(key: string, flight: Flight): void {
    const flights = this.#flights.get(key);
    flights?.delete(flight);
    if (flights?.size === 0) this.#flights.delete(key);
  }

  // Called after writing the cache, so that any delete whose cache delete
  // came before that write has already deleted from the durable store, and
  // exists() sees it gone. Resolves to whether the session still exists; a
  // copy of a session that does not is removed, and an error removing it
  // fails the request, as delete() does.
  async #confirm(key: string, flight: Flight): Promise<boolean> {
    let alive = !flight.deleted;
    if (alive) {
      try {
        alive = await this.durable.exists(key) && !flight.deleted;
      } catch (error) {
        // Unknown: the copy goes (the cache is only an optimisation) and the
        // record read before stands, as a read before any delete would.
        this.#logger.warn(
          `Cannot confirm a cached session with the durable store (${storeName(this.durable)}): ${
            messageOf(error)
          }; the cached copy was removed`,
        );
        await this.#evict(key);
        return true;
      }
    }
    if (!alive) await this.#evict(key);
    return alive;
  }

  async #evict(key: string): Promise<void> {
    try {
      await this.#front.delete(key);
    } catch (error) {
      throw new Error(
        `Cannot remove a deleted session from the cache (${storeName(this.cache)}): ${
          messageOf(error)
        }`,
        { cause: error },
      );
    }
  }

  // Django's words, logged at its level (logger.exception).
  #saveFailed(error: unknown): void {
    this.#logger.error(`Error saving to cache (${storeName(this.cache)})`, error);
  }

  // Django says nothing here; a warning tells that the cache is not helping.
  #readFailed(error: unknown): void {
    const name = error instanceof Error ? error.name : typeof error;
    this.#logger.warn(
      `Error reading from cache (${storeName(this.cache)}): ${name}; the durable store answered`,
    );
  }
}

// One fill or update of a key, told by delete() when the key's record is gone.
interface Flight {
  deleted: boolean;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function isStore(value: unknown): value is SessionStore {
  const store = value as Record<string, unknown> | null;
  return typeof store === "object" && store !== null &&
    ["load", "exists", "create", "save", "delete", "clearExpired"].every((method) =>
      typeof store[method] === "function"
    );
}

function storeName(store: SessionStore): string {
  return (store as { constructor?: { name?: string } }).constructor?.name ?? "cache";
}
