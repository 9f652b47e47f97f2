/**
 * The session object a handler gets from `getSession` (Django's
 * `SessionBase`).
 *
 * @module
 */

import { isValidKey } from "./_key.ts";
import { SessionExistsError, SessionInterruptedError, SessionStoreError } from "./errors.ts";
import type { Logger } from "./logger.ts";
import type { Serializer, SessionData } from "./serializer.ts";
import type { SessionStore, StoredSession } from "./stores/store.ts";
import { CHECK, TRACK, UNTRACK, type UserSessions } from "./users.ts";

// Django keeps a custom expiry inside the data under this name, so stored
// sessions stay readable by Django; Tessera hides it from keys() and items().
const EXPIRY_KEY = "_session_expiry";
// When the session started (whole seconds since the epoch), for the absolute
// timeout: kept in the data, so that it travels with signed cookies too.
const START_KEY = "_session_start";
// The user's generation number when the session was saved (UserSessions).
const GENERATION_KEY = "_session_generation";
const HIDDEN_KEYS: ReadonlySet<string> = new Set([EXPIRY_KEY, START_KEY, GENERATION_KEY]);
const TEST_COOKIE_NAME = "testcookie";
const TEST_COOKIE_VALUE = "worked";

/**
 * What a session needs to know besides its key. `withSessions` builds it
 * from {@link SessionOptions}; build one directly only to use a session
 * outside a server (a script, a test).
 *
 * @example
 * ```ts
 * import { JSON_SERIALIZER, MemoryStore, type SessionConfig } from "@tessera/sessions";
 *
 * const config: SessionConfig = {
 *   store: new MemoryStore(),
 *   cookieAge: 1_209_600,
 *   expireAtBrowserClose: false,
 *   serializer: JSON_SERIALIZER,
 *   logger: console,
 * };
 * ```
 */
export interface SessionConfig {
  /**
   * The engine the session is kept in.
   */
  store: SessionStore;
  /**
   * Seconds a session lives after its last save (`SESSION_COOKIE_AGE`).
   */
  cookieAge: number;
  /**
   * Whether sessions without their own expiry end with the browser.
   */
  expireAtBrowserClose: boolean;
  /**
   * How the data becomes stored text.
   */
  serializer: Serializer;
  /**
   * Where corrupt stored sessions are reported.
   */
  logger: Logger;
  /**
   * Seconds a session may live from its start (its first save, its last
   * `cycleKey()` or `flush()`), whatever renewals do; `null` for no cap.
   *
   * @default {null}
   */
  absoluteTimeout?: number | null;
  /**
   * The fraction of its lifetime after which a load marks an unchanged
   * session modified, so that it is saved again; `null` never does.
   *
   * @default {null}
   */
  renewAfter?: number | null;
  /**
   * The index of sessions by user, and the generation check on load.
   *
   * @default {null}
   */
  users?: UserSessions | null;
  /**
   * A check of the loaded data: a session it returns `false` for is
   * treated as absent.
   *
   * @default {null}
   */
  verifySession?: ((data: Readonly<SessionData>) => boolean | Promise<boolean>) | null;
}

/**
 * The instant and base for the expiry calculations, as Django's
 * `get_expiry_age(modification=..., expiry=...)` keyword arguments.
 *
 * @example
 * ```ts
 * import type { ExpiryOptions } from "@tessera/sessions";
 *
 * const options: ExpiryOptions = { modification: new Date(), expiry: 10 };
 * ```
 */
export interface ExpiryOptions {
  /**
   * The instant of the last save. Defaults to now.
   */
  modification?: Date;
  /**
   * The expiry setting to use instead of the session's own: seconds, a
   * `Date`, an ISO string, or `null` for the default policy.
   */
  expiry?: number | Date | string | null;
}

/**
 * A session: a dictionary of JSON values tied to a key in a cookie, with
 * Django's semantics for every method. `T` types the data.
 *
 * Reading sets `accessed` (the response then varies by cookie); changing sets
 * `modified` (the middleware then saves it and sets the cookie). A value that
 * is changed in place (`session.get("cart").push(x)`) is not seen: `set` it
 * again, as in Django.
 *
 * @example Typed session data
 * ```ts
 * import assert from "node:assert/strict";
 * import { getSession, MemoryStore, withSessions } from "@tessera/sessions";
 *
 * interface Visit { visits: number }
 * const handler = withSessions(async (req) => {
 *   const session = await getSession<Visit>(req);
 *   session.set("visits", (session.get("visits") ?? 0) + 1);
 *   return new Response(String(session.get("visits")));
 * }, { store: new MemoryStore() });
 *
 * const response = await handler(new Request("http://localhost/"));
 * assert.equal(await response.text(), "1");
 * assert.match(response.headers.get("set-cookie") ?? "", /^sessionid=[a-z0-9]{32};/);
 * ```
 */
