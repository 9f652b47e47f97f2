/**
 * The one interface every session engine implements.
 *
 * @module
 */

import { generateKey } from "../_key.ts";
import { SessionExistsError } from "../errors.ts";
import type { Logger } from "../logger.ts";

/**
 * One session as a store keeps it: the serialized data and the instant it
 * expires. Stores treat `data` as opaque text.
 *
 * @example
 * ```ts
 * import type { StoredSession } from "@tessera/sessions";
 *
 * const record: StoredSession = { data: '{"visits":1}', expiresAt: Date.now() + 60_000 };
 * ```
 */
export interface StoredSession {
  /**
   * The session data as the serializer wrote it (Django's `session_data`).
   */
  data: string;
  /**
   * When the session expires, in milliseconds since the epoch. A store
   * never returns a record whose `expiresAt` has passed.
   */
  expiresAt: number;
  /**
   * Set by a store on a loaded record that should be saved again on this
   * request even if the handler changes nothing: the signed-cookie engine
   * sets it for a cookie verified with an old secret, so that the response
   * re-signs it with the current one.
   */
  refresh?: true;
}

/**
 * What `withSessions` tells its store once, when it is set up.
 *
 * @example
 * ```ts
 * import type { StoreSettings } from "@tessera/sessions";
 *
 * const settings: StoreSettings = {
 *   cookieName: "sessionid",
 *   cookieAge: 1_209_600,
 *   secrets: [],
 *   logger: console,
 * };
 * ```
 */
export interface StoreSettings {
  /**
   * The session cookie's name (the file engine's default file prefix).
   */
  cookieName: string;
  /**
   * The session lifetime in seconds.
   */
  cookieAge: number;
  /**
   * The secrets, the first one current (empty when none was given).
   */
  secrets: readonly string[];
  /**
   * Where to report what the store ignored or could not do.
   */
  logger: Logger;
}

/**
 * A session engine (Django's `SessionStore` backend). A new engine is one
 * class implementing this interface.
 *
 * Keys reaching a store may come from a client: a store answers an unknown,
 * malformed or expired key with `null` / `false`, never with an error, and
 * never uses it to build a path or a query unchecked.
 *
 * @example A store is used through withSessions
 * ```ts
 * import { MemoryStore, withSessions, type SessionStore } from "@tessera/sessions";
 *
 * const store: SessionStore = new MemoryStore();
 * const handler = withSessions(() => new Response("ok"), { store });
 * ```
 */
export interface SessionStore {
  /**
   * True for a store whose records expire by themselves (a Redis TTL, a
   * signed cookie's timestamp): `clearExpired()` then has nothing to do and
   * the sweeper says so instead of sweeping.
   */
  readonly expiresOnItsOwn?: boolean;
  /**
   * True for a store that authenticates its records itself (the
   * signed-cookie engine). For every other store, `withSessions` with a
   * `secret` signs each record (its key, expiry and data together) before
   * the store keeps it, and ignores a record it did not sign.
   */
  readonly authenticatesRecords?: boolean;
  /**
   * Whether a cookie value can be one of this store's keys. Without it, a
   * key is 8 to 40 characters of `a-z0-9`; a store whose key is something
   * else (the signed-cookie engine's signed value) says what it accepts.
   * A value it rejects is treated as no key at all.
   *
   * @example
   * ```ts
   * import type { SessionStore } from "@tessera/sessions";
   *
   * const accepts: SessionStore["isValidKey"] = (value) => /^[A-Za-z0-9_:.-]+$/.test(value);
   * ```
   */
  isValidKey?(value: string): boolean;
  /**
   * Called once by `withSessions` with its settings; a store may take
   * defaults from them or reject a configuration it cannot serve.
   *
   * @example
   * ```ts
   * import { FileStore } from "@tessera/sessions";
   *
   * const store = new FileStore();
   * store.configure({ cookieName: "sid", cookieAge: 60, secrets: [], logger: console });
   * ```
   */
  configure?(settings: StoreSettings): void;
  /**
   * The live record stored under `key`, or `null` when the key is unknown,
   * expired, malformed or its record is corrupt.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MemoryStore } from "@tessera/sessions";
   *
   * assert.equal(await new MemoryStore().load("unknownkey123"), null);
   * ```
   */
  load(key: string): Promise<StoredSession | null>;
  /**
   * Whether a record is stored under `key` (expired or not, as in Django).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MemoryStore } from "@tessera/sessions";
   *
   * assert.equal(await new MemoryStore().exists("unknownkey123"), false);
   * ```
   */
  exists(key: string): Promise<boolean>;
  /**
   * Stores `record` under a new key no other record has, and returns the key.
   *
   * @example
   * ```ts
   * import { MemoryStore } from "@tessera/sessions";
   *
   * const key = await new MemoryStore().create({ data: "{}", expiresAt: Date.now() + 1000 });
   * ```
   */
  create(record: StoredSession): Promise<string>;
  /**
   * Stores `record` under `key` and returns the key it now lives under.
   * With `mustCreate`, throws `SessionExistsError` if the key is taken;
   * without it, throws `SessionInterruptedError` if the record is gone
   * (deleted by a concurrent request), rather than bring it back. A store
   * whose key is the data itself (the signed-cookie engine) returns the new
   * key; every other store returns `key`.
   *
   * @example
   * ```ts
   * import { MemoryStore } from "@tessera/sessions";
   *
   * const store = new MemoryStore();
   * const key = await store.create({ data: "{}", expiresAt: Date.now() + 1000 });
   * await store.save(key, { data: '{"a":1}', expiresAt: Date.now() + 1000 });
   * ```
   */
  save(key: string, record: StoredSession, mustCreate?: boolean): Promise<string>;
  /**
   * Removes the record stored under `key`; an unknown key is not an error.
   *
   * @example
   * ```ts
   * import { MemoryStore } from "@tessera/sessions";
   *
   * await new MemoryStore().delete("unknownkey123");
   * ```
   */
  delete(key: string): Promise<void>;
  /**
   * Removes every expired record and returns how many it removed.
   *
   * @example
   * ```ts
   * import { MemoryStore } from "@tessera/sessions";
   *
   * const removed = await new MemoryStore().clearExpired();
   * ```
   */
  clearExpired(): Promise<number>;
  /**
   * Optional: `clearExpired()` with a dry run, progress and a fuller
   * report, for the `clearsessions` command. A store that has it also
   * accepts the same options in `clearExpired()`.
   *
   * @example
   * ```ts
   * import { FileStore } from "@tessera/sessions";
   *
   * const store = new FileStore({ path: Deno.makeTempDirSync() });
   * const { removed, kept } = await store.sweep({ dryRun: true });
   * ```
   */
  sweep?(options?: SweepOptions): Promise<SweepReport>;
}

