/**
 * Sessions by user: an index from a user id to that user's live sessions,
 * for a "your devices" page, and a per-user generation number that ends
 * every older session of a user at once ("log out everywhere").
 *
 * @module
 */

import { SessionExistsError, SessionInterruptedError } from "./errors.ts";
import type { Logger } from "./logger.ts";
import type { SessionData } from "./serializer.ts";
import type { SessionStore, StoredSession } from "./stores/store.ts";
import { RedisBackend, type RedisUserIndexOptions } from "./_users_redis.ts";
import {
  PostgresBackend,
  type PostgresUserIndexOptions,
  SqliteBackend,
  type SqliteUserIndexOptions,
} from "./_users_sql.ts";

export type { PostgresUserIndexOptions, RedisUserIndexOptions, SqliteUserIndexOptions };

// No browser keeps a cookie longer than 400 days (RFC 6265bis section
// 5.6.1), so a generation bumped that long ago can no longer matter.
const GENERATION_LIFETIME_MS = 400 * 24 * 60 * 60 * 1000;
// A user record is rewritten by every save of that user's sessions; a
// runaway number of them (a script logging in in a loop) must not make
// each write bigger without bound.
const MAX_SESSIONS_PER_USER = 200;
const EMPTY_INDEX_LIFETIME_MS = 24 * 60 * 60 * 1000;
const MAX_ATTEMPTS = 5;

// Called by the session only, not part of the public API.
export const CONFIGURE: unique symbol = Symbol("configure");
export const TRACK: unique symbol = Symbol("track");
export const UNTRACK: unique symbol = Symbol("untrack");
export const CHECK: unique symbol = Symbol("check");

/** The options of {@link UserSessions}. */
export interface UserSessionsOptions {
  /**
   * The engine the sessions live in: the same instance given to
   * `withSessions` as `store`. Revoking a session deletes its record there.
   */
  sessions: SessionStore;
  /**
   * Where the index and the generation numbers live, one record per user:
   * a store of its own (a side table of the same SQLite or PostgreSQL
   * database, another directory, another KV prefix), never the session
   * table itself; or a native index, each session an entry of its own that
   * concurrent processes never overwrite: `{ sqlite: store or file }` and
   * `{ postgres: client }` (side tables, a row per session), or
   * `{ redis: client }` (a hash per user). Every server process must share
   * it for a revocation to reach them all.
   */
  index:
    | SessionStore
    | SqliteUserIndexOptions
    | PostgresUserIndexOptions
    | RedisUserIndexOptions;
  /**
   * The session data key that holds the user id. Django's login stores it
   * under `_auth_user_id`, so sessions shared with Django are indexed too.
   *
   * @default {"_auth_user_id"}
   */
  userKey?: string;
  /**
   * Session data keys copied into the index at each save, for a "your
   * devices" page (say, a user agent the application stores at login).
   *
   * @default {[]}
   */
  metadataKeys?: readonly string[];
}

/** One live session of a user, as a "your devices" page shows it. */
export interface UserSessionInfo {
  /** An opaque id of the session, derived from its key but not the key. */
  readonly id: string;
  /** When the session was first saved for this user (ms since the epoch). */
  readonly createdAt: number;
  /** When it was last saved (ms since the epoch). */
  readonly savedAt: number;
  /** When it expires unless saved again (ms since the epoch). */
  readonly expiresAt: number;
  /** The values of `metadataKeys` at its last save. */
  readonly metadata: Readonly<Record<string, unknown>>;
}

/** @ignore One session in a user's index. */
export interface Entry {
  k: string;
  c: number;
  t: number;
  e: number;
  m: Record<string, unknown>;
}

interface UserRecord {
  s: Record<string, Entry>;
}

// Kept apart from the index, and only ever written by logoutEverywhere():
// an index update racing with a bump can then never undo it.
export interface Generation {
  g: number;
  // When it was bumped (ms since the epoch).
  at: number;
}