export class Session<T extends object = SessionData> {
  /**
   * Whether the data was read or changed during this request (Django's
   * `accessed`). The middleware then adds `Vary: Cookie`.
   */
  accessed = false;
  /**
   * Whether the data changed during this request (Django's `modified`). The
   * middleware then saves the session and sets the cookie.
   */
  modified = false;

  #key: string | null;
  #data: SessionData | null = null;
  // Django's representation: whole seconds, or an ISO date string; null = unset.
  #expiry: number | string | null = null;
  // Whole seconds since the epoch; null = not started (or not tracked).
  #start: number | null = null;
  // The user's generation number the session was saved under.
  #generation: number | null = null;
  // The user id #generation belongs to: another user's is read anew.
  #generationUser: string | null = null;
  readonly #config: SessionConfig;

  /**
   * A session for `key` (a cookie value), not loaded yet. A value that is not
   * a well-formed key counts as no key. `getSession` makes sessions; make
   * one directly only outside a server.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { JSON_SERIALIZER, MemoryStore, Session } from "@tessera/sessions";
   *
   * const config = { store: new MemoryStore(), cookieAge: 60, expireAtBrowserClose: false, serializer: JSON_SERIALIZER, logger: console };
   * assert.equal(new Session("1234567", config).sessionKey, null);
   * assert.equal(new Session("12345678", config).sessionKey, "12345678");
   * ```
   */
  constructor(key: string | null, config: SessionConfig) {
    const store = config.store;
    const valid = key !== null &&
      (store.isValidKey === undefined ? isValidKey(key) : store.isValidKey(key));
    this.#key = valid ? key : null;
    this.#config = config;
  }

  /**
   * The session key, or `null` until the session is first saved. Read-only.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { JSON_SERIALIZER, MemoryStore, Session } from "@tessera/sessions";
   *
   * const config = { store: new MemoryStore(), cookieAge: 60, expireAtBrowserClose: false, serializer: JSON_SERIALIZER, logger: console };
   * const session = new Session(null, config);
   * session.set("x", 1);
   * await session.save();
   * assert.match(session.sessionKey ?? "", /^[a-z0-9]{32}$/);
   * ```
   */
  get sessionKey(): string | null {
    return this.#key;
  }

