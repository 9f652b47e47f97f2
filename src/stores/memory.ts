/**
 * Sessions in the server's memory (Django's `backends.cache` with a local
 * memory cache).
 *
 * @module
 */

import { SessionExistsError, SessionInterruptedError } from "../errors.ts";
import { createWithUniqueKey, type SessionStore, type StoredSession } from "./store.ts";

/**
 * Options of {@link MemoryStore}.
 *
 * @example
 * ```ts
 * import { MemoryStore, type MemoryStoreOptions } from "@tessera/sessions";
 *
 * const options: MemoryStoreOptions = { maxEntries: 100_000 };
 * new MemoryStore(options);
 * ```
 */
export interface MemoryStoreOptions {
  /**
   * The most sessions kept at once; past it, the least recently used one is
   * dropped, so a flood of new sessions cannot exhaust memory.
   *
   * @default {10000}
   */
  maxEntries?: number;
}

/**
 * Sessions in a bounded, expiry-aware map inside this process: fast, and
 * gone when the process ends or on another server. Keeps copies, not the
 * objects a handler holds: what is stored is the serialized text.
 *
 * @example
 * ```ts
 * import { MemoryStore, withSessions } from "@tessera/sessions";
 *
 * const handler = withSessions(() => new Response("ok"), {
 *   store: new MemoryStore({ maxEntries: 50_000 }),
 * });
 * ```
 */
export class MemoryStore implements SessionStore {
  /**
   * The most sessions kept at once.
   */
  readonly maxEntries: number;
  // A Map iterates in insertion order: re-inserting on use keeps the least
  // recently used entry first, where eviction takes it.
  readonly #entries = new Map<string, StoredSession>();
  // Where eviction goes on from. A fresh keys() iterator would walk over
  // every slot that evictions and re-insertions have emptied since the map
  // last compacted, thousands of them per eviction; this one moves forward
  // only. Every key it has passed was evicted, so the next key it yields is
  // the least recently used one.
  #oldest: Iterator<string> | undefined;

  /**
   * An empty store.
   *
   * @throws {RangeError} when `maxEntries` is not a positive whole number.
   * @example
   * ```ts
   * import { MemoryStore } from "@tessera/sessions";
   *
   * const store = new MemoryStore({ maxEntries: 1000 });
   * ```
   */
  constructor(options: MemoryStoreOptions = {}) {
    const maxEntries = options.maxEntries ?? 10_000;
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
      throw new RangeError(
        `Cannot create a MemoryStore as 'maxEntries' must be a positive whole number: current value is ${maxEntries}`,
      );
    }
    this.maxEntries = maxEntries;
  }

  /**
   * How many sessions are held, expired ones not yet dropped included.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MemoryStore } from "@tessera/sessions";
   *
   * assert.equal(new MemoryStore().size, 0);
   * ```
   */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * The live session under `key`, or `null`; an expired one is dropped.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MemoryStore } from "@tessera/sessions";
   *
   * assert.equal(await new MemoryStore().load("abcdefgh12345678"), null);
   * ```
   */
  load(key: string): Promise<StoredSession | null> {
    const entry = this.#entries.get(key);
    if (entry === undefined) return Promise.resolve(null);
    this.#entries.delete(key);
    if (entry.expiresAt <= Date.now()) return Promise.resolve(null);
    this.#entries.set(key, entry);
    return Promise.resolve({ data: entry.data, expiresAt: entry.expiresAt });
  }

  /**
   * Whether a session is held under `key`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MemoryStore } from "@tessera/sessions";
   *
   * assert.equal(await new MemoryStore().exists("abcdefgh12345678"), false);
   * ```
   */
  exists(key: string): Promise<boolean> {
    return Promise.resolve(this.#entries.has(key));
  }

  /**
   * Holds `record` under a new key.
   *
   * @example
   * ```ts
   * import { MemoryStore } from "@tessera/sessions";
   *
   * const key = await new MemoryStore().create({ data: "{}", expiresAt: Date.now() + 1000 });
   * ```
   */
  create(record: StoredSession): Promise<string> {
    return createWithUniqueKey((key) => this.save(key, record, true));
  }

  /**
   * Holds `record` under `key`.
   *
   * @example
   * ```ts
   * import { MemoryStore } from "@tessera/sessions";
   *
   * await new MemoryStore().save("abcdefgh12345678", { data: "{}", expiresAt: Date.now() + 1000 }, true);
   * ```
   */
  save(key: string, record: StoredSession, mustCreate = false): Promise<string> {
    const entries = this.#entries;
    const present = entries.has(key);
    if (mustCreate && present) return Promise.reject(new SessionExistsError());
    if (!mustCreate && !present) return Promise.reject(new SessionInterruptedError());
    if (present) {
      entries.delete(key);
    } else {
      while (entries.size >= this.maxEntries) this.#evictOldest();
    }
    entries.set(key, { data: record.data, expiresAt: record.expiresAt });
    return Promise.resolve(key);
  }

  #evictOldest(): void {
    let next = this.#oldest?.next();
    if (next === undefined || next.done === true) {
      this.#oldest = this.#entries.keys();
      next = this.#oldest.next();
    }
    if (next.done !== true) this.#entries.delete(next.value);
  }

  /**
   * Drops the session under `key`, if any.
   *
   * @example
   * ```ts
   * import { MemoryStore } from "@tessera/sessions";
   *
   * await new MemoryStore().delete("abcdefgh12345678");
   * ```
   */
  delete(key: string): Promise<void> {
    this.#entries.delete(key);
    return Promise.resolve();
  }

  /**
   * Drops every expired session.
   *
   * @returns How many it dropped.
   * @example
   * ```ts
   * import { MemoryStore } from "@tessera/sessions";
   *
   * const removed = await new MemoryStore().clearExpired();
   * ```
   */
  clearExpired(): Promise<number> {
    const now = Date.now();
    let removed = 0;
    for (const [key, entry] of this.#entries) {
      if (entry.expiresAt <= now) {
        this.#entries.delete(key);
        removed++;
      }
    }
    return Promise.resolve(removed);
  }
}