/**
 * The sessions of each user. Give it to `withSessions` as `users`: every
 * save, `cycleKey()` and `flush()` of a session whose data holds a user id
 * then keeps the index up to date, and every load checks the user's
 * generation number.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getSession, MemoryStore, UserSessions, withSessions } from "@tessera/sessions";
 *
 * const store = new MemoryStore();
 * const users = new UserSessions({ sessions: store, index: new MemoryStore() });
 * const app = withSessions(async (req) => {
 *   const session = await getSession(req);
 *   session.set("_auth_user_id", "42");
 *   await session.cycleKey();
 *   return new Response("ok");
 * }, { store, users });
 * await app(new Request("http://localhost/login"));
 * const devices = await users.list("42");
 * assert.equal(devices.length, 1);
 * await users.logoutEverywhere("42");
 * assert.deepEqual(await users.list("42"), []);
 * ```
 */
export class UserSessions {
  /** The session data key that holds the user id. */
  readonly userKey: string;
  readonly #sessions: SessionStore;
  readonly #backend: UserBackend;
  readonly #metadataKeys: readonly string[];
  #logger: Logger = console;

  /**
   * The sessions of each user, indexed in `options.index`.
   *
   * @param options Where the sessions and the index live.
   * @throws {TypeError} when `index` is the session store itself.
   * @example
   * ```ts
   * import { MemoryStore, UserSessions } from "@tessera/sessions";
   *
   * const users = new UserSessions({ sessions: new MemoryStore(), index: new MemoryStore() });
   * ```
   */
  constructor(options: UserSessionsOptions) {
    const { sessions, index } = options;
    const native = typeof index === "object" && index !== null &&
      ("redis" in index || "sqlite" in index || "postgres" in index);
    if (
      typeof sessions?.delete !== "function" ||
      !(native || typeof (index as SessionStore)?.load === "function")
    ) {
      throw new TypeError(
        "Cannot create UserSessions as 'sessions' and 'index' must be session stores: current value is missing",
      );
    }
    if (sessions === index) {
      throw new TypeError(
        "Cannot create UserSessions as 'index' must be a store of its own: current value is the session store",
      );
    }
    const userKey = options.userKey ?? "_auth_user_id";
    if (typeof userKey !== "string" || userKey === "") {
      throw new TypeError(
        `Cannot create UserSessions as 'userKey' must be a non-empty string: current value is ${
          String(userKey)
        }`,
      );
    }
    this.userKey = userKey;
    this.#sessions = sessions;
    if (native && "redis" in index) {
      const { redis: client, prefix = "tessera:users:" } = index as RedisUserIndexOptions;
      this.#backend = new RedisBackend(client, prefix, recordKey, GENERATION_LIFETIME_MS);
    } else if (native && "sqlite" in index) {
      this.#backend = new SqliteBackend(index, recordKey, GENERATION_LIFETIME_MS);
    } else if (native && "postgres" in index) {
      this.#backend = new PostgresBackend(index, recordKey, GENERATION_LIFETIME_MS);
    } else {
      this.#backend = new StoreBackend(index as SessionStore);
    }
    this.#metadataKeys = [...(options.metadataKeys ?? [])];
  }

  /**
   * The live sessions of a user, most recently saved first.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MemoryStore, UserSessions } from "@tessera/sessions";
   *
   * const users = new UserSessions({ sessions: new MemoryStore(), index: new MemoryStore() });
   * assert.deepEqual(await users.list("7"), []);
   * ```
   */
  async list(userId: string): Promise<UserSessionInfo[]> {
    const entries = await this.#backend.entries(String(userId));
    const now = Date.now();
    return Object.entries(entries)
      .filter(([, entry]) => entry.e > now)
      .map(([id, entry]) => ({
        id,
        createdAt: entry.c,
        savedAt: entry.t,
        expiresAt: entry.e,
        metadata: entry.m,
      }))
      .sort((a, b) => b.savedAt - a.savedAt);
  }