/**
 * How a store sweeps expired sessions (`store.sweep()`, and `clearExpired()`
 * on a store that has `sweep()`).
 *
 * @example
 * ```ts
 * import type { SweepOptions } from "@tessera/sessions";
 *
 * const options: SweepOptions = { dryRun: true, onProgress: (checked) => console.log(checked) };
 * ```
 */
export interface SweepOptions {
  /**
   * Count what would be removed and remove nothing.
   *
   * @default {false}
   */
  dryRun?: boolean;
  /**
   * Called now and then during the sweep, and once at its end, with how many
   * entries were checked so far.
   */
  onProgress?: (checked: number) => void;
  /**
   * The instant, in milliseconds since the epoch, that expiries are compared
   * with: what expired at or before it is removed. Tests and benchmarks move
   * it; a later instant removes sessions that are still live now.
   *
   * @default {Date.now()}
   */
  now?: number;
  /**
   * Seconds a record whose own expiry cannot be read lives after its last
   * modification, as Django's file engine judges a session without a custom
   * expiry. Stores that always know each record's expiry ignore it.
   *
   * @default {the cookieAge given to withSessions, two weeks by default}
   */
  cookieAge?: number;
}

/**
 * What a sweep did (or, in a dry run, would do).
 *
 * @example
 * ```ts
 * import type { SweepReport } from "@tessera/sessions";
 *
 * const report: SweepReport = { removed: 2, kept: 5, tempRemoved: 0, failed: 0, errors: [] };
 * ```
 */
export interface SweepReport {
  /**
   * Expired sessions removed.
   */
  removed: number;
  /**
   * Live sessions left in place, including any saved again during the sweep.
   */
  kept: number;
  /**
   * Leftovers of interrupted writes removed (the file engine's old temp files).
   */
  tempRemoved: number;
  /**
   * Entries that could not be checked or removed; the sweep goes on past them.
   */
  failed: number;
  /**
   * The messages of the first few failures; they never name a session key.
   */
  errors: string[];
}

// A 165-bit key collides about never; a run of collisions means a store that
// answers "taken" to everything, which should fail loudly, not loop.
const MAX_CREATE_ATTEMPTS = 100;

/**
 * Runs `insert` with fresh keys until one is not taken, as Django's
 * `create()` does, and returns that key. `insert` throws
 * `SessionExistsError` for a taken key; any other error ends the loop.
 */
export async function createWithUniqueKey(
  insert: (key: string) => Promise<unknown>,
): Promise<string> {
  for (let attempt = 0; attempt < MAX_CREATE_ATTEMPTS; attempt++) {
    const key = generateKey();
    try {
      await insert(key);
      return key;
    } catch (error) {
      if (!(error instanceof SessionExistsError)) throw error;
    }
  }
  throw new Error(
    `Cannot create a session as ${MAX_CREATE_ATTEMPTS} new keys in a row were reported as taken`,
  );
}