  /**
   * Reads the session from the store, once. An unknown, expired or corrupt
   * key leaves an empty session with no key, so that a client-chosen key is
   * never adopted. `getSession` calls it for you.
   *
   * @throws {SessionStoreError} when the store fails.
   * @example
   * ```ts
   * import { JSON_SERIALIZER, MemoryStore, Session } from "@tessera/sessions";
   *
   * const config = { store: new MemoryStore(), cookieAge: 60, expireAtBrowserClose: false, serializer: JSON_SERIALIZER, logger: console };
   * const session = new Session("unknownkey123", config);
   * await session.load();
   * ```
   */
  async load(): Promise<void> {
    if (this.#data !== null) return;
    const key = this.#key;
    if (key === null) {
      this.#data = {};
      return;
    }
    let record: StoredSession | null;
    try {
      record = await this.#config.store.load(key);
    } catch (error) {
      throw new SessionStoreError("Cannot load the session", error);
    }
    let data = record === null ? null : this.#decode(record.data);
    if (data !== null && !(await this.#accepts(data, record!.expiresAt))) data = null;
    if (data === null) {
      this.#key = null;
      this.#expiry = null;
      this.#start = null;
      this.#generation = null;
    } else if (record!.refresh === true || this.#renewalDue(record!.expiresAt)) {
      this.modified = true;
    }
    this.#data = data ?? {};
  }

  /**
   * When the session started: its first save, or its last `cycleKey()` or
   * `flush()`; `null` before that, or without `absoluteTimeout` (the start
   * is only kept for it).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { JSON_SERIALIZER, MemoryStore, Session } from "@tessera/sessions";
   *
   * const config = { store: new MemoryStore(), cookieAge: 60, expireAtBrowserClose: false, serializer: JSON_SERIALIZER, logger: console, absoluteTimeout: 3600 };
   * const session = new Session(null, config);
   * session.set("x", 1);
   * await session.save();
   * assert.ok(session.getStartDate() instanceof Date);
   * ```
   */
  getStartDate(): Date | null {
    return this.#start === null ? null : new Date(this.#start * 1000);
  }

  // Whether a loaded session may be used: its absolute timeout, the
  // application's check, and its user's generation number.
  async #accepts(data: SessionData, expiresAt: number): Promise<boolean> {
    const config = this.#config;
    const timeout = config.absoluteTimeout ?? null;
    if (timeout !== null && this.#start !== null && Date.now() >= (this.#start + timeout) * 1000) {
      return false;
    }
    const verify = config.verifySession ?? null;
    if (verify !== null) {
      let accepted: boolean;
      try {
        accepted = await verify(data);
      } catch (error) {
        throw new SessionStoreError("Cannot load the session as verifySession failed", error);
      }
      if (!accepted) return false;
    }
    const users = config.users ?? null;
    if (users !== null && Object.hasOwn(data, users.userKey)) {
      // When it was last saved, from its expiry: known unless the expiry is a date.
      const savedAt = typeof this.#expiry === "string"
        ? null
        : expiresAt - (this.#expiry || this.#config.cookieAge) * 1000;
      let current: number | null;
      try {
        current = await users[CHECK](String(data[users.userKey]), this.#generation, savedAt);
      } catch (error) {
        throw new SessionStoreError(
          "Cannot load the session as its user's generation is unreadable",
          error,
        );
      }
      if (current === null) return false;
      this.#generation = current;
      this.#generationUser = String(data[users.userKey]);
    }
    return true;
  }

  // Renewal without a write per request: an unchanged session is saved
  // again once `renewAfter` of its lifetime has passed.
  #renewalDue(expiresAt: number): boolean {
    const fraction = this.#config.renewAfter ?? null;
    if (fraction === null || !Number.isFinite(expiresAt)) return false;
    const timeout = this.#config.absoluteTimeout ?? null;
    // Past the point where the absolute timeout, not the idle one, sets the
    // expiry, a save cannot extend the session: it would only write.
    if (timeout !== null && this.#start !== null && (this.#start + timeout) * 1000 <= expiresAt) {
      return false;
    }
    const lifetime = this.getExpiryAge() * 1000;
    return lifetime - (expiresAt - Date.now()) >= fraction * lifetime;
  }

  /**
   * The value stored under `key`, or `fallback` when there is none.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { JSON_SERIALIZER, MemoryStore, Session } from "@tessera/sessions";
   *
   * const config = { store: new MemoryStore(), cookieAge: 60, expireAtBrowserClose: false, serializer: JSON_SERIALIZER, logger: console };
   * const session = new Session(null, config);
   * assert.equal(session.get("cat"), undefined);
   * assert.equal(session.get("cat", "dog"), "dog");
   * ```
   */
  get<K extends keyof T & string>(key: K): T[K] | undefined;
  /**
   * The value stored under `key`, or `fallback` when there is none.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { JSON_SERIALIZER, MemoryStore, Session } from "@tessera/sessions";
   *
   * const config = { store: new MemoryStore(), cookieAge: 60, expireAtBrowserClose: false, serializer: JSON_SERIALIZER, logger: console };
   * assert.equal(new Session(null, config).get("cat", "dog"), "dog");
   * ```
   */
  get<K extends keyof T & string>(key: K, fallback: T[K]): T[K];
  get(key: string, fallback?: unknown): unknown {
    const data = this.#readable();
    return Object.hasOwn(data, key) ? data[key] : fallback;
  }

  /**
   * Stores `value` under `key` and marks the session modified.
   *
   * The value is kept by reference, as in Django: a change made to it in
   * place later (`session.get("cart").push(item)`) does not mark the session
   * modified, but is saved whenever the session is. A value changed in place
   * into something JSON cannot hold (a cycle, a `Date`, a function) fails
   * that save with a `TypeError` naming the key; the middleware logs it and
   * answers 500, and the stored session stays as it was. `-0` is saved as
   * `0` (JSON has no negative zero; the two are `===`).
   *
   * @throws {TypeError} if JSON cannot represent `value` faithfully (a
   * function, `undefined`, a `Date`, a `Map`, a `BigInt`, `NaN`, a cycle, a
   * sparse array, an array with properties besides its items), or if `key`
   * is `_session_expiry` (use `setExpiry`).
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { JSON_SERIALIZER, MemoryStore, Session } from "@tessera/sessions";
   *
   * const config = { store: new MemoryStore(), cookieAge: 60, expireAtBrowserClose: false, serializer: JSON_SERIALIZER, logger: console };
   * const session = new Session(null, config);
   * session.set("cart", [1, 2]);
   * assert.throws(() => session.set("when", new Date() as never), TypeError);
   * assert.throws(() => session.set("tagged", Object.assign([1], { tag: "x" })), TypeError);
   *
   * const cart = session.get("cart") as unknown[];
   * cart.push(new Date()); // changed in place into what JSON cannot hold
   * await assert.rejects(session.save(), { name: "TypeError", message: /'cart'.*cart\[2\] is a Date/ });
   * ```
   */
  set<K extends keyof T & string>(key: K, value: T[K]): void {
    this.#checkValue(key, value);
    setOwn(this.#readable(), key, value);
    this.modified = true;
  }

  /**
   * Whether a value is stored under `key` (Django's `key in session`).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { JSON_SERIALIZER, MemoryStore, Session } from "@tessera/sessions";
   *
   * const config = { store: new MemoryStore(), cookieAge: 60, expireAtBrowserClose: false, serializer: JSON_SERIALIZER, logger: console };
   * assert.equal(new Session(null, config).has("cat"), false);
   * ```
   */
  has(key: keyof T & string): boolean {
    return Object.hasOwn(this.#readable(), key);
  }

  /**
   * Removes `key`. A missing key is not an error; the session is marked
   * modified only if the key existed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { JSON_SERIALIZER, MemoryStore, Session } from "@tessera/sessions";
   *
   * const config = { store: new MemoryStore(), cookieAge: 60, expireAtBrowserClose: false, serializer: JSON_SERIALIZER, logger: console };
   * const session = new Session(null, config);
   * session.delete("cat");
   * assert.equal(session.modified, false);
   * ```
   */
  delete(key: keyof T & string): void {
    const data = this.#readable();
    if (!Object.hasOwn(data, key)) return;
    delete data[key];
    this.modified = true;
  }

  /**
   * Removes `key` and returns its value, or `fallback` when it is missing
   * (which leaves the session unmodified).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { JSON_SERIALIZER, MemoryStore, Session } from "@tessera/sessions";
   *
   * const config = { store: new MemoryStore(), cookieAge: 60, expireAtBrowserClose: false, serializer: JSON_SERIALIZER, logger: console };
   * const session = new Session(null, config);
   * session.set("cat", "dog");
   * assert.equal(session.pop("cat"), "dog");
   * assert.equal(session.pop("cat", "none"), "none");
   * ```
   */
  pop<K extends keyof T & string>(key: K): T[K] | undefined;
  /**
   * Removes `key` and returns its value, or `fallback` when it is missing.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { JSON_SERIALIZER, MemoryStore, Session } from "@tessera/sessions";
   *
   * const config = { store: new MemoryStore(), cookieAge: 60, expireAtBrowserClose: false, serializer: JSON_SERIALIZER, logger: console };
   * assert.equal(new Session(null, config).pop("cat", "none"), "none");
   * ```
   */
  pop<K extends keyof T & string>(key: K, fallback: T[K]): T[K];
  pop(key: string, fallback?: unknown): unknown {
    const data = this.#readable();
    if (!Object.hasOwn(data, key)) return fallback;
    const value = data[key];
    delete data[key];
    this.modified = true;
    return value;
  }

  /**
   * Returns the value under `key`; when there is none, stores `value` there
   * first (and marks the session modified).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { JSON_SERIALIZER, MemoryStore, Session } from "@tessera/sessions";
   *
   * const config = { store: new MemoryStore(), cookieAge: 60, expireAtBrowserClose: false, serializer: JSON_SERIALIZER, logger: console };
   * const session = new Session(null, config);
   * assert.equal(session.setDefault("foo", "bar"), "bar");
   * assert.equal(session.setDefault("foo", "baz"), "bar");
   * ```
   */
  setDefault<K extends keyof T & string>(key: K, value: T[K]): T[K] {
    const data = this.#readable();
    if (Object.hasOwn(data, key)) return data[key] as T[K];
    this.set(key, value);
    return value;
  }

  /**
   * Stores every entry of `values`, and marks the session modified even when
   * `values` is empty (Django's `update`). Nothing is stored if any value is
   * rejected.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { JSON_SERIALIZER, MemoryStore, Session } from "@tessera/sessions";
   *
   * const config = { store: new MemoryStore(), cookieAge: 60, expireAtBrowserClose: false, serializer: JSON_SERIALIZER, logger: console };
   * const session = new Session(null, config);
   * session.update({ a: 1, b: 2 });
   * assert.deepEqual(session.keys(), ["a", "b"]);
   * ```
   */
  update(values: Partial<T>): void {
    const entries = Object.entries(values);
    for (const [key, value] of entries) this.#checkValue(key, value);
    const data = this.#readable();
    for (const [key, value] of entries) setOwn(data, key, value);
    this.modified = true;
  }

  /**
   * The keys of the data, as an array.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { JSON_SERIALIZER, MemoryStore, Session } from "@tessera/sessions";
   *
   * const config = { store: new MemoryStore(), cookieAge: 60, expireAtBrowserClose: false, serializer: JSON_SERIALIZER, logger: console };
   * assert.deepEqual(new Session(null, config).keys(), []);
   * ```
   */
  keys(): (keyof T & string)[] {
    return Object.keys(this.#readable()) as (keyof T & string)[];
  }

  /**
   * The values of the data, as an array.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { JSON_SERIALIZER, MemoryStore, Session } from "@tessera/sessions";
   *
   * const config = { store: new MemoryStore(), cookieAge: 60, expireAtBrowserClose: false, serializer: JSON_SERIALIZER, logger: console };
   * assert.deepEqual(new Session(null, config).values(), []);
   * ```
   */
  values(): T[keyof T][] {
    return Object.values(this.#readable()) as T[keyof T][];
  }

  /**
   * The data as `[key, value]` pairs.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { JSON_SERIALIZER, MemoryStore, Session } from "@tessera/sessions";
   *
   * const config = { store: new MemoryStore(), cookieAge: 60, expireAtBrowserClose: false, serializer: JSON_SERIALIZER, logger: console };
   * const session = new Session(null, config);
   * session.set("x", 1);
   * assert.deepEqual(session.items(), [["x", 1]]);
   * ```
   */
  items(): [keyof T & string, T[keyof T]][] {
    return Object.entries(this.#readable()) as [keyof T & string, T[keyof T]][];
  }

  /**
   * Empties the data and the expiry setting, keeps the key. Needs no load.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { JSON_SERIALIZER, MemoryStore, Session } from "@tessera/sessions";
   *
   * const config = { store: new MemoryStore(), cookieAge: 60, expireAtBrowserClose: false, serializer: JSON_SERIALIZER, logger: console };
   * const session = new Session(null, config);
   * session.set("x", 1);
   * session.clear();
   * assert.deepEqual(session.keys(), []);
   * ```
   */
  clear(): void {
    this.#data = {};
    this.#expiry = null;
    this.accessed = true;
    this.modified = true;
  }

  /**
   * True when the session has no key and no data: such a session is never
   * stored and gets no cookie.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { JSON_SERIALIZER, MemoryStore, Session } from "@tessera/sessions";
   *
   * const config = { store: new MemoryStore(), cookieAge: 60, expireAtBrowserClose: false, serializer: JSON_SERIALIZER, logger: console };
   * assert.equal(new Session(null, config).isEmpty(), true);
   * ```
   */
  isEmpty(): boolean {
    if (this.#key !== null) return false;
    if (this.#data === null) return true;
    if (this.#expiry !== null) return false;
    for (const _ in this.#data) return false;
    return true;
  }

  /**
   * Sets when the session expires: a number of seconds of inactivity
   * (`0`: when the browser closes, while the server keeps it for `cookieAge`),
   * a `Date` (that instant), or `null` (back to the global policy). The
   * setting is stored with the session and enforced by every store.
   *
   * @throws {TypeError} for anything but a whole number, a `Date` or `null`.
   * @throws {RangeError} for an invalid `Date`.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { JSON_SERIALIZER, MemoryStore, Session } from "@tessera/sessions";
   *
   * const config = { store: new MemoryStore(), cookieAge: 60, expireAtBrowserClose: false, serializer: JSON_SERIALIZER, logger: console };
   * const session = new Session(null, config);
   * session.setExpiry(10);
   * assert.equal(session.getExpiryAge(), 10);
   * session.setExpiry(null);
   * assert.equal(session.getExpiryAge(), 60);
   * ```
   */
  setExpiry(value: number | Date | null): void {
    this.#readable();
    if (value === null) {
      if (this.#expiry !== null) {
        this.#expiry = null;
        this.modified = true;
      }
      return;
    }
    if (value instanceof Date) {
      if (Number.isNaN(value.getTime())) {
        throw new RangeError("Cannot set the session expiry as the Date is invalid");
      }
      this.#expiry = toIsoString(value);
    } else if (Number.isSafeInteger(value)) {
      this.#expiry = value;
    } else {
      throw new TypeError(
        `Cannot set the session expiry as it must be a whole number of seconds, a Date or null: current value is ${
          String(value)
        }`,
      );
    }
    this.modified = true;
  }

  /**
   * Seconds until the session expires, counted from `modification` (now):
   * the custom number of seconds, the distance to the custom date, or
   * `cookieAge` when none is set (also after `setExpiry(0)`).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { JSON_SERIALIZER, MemoryStore, Session } from "@tessera/sessions";
   *
   * const config = { store: new MemoryStore(), cookieAge: 60, expireAtBrowserClose: false, serializer: JSON_SERIALIZER, logger: console };
   * const session = new Session(null, config);
   * session.setExpiry(new Date(Date.now() + 10_500));
   * assert.equal(session.getExpiryAge(), 10);
   * ```
   */
  getExpiryAge(options: ExpiryOptions = {}): number {
    const expiry = "expiry" in options ? options.expiry : this.#expiry;
    if (expiry === undefined || expiry === null || expiry === 0) return this.#config.cookieAge;
    if (typeof expiry === "number") return expiry;
    const modification = options.modification?.getTime() ?? Date.now();
    return Math.floor((toTime(expiry) - modification) / 1000);
  }

  /**
   * The instant the session expires if saved at `modification` (now).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { JSON_SERIALIZER, MemoryStore, Session } from "@tessera/sessions";
   *
   * const config = { store: new MemoryStore(), cookieAge: 60, expireAtBrowserClose: false, serializer: JSON_SERIALIZER, logger: console };
   * const modification = new Date("2030-01-01T00:00:00Z");
   * const session = new Session(null, config);
   * assert.deepEqual(session.getExpiryDate({ modification }), new Date("2030-01-01T00:01:00Z"));
   * ```
   */
  getExpiryDate(options: ExpiryOptions = {}): Date {
    const expiry = "expiry" in options ? options.expiry : this.#expiry;
    if (expiry instanceof Date) return expiry;
    if (typeof expiry === "string") return new Date(toTime(expiry));
    const modification = options.modification?.getTime() ?? Date.now();
    return new Date(modification + (expiry || this.#config.cookieAge) * 1000);
  }

  /**
   * Whether the cookie ends with the browser: `setExpiry(0)` says yes, any
   * other custom expiry says no, and without one `expireAtBrowserClose`
   * decides.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { JSON_SERIALIZER, MemoryStore, Session } from "@tessera/sessions";
   *
   * const config = { store: new MemoryStore(), cookieAge: 60, expireAtBrowserClose: false, serializer: JSON_SERIALIZER, logger: console };
   * const session = new Session(null, config);
   * session.setExpiry(0);
   * assert.equal(session.getExpireAtBrowserClose(), true);
   * ```
   */
  getExpireAtBrowserClose(): boolean {
    if (this.#expiry === null) return this.#config.expireAtBrowserClose;
    return this.#expiry === 0;
  }

  /**
   * Deletes the stored session and empties the data; the next save issues a
   * fresh key, and the middleware deletes the cookie. Call it at logout.
   *
   * @throws {SessionStoreError} when the store fails.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { JSON_SERIALIZER, MemoryStore, Session } from "@tessera/sessions";
   *
   * const store = new MemoryStore();
   * const config = { store, cookieAge: 60, expireAtBrowserClose: false, serializer: JSON_SERIALIZER, logger: console };
   * const session = new Session(null, config);
   * session.set("user", "ada");
   * await session.save();
   * const key = session.sessionKey!;
   * await session.flush();
   * assert.equal(session.sessionKey, null);
   * assert.equal(await store.exists(key), false);
   * ```
   */
  async flush(): Promise<void> {
    const userId = this.#userId();
    this.clear();
    this.#start = null;
    this.#generation = null;
    const key = this.#key;
    if (key !== null) {
      try {
        await this.#config.store.delete(key);
      } catch (error) {
        throw new SessionStoreError("Cannot delete the session", error);
      }
      if (userId !== null) await this.#config.users![UNTRACK](userId, key);
    }
    this.#key = null;
  }

  /**
   * Moves the data to a new key and deletes the old record, so a key an
   * attacker planted before login is worthless after it. Call it at login.
   *
   * @throws {SessionStoreError} when the store fails.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { JSON_SERIALIZER, MemoryStore, Session } from "@tessera/sessions";
   *
   * const config = { store: new MemoryStore(), cookieAge: 60, expireAtBrowserClose: false, serializer: JSON_SERIALIZER, logger: console };
   * const session = new Session(null, config);
   * session.set("cart", [1]);
   * await session.save();
   * const before = session.sessionKey;
   * await session.cycleKey();
   * assert.notEqual(session.sessionKey, before);
   * assert.deepEqual(session.get("cart"), [1]);
   * ```
   */
  async cycleKey(): Promise<void> {
    await this.load();
    this.#readable();
    const oldKey = this.#key;
    const store = this.#config.store;
    // A new key is a new session (a login): its absolute timeout restarts.
    this.#start = null;
    this.#generation = null;
    await this.#prepareUser();
    const record = this.#record();
    try {
      this.#key = await store.create(record);
      this.modified = true;
      if (oldKey !== null) await store.delete(oldKey);
    } catch (error) {
      throw new SessionStoreError("Cannot move the session to a new key", error);
    }
    await this.#track(record.expiresAt, oldKey);
  }

  /**
   * Writes the session to the store now; a session without a key gets one.
   * Rarely needed: the middleware saves modified sessions after the handler.
   *
   * @param mustCreate Fail with `SessionExistsError` if the key is taken.
   * @throws {SessionInterruptedError} if another request deleted the session.
   * @throws {SessionStoreError} when the store fails.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { JSON_SERIALIZER, MemoryStore, Session } from "@tessera/sessions";
   *
   * const store = new MemoryStore();
   * const config = { store, cookieAge: 60, expireAtBrowserClose: false, serializer: JSON_SERIALIZER, logger: console };
   * const session = new Session(null, config);
   * session.set("x", 1);
   * await session.save();
   * assert.equal(await store.exists(session.sessionKey!), true);
   * ```
   */
  async save(mustCreate = false): Promise<void> {
    await this.load();
    await this.#prepareUser();
    const record = this.#record();
    const store = this.#config.store;
    try {
      if (this.#key === null) {
        this.#key = await store.create(record);
        this.modified = true;
      } else {
        this.#key = await store.save(this.#key, record, mustCreate);
      }
    } catch (error) {
      if (error instanceof SessionInterruptedError || error instanceof SessionExistsError) {
        throw error;
      }
      throw new SessionStoreError("Cannot save the session", error);
    }
    await this.#track(record.expiresAt, null);
  }

  #userId(): string | null {
    const users = this.#config.users ?? null;
    const data = this.#data;
    if (users === null || data === null || !Object.hasOwn(data, users.userKey)) return null;
    return String(data[users.userKey]);
  }

  // A session that gets a user is saved under the user's current
  // generation; one read of the user store, at login only.
  async #prepareUser(): Promise<void> {
    const userId = this.#userId();
    if (userId === null) {
      this.#generation = null;
    } else if (this.#generation === null || userId !== this.#generationUser) {
      this.#generationUser = userId;
      try {
        this.#generation = await this.#config.users!.generation(userId);
      } catch (error) {
        throw new SessionStoreError("Cannot read the generation of the session's user", error);
      }
    }
  }

  async #track(expiresAt: number, oldKey: string | null): Promise<void> {
    const userId = this.#userId();
    // A signed-cookie session has no server-side record to index or revoke.
    if (userId === null || !isValidKey(this.#key)) return;
    await this.#config.users![TRACK](userId, this.#key!, this.#data!, expiresAt, oldKey);
  }

  /**
   * Stores Django's test value, to check on the next request that the
   * browser keeps cookies.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { JSON_SERIALIZER, MemoryStore, Session } from "@tessera/sessions";
   *
   * const config = { store: new MemoryStore(), cookieAge: 60, expireAtBrowserClose: false, serializer: JSON_SERIALIZER, logger: console };
   * const session = new Session(null, config);
   * session.setTestCookie();
   * assert.equal(session.testCookieWorked(), true);
   * ```
   */
  setTestCookie(): void {
    setOwn(this.#readable(), TEST_COOKIE_NAME, TEST_COOKIE_VALUE);
    this.modified = true;
  }

  /**
   * Whether the value stored by `setTestCookie` came back.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { JSON_SERIALIZER, MemoryStore, Session } from "@tessera/sessions";
   *
   * const config = { store: new MemoryStore(), cookieAge: 60, expireAtBrowserClose: false, serializer: JSON_SERIALIZER, logger: console };
   * assert.equal(new Session(null, config).testCookieWorked(), false);
   * ```
   */
  testCookieWorked(): boolean {
    const data = this.#readable();
    return Object.hasOwn(data, TEST_COOKIE_NAME) && data[TEST_COOKIE_NAME] === TEST_COOKIE_VALUE;
  }

  /**
   * Removes the value stored by `setTestCookie` (no error when absent).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { JSON_SERIALIZER, MemoryStore, Session } from "@tessera/sessions";
   *
   * const config = { store: new MemoryStore(), cookieAge: 60, expireAtBrowserClose: false, serializer: JSON_SERIALIZER, logger: console };
   * const session = new Session(null, config);
   * session.setTestCookie();
   * session.deleteTestCookie();
   * assert.equal(session.testCookieWorked(), false);
   * ```
   */
  deleteTestCookie(): void {
    const data = this.#readable();
    if (!Object.hasOwn(data, TEST_COOKIE_NAME)) return;
    delete data[TEST_COOKIE_NAME];
    this.modified = true;
  }

  // The data for a read or a change: marks the session accessed, as every
  // dictionary operation does in Django.
  #readable(): SessionData {
    this.accessed = true;
    if (this.#data !== null) return this.#data;
    if (this.#key !== null) throw notLoaded();
    return (this.#data = {});
  }

  #checkValue(key: string, value: unknown): void {
    if (key === EXPIRY_KEY) {
      throw new TypeError(`Cannot set '${EXPIRY_KEY}' as it holds the expiry: use setExpiry()`);
    }
    if (HIDDEN_KEYS.has(key)) {
      throw new TypeError(`Cannot set '${key}' as the session keeps it itself`);
    }
    this.#config.serializer.validate(key, value);
  }

  #decode(text: string): SessionData | null {
    let data: SessionData;
    try {
      data = this.#config.serializer.parse(text);
    } catch {
      this.#config.logger.warn("Session data corrupted: a stored session was ignored");
      return null;
    }
    if (Object.hasOwn(data, EXPIRY_KEY)) {
      const expiry = data[EXPIRY_KEY];
      delete data[EXPIRY_KEY];
      if (Number.isSafeInteger(expiry)) this.#expiry = expiry as number;
      else if (typeof expiry === "string" && !Number.isNaN(Date.parse(expiry))) {
        this.#expiry = expiry;
      }
    }
    if (Object.hasOwn(data, START_KEY)) {
      const start = data[START_KEY];
      delete data[START_KEY];
      if (Number.isSafeInteger(start)) this.#start = start as number;
    }
    if (Object.hasOwn(data, GENERATION_KEY)) {
      const generation = data[GENERATION_KEY];
      delete data[GENERATION_KEY];
      if (Number.isSafeInteger(generation)) this.#generation = generation as number;
    }
    return data;
  }

  #record(): StoredSession {
    const config = this.#config;
    const data = this.#data ?? {};
    const expiry = this.#expiry;
    const timeout = config.absoluteTimeout ?? null;
    // The start is only kept when something reads it, so that sessions
    // stay byte for byte what Django writes otherwise.
    if (this.#start === null && timeout !== null) {
      this.#start = Math.floor(Date.now() / 1000);
    }
    let payload = data;
    if (expiry !== null || this.#start !== null || this.#generation !== null) {
      payload = { ...data };
      if (expiry !== null) payload[EXPIRY_KEY] = expiry;
      if (this.#start !== null) payload[START_KEY] = this.#start;
      if (this.#generation !== null) payload[GENERATION_KEY] = this.#generation;
    }
    let expiresAt = typeof expiry === "string"
      ? toTime(expiry)
      : Date.now() + (expiry || config.cookieAge) * 1000;
    if (timeout !== null && this.#start !== null) {
      expiresAt = Math.min(expiresAt, (this.#start + timeout) * 1000);
    }
    return { data: config.serializer.stringify(payload), expiresAt };
  }
}

function notLoaded(): Error {
  return new Error(
    "Cannot use the session before it is loaded: get it with 'await getSession(req)', or call 'await session.load()'",
  );
}

// Assignment to "__proto__" would change the object's prototype instead of
// storing a value under that name.
function setOwn(data: SessionData, key: string, value: unknown): void {
  if (key === "__proto__") {
    Object.defineProperty(data, key, {
      value,
      writable: true,
      enumerable: true,
      configurable: true,
    });
  } else {
    data[key] = value;
  }
}

// Python's isoformat() writes "+00:00" where JavaScript writes "Z"; Django
// 3.2's fromisoformat() reads only the former.
function toIsoString(date: Date): string {
  return date.toISOString().replace("Z", "+00:00");
}

function toTime(expiry: Date | string): number {
  return expiry instanceof Date ? expiry.getTime() : Date.parse(expiry);
}