  /**
   * The opaque id that {@link list} gives a session, from its key; `null`
   * for a session without a key. A page marks "this device" with it.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MemoryStore, UserSessions } from "@tessera/sessions";
   *
   * const users = new UserSessions({ sessions: new MemoryStore(), index: new MemoryStore() });
   * assert.equal(await users.idOf(null), null);
   * assert.match((await users.idOf("abcdefgh12345678"))!, /^[0-9a-f]{24}$/);
   * ```
   */
  async idOf(sessionKey: string | null): Promise<string | null> {
    return sessionKey === null ? null : await sessionId(sessionKey);
  }

  /**
   * Ends one session of a user: its record is deleted, so its next request,
   * on any server process sharing the store, finds no session. Returns
   * whether the user had a session of that id.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MemoryStore, UserSessions } from "@tessera/sessions";
   *
   * const users = new UserSessions({ sessions: new MemoryStore(), index: new MemoryStore() });
   * assert.equal(await users.revoke("7", "000000000000000000000000"), false);
   * ```
   */
  async revoke(userId: string, id: string): Promise<boolean> {
    const ended = await this.#backend.remove(String(userId), (each) => each === id);
    await Promise.all(ended.map((entry) => this.#sessions.delete(entry.k)));
    return ended.length > 0;
  }

  /**
   * Ends every indexed session of a user but the one whose key is
   * `currentKey` ("log out my other devices"), and returns how many ended.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MemoryStore, UserSessions } from "@tessera/sessions";
   *
   * const users = new UserSessions({ sessions: new MemoryStore(), index: new MemoryStore() });
   * assert.equal(await users.revokeOthers("7", null), 0);
   * ```
   */
  async revokeOthers(userId: string, currentKey: string | null): Promise<number> {
    const keep = currentKey === null ? null : await sessionId(currentKey);
    const ended = await this.#backend.remove(String(userId), (id) => id !== keep);
    await Promise.all(ended.map((entry) => this.#sessions.delete(entry.k)));
    return ended.length;
  }

  /**
   * Logs a user out everywhere: bumps the user's generation number, so
   * that every session saved before, indexed or not (a signed cookie, a
   * session a Django app created), is refused at its next load, and
   * deletes the indexed ones at once. Returns the new generation.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MemoryStore, UserSessions } from "@tessera/sessions";
   *
   * const users = new UserSessions({ sessions: new MemoryStore(), index: new MemoryStore() });
   * assert.equal(await users.logoutEverywhere("7"), 1);
   * assert.equal(await users.generation("7"), 1);
   * ```
   */
  async logoutEverywhere(userId: string): Promise<number> {
    const id = String(userId);
    const generation = await this.#backend.bump(id);
    const ended = await this.#backend.remove(id, () => true);
    await Promise.all(ended.map((entry) => this.#sessions.delete(entry.k)));
    return generation;
  }

  /**
   * The user's generation number: 0 until the first
   * {@link logoutEverywhere}. A session saved at a lower one is refused.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MemoryStore, UserSessions } from "@tessera/sessions";
   *
   * const users = new UserSessions({ sessions: new MemoryStore(), index: new MemoryStore() });
   * assert.equal(await users.generation("7"), 0);
   * ```
   */
  async generation(userId: string): Promise<number> {
    return (await this.#backend.generation(String(userId))).g;
  }

  /**
   * @ignore The generation a loaded session of `userId` may go on under,
   * or null when a bump ended it. `stamped` is the generation the session
   * was saved under by this library; a session without one (a Django
   * login) passes only if it was last saved after the bump.
   */
  async [CHECK](
    userId: string,
    stamped: number | null,
    savedAt: number | null,
  ): Promise<number | null> {
    const { g, at } = await this.#backend.generation(userId);
    if (g === 0) return 0;
    if (stamped !== null) return stamped >= g ? g : null;
    return savedAt !== null && savedAt > at ? g : null;
  }

  /**
   * Closes the database connection a `{ sqlite }` index opened; other
   * indexes belong to the application, which closes them itself.
   *
   * @example
   * ```ts
   * import { MemoryStore, UserSessions } from "@tessera/sessions";
   *
   * const users = new UserSessions({ sessions: new MemoryStore(), index: { sqlite: ":memory:" } });
   * users.close();
   * ```
   */
  close(): void {
    this.#backend.close?.();
  }

  /** @ignore Called by `withSessions`. */
  [CONFIGURE](logger: Logger): void {
    this.#logger = logger;
  }

  /** @ignore Records a saved session of a user; never throws. */
  async [TRACK](
    userId: string,
    key: string,
    data: SessionData,
    expiresAt: number,
    oldKey: string | null,
  ): Promise<void> {
    const metadata: Record<string, unknown> = {};
    for (const name of this.#metadataKeys) {
      if (Object.hasOwn(data, name)) metadata[name] = data[name];
    }
    const now = Date.now();
    try {
      const id = await sessionId(key);
      const oldId = oldKey === null || oldKey === key ? null : await sessionId(oldKey);
      await this.#backend.put(userId, id, oldId, (previous) => ({
        k: key,
        c: previous?.c ?? now,
        t: now,
        e: expiresAt,
        m: metadata,
      }));
    } catch (error) {
      // The session itself is saved and works; only the "your devices"
      // list misses it until its next save. Log out everywhere does not
      // depend on the index.
      this.#logger.error("Cannot index the session under its user: the user store failed", error);
    }
  }

  /** @ignore Forgets a deleted session; never throws. */
  async [UNTRACK](userId: string, key: string): Promise<void> {
    try {
      const id = await sessionId(key);
      await this.#backend.remove(userId, (each) => each === id);
    } catch (error) {
      this.#logger.error(
        "Cannot remove the session from its user's index: the user store failed",
        error,
      );
    }
  }
}

/** @ignore Where the index and the generations of users live. */
export interface UserBackend {
  entries(userId: string): Promise<Record<string, Entry>>;
  generation(userId: string): Promise<Generation>;
  bump(userId: string): Promise<number>;
  put(
    userId: string,
    id: string,
    oldId: string | null,
    make: (previous: Entry | undefined) => Entry,
  ): Promise<void>;
  remove(userId: string, select: (id: string) => boolean): Promise<Entry[]>;
  close?(): void;
}

// The index in any session store: one record per user for the list, one
// for the generation.
class StoreBackend implements UserBackend {
  readonly #index: SessionStore;
  readonly #queues = new Map<string, Promise<void>>();

  constructor(index: SessionStore) {
    this.#index = index;
  }

  async entries(userId: string): Promise<Record<string, Entry>> {
    return (await this.#read(userId)).s;
  }

  generation(userId: string): Promise<Generation> {
    return this.#generation(userId);
  }

  bump(userId: string): Promise<number> {
    return this.#bump(userId);
  }

  put(
    userId: string,
    id: string,
    oldId: string | null,
    make: (previous: Entry | undefined) => Entry,
  ): Promise<void> {
    return this.#update(userId, (record) => {
      if (oldId !== null) delete record.s[oldId];
      record.s[id] = make(record.s[id]);
    });
  }

  async remove(userId: string, select: (id: string) => boolean): Promise<Entry[]> {
    let ended: Entry[] = [];
    await this.#update(userId, (record) => {
      ended = [];
      for (const [id, entry] of Object.entries(record.s)) {
        if (!select(id)) continue;
        ended.push(entry);
        delete record.s[id];
      }
    });
    return ended;
  }

  async #read(userId: string): Promise<UserRecord> {
    return parseRecord(await this.#index.load(await recordKey("u", userId)));
  }

  async #generation(userId: string): Promise<Generation> {
    return parseGeneration(await this.#index.load(await recordKey("g", userId)));
  }

  async #bump(userId: string): Promise<number> {
    const key = await recordKey("g", userId);
    let generation = 0;
    await this.#put(key, (stored) => {
      const now = Date.now();
      generation = parseGeneration(stored).g + 1;
      return {
        data: JSON.stringify({ g: generation, at: now } satisfies Generation),
        expiresAt: now + GENERATION_LIFETIME_MS,
      };
    });
    return generation;
  }

  // Read, change and write one user's record; a write that lost a race with
  // another process's (a create that found the key taken, an update of a
  // record deleted meanwhile) is retried on the new state.
  #update(userId: string, change: (record: UserRecord) => void): Promise<void> {
    // Updates of one user from this process run one at a time, so that
    // concurrent logins do not overwrite each other's entries.
    const previous = this.#queues.get(userId) ?? Promise.resolve();
    const next = previous.then(() => this.#write(userId, change));
    const tail = next.catch(() => {});
    this.#queues.set(userId, tail);
    void tail.then(() => {
      if (this.#queues.get(userId) === tail) this.#queues.delete(userId);
    });
    return next;
  }

  async #write(userId: string, change: (record: UserRecord) => void): Promise<void> {
    await this.#put(await recordKey("u", userId), (stored) => {
      const record = parseRecord(stored);
      change(record);
      const now = Date.now();
      const live = Object.entries(record.s).filter(([, entry]) => entry.e > now)
        .sort(([, a], [, b]) => b.t - a.t).slice(0, MAX_SESSIONS_PER_USER);
      record.s = Object.fromEntries(live);
      // An empty index is left to expire rather than deleted: an engine
      // may refuse a key it deleted for a while (FileStore's tombstones).
      let expiresAt = now + EMPTY_INDEX_LIFETIME_MS;
      for (const [, entry] of live) expiresAt = Math.max(expiresAt, entry.e);
      return { data: JSON.stringify(record), expiresAt };
    });
  }

  // Read a record, make its next version, write it; a write that lost a
  // race (a create that found the key taken, an update that found it gone
  // or expired) is made again on what the store holds then.
  async #put(key: string, next: (stored: StoredSession | null) => StoredSession): Promise<void> {
    let create: boolean | null = null;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const stored = await this.#index.load(key);
      create ??= stored === null;
      try {
        await this.#index.save(key, next(stored), create);
        return;
      } catch (error) {
        if (error instanceof SessionExistsError) create = false;
        else if (error instanceof SessionInterruptedError) create = true;
        else throw error;
      }
    }
    throw new Error(
      `Cannot update the sessions of a user as ${MAX_ATTEMPTS} writes in a row lost a race`,
    );
  }
}

function parseRecord(stored: StoredSession | null): UserRecord {
  if (stored === null) return { s: {} };
  try {
    const value = JSON.parse(stored.data) as UserRecord;
    if (typeof value.s === "object" && value.s !== null) return { s: value.s };
  } catch {
    // A damaged index: start it again; it only serves the list.
  }
  return { s: {} };
}

function parseGeneration(stored: StoredSession | null): Generation {
  if (stored === null) return { g: 0, at: 0 };
  let value: Partial<Generation> | null = null;
  try {
    value = JSON.parse(stored.data);
  } catch {
    // Handled below.
  }
  if (!Number.isSafeInteger(value?.g) || !Number.isFinite(value?.at)) {
    // Reading it as 0 would bring back every session it ended.
    throw new Error("Cannot read a user's generation as its record is damaged");
  }
  return { g: value!.g!, at: value!.at! };
}

const encoder = new TextEncoder();

async function sha256Hex(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

// A valid session key (a-z0-9, 40 characters) for the index store: "u"
// for a user's index, "g" for a user's generation.
async function recordKey(kind: "u" | "g", userId: string): Promise<string> {
  return kind + (await sha256Hex(`tessera user\n${userId}`)).slice(0, 39);
}

// Opaque: the page that shows it must not hand out the key itself.
async function sessionId(key: string): Promise<string> {
  return (await sha256Hex(`tessera session\n${key}`)).slice(0, 24);
}
