/**
 * Sessions kept whole in a signed cookie (Django's
 * `backends.signed_cookies`).
 *
 * @module
 */

import type { Logger } from "../logger.ts";
import { BadSignatureError, dumpsJsonSync, loadsJsonSync } from "../_signer.ts";
import type { SessionStore, StoredSession, StoreSettings } from "./store.ts";

// Django's salt for this engine: a cookie from a Django app with the same
// secret loads here, and the other way round.
const SALT = "django.contrib.sessions.backends.signed_cookies";
// What signing.dumps can write (base64url, "." and ":"); browsers keep no
// cookie over 4096 bytes, name and attributes included. Django requires 8
// characters of any key.
const SIGNED_VALUE = /^[A-Za-z0-9_.:-]{8,4096}$/;
// A cookie holds at most about 4 KB of deflated JSON; this bounds what
// inflating it may produce, even with a leaked secret.
const MAX_DATA_BYTES = 1_048_576;
const EXPIRY_KEY = "_session_expiry";

/**
 * The whole session in the cookie, signed with the `secret` of
 * `withSessions` and timestamped: nothing is stored on the server
 * (Django's `signed_cookies` engine, with the same format, so that a Django
 * app sharing the secret reads these cookies and writes cookies read here).
 *
 * - The client can read the data (it is signed, not encrypted), but cannot
 *   change it.
 * - A session cannot be revoked before it expires: `flush()` and
 *   `cycleKey()` give this browser a new cookie, but a copy of the old
 *   cookie stays valid until its expiry.
 * - Expiry is enforced on every load: `cookieAge` seconds after the cookie
 *   was signed, or the session's own `setExpiry()` (which Django leaves
 *   unenforced for this engine, tickets #19201 and #27775).
 * - With `secret: [current, old]`, a cookie signed with `old` still loads,
 *   and the response signs it again with `current`.
 * - A session too large for a cookie (4096 bytes with its attributes) is
 *   refused with a logged 500 that names the size; keep less in it, or use
 *   a server-side engine.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CookieStore, getSession, withSessions } from "@tessera/sessions";
 *
 * const handler = withSessions(async (req) => {
 *   const session = await getSession<{ visits: number }>(req);
 *   session.set("visits", (session.get("visits") ?? 0) + 1);
 *   return new Response(String(session.get("visits")));
 * }, { store: new CookieStore(), secret: "a-secret-of-at-least-32-bytes-length" });
 *
 * const first = await handler(new Request("http://localhost/"));
 * const cookie = first.headers.get("set-cookie")!.split(";")[0]!;
 * const second = await handler(new Request("http://localhost/", { headers: { cookie } }));
 * assert.equal(await second.text(), "2");
 * ```
 */
export class CookieStore implements SessionStore {
  /**
   * Always true: a signed cookie expires by its timestamp, and the server
   * has nothing to sweep.
   */
  readonly expiresOnItsOwn = true;
  /**
   * Always true: the cookie carries its own signature, so `withSessions`
   * adds none.
   */
  readonly authenticatesRecords = true;
  #secrets: readonly string[] = [];
  #cookieAge = 1_209_600;
  #logger: Logger = console;

  /**
   * Whether a cookie value looks like a signed session: 8 to 4096
   * characters of base64url, `.` and `:`. Anything else is no session.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { CookieStore } from "@tessera/sessions";
   *
   * assert.equal(new CookieStore().isValidKey("eyJhIjoxfQ:1r31eq:4cKaOfjf7BK_MMrQ0g"), true);
   * assert.equal(new CookieStore().isValidKey("../etc/passwd"), false);
   * ```
   */
  isValidKey(value: string): boolean {
    return SIGNED_VALUE.test(value);
  }

  /**
   * Takes the secrets, the cookie age and the logger from `withSessions`.
   *
   * @throws {TypeError} when no `secret` was given.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { CookieStore, withSessions } from "@tessera/sessions";
   *
   * assert.throws(
   *   () => withSessions(() => new Response("ok"), { store: new CookieStore() }),
   *   { name: "TypeError", message: /CookieStore needs 'secret'/ },
   * );
   * ```
   */
  configure(settings: StoreSettings): void {
    if (settings.secrets.length === 0) {
      throw new TypeError(
        "Cannot create sessions as CookieStore needs 'secret' to sign its cookies: pass withSessions(handler, { store: new CookieStore(), secret }) a random string of at least 32 bytes, or a list [current, previous] to rotate it: current value is undefined",
      );
    }
    this.#secrets = settings.secrets;
    this.#cookieAge = settings.cookieAge;
    this.#logger = settings.logger;
  }

  /**
   * The session a signed cookie holds, or `null` (with a security warning
   * logged) when it is tampered, truncated, signed with an unknown secret,
   * expired, or not a session. A cookie verified with an old secret comes
   * back with `refresh`, so that the response signs it with the current one.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { CookieStore } from "@tessera/sessions";
   *
   * const store = new CookieStore();
   * const secrets = ["a-secret-of-at-least-32-bytes-length"];
   * store.configure({ cookieName: "sessionid", cookieAge: 60, secrets, logger: console });
   * const key = await store.create({ data: '{"a":1}', expiresAt: Date.now() + 60_000 });
   * assert.equal((await store.load(key))?.data, '{"a":1}');
   * ```
   */
  load(key: string): Promise<StoredSession | null> {
    try {
      return Promise.resolve(this.#load(key));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  // Synchronous: a signed cookie needs no I/O, and a promise per HMAC costs
  // more CPU than the HMAC itself.
  #load(key: string): StoredSession | null {
    const secrets = this.#configured();
    let json: string;
    let timestamp: number;
    let secretIndex: number;
    try {
      const loaded = loadsJsonSync(key, { secret: secrets, salt: SALT, maxSize: MAX_DATA_BYTES });
      json = loaded.json;
      timestamp = loaded.timestamp!;
      secretIndex = loaded.secretIndex;
    } catch (error) {
      this.#logger.warn(
        error instanceof BadSignatureError
          ? "Suspicious session cookie ignored: its signature matches no secret (tampered with, truncated, or signed with another secret or salt)"
          : "Session data corrupted: a correctly signed session cookie could not be decoded and was ignored",
      );
      return null;
    }
    let data: unknown;
    try {
      data = JSON.parse(json);
    } catch {
      data = null;
    }
    if (typeof data !== "object" || data === null || Array.isArray(data)) {
      this.#logger.warn("Session data corrupted: a signed session cookie is not a JSON object");
      return null;
    }
    const expiresAt = this.#expiresAt(timestamp, (data as Record<string, unknown>)[EXPIRY_KEY]);
    if (!(expiresAt >= Date.now())) {
      this.#logger.warn("Session cookie ignored as it expired: the session starts empty");
      return null;
    }
    return secretIndex === 0 ? { data: json, expiresAt } : { data: json, expiresAt, refresh: true };
  }

  /**
   * Always false: nothing is stored on the server, so no key is taken.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { CookieStore } from "@tessera/sessions";
   *
   * assert.equal(await new CookieStore().exists("anything"), false);
   * ```
   */
  exists(_key: string): Promise<boolean> {
    return Promise.resolve(false);
  }

  /**
   * Signs `record.data` (compressed when that makes it shorter) and returns
   * the signed value, which is the new cookie value.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { CookieStore } from "@tessera/sessions";
   *
   * const store = new CookieStore();
   * const secrets = ["a-secret-of-at-least-32-bytes-length"];
   * store.configure({ cookieName: "sessionid", cookieAge: 60, secrets, logger: console });
   * const key = await store.create({ data: '{"a":1}', expiresAt: Date.now() + 60_000 });
   * assert.match(key, /^eyJhIjoxfQ:[0-9A-Za-z]+:[\w-]{43}$/);
   * ```
   */
  create(record: StoredSession): Promise<string> {
    try {
      return Promise.resolve(
        dumpsJsonSync(record.data, { secret: this.#configured(), salt: SALT, compress: true }),
      );
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Signs `record.data` as {@link CookieStore.create} does; the old value
   * is not needed, and no error is possible for `mustCreate` or a deleted
   * session: a cookie cannot be taken or deleted on the server.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { CookieStore } from "@tessera/sessions";
   *
   * const store = new CookieStore();
   * const secrets = ["a-secret-of-at-least-32-bytes-length"];
   * store.configure({ cookieName: "sessionid", cookieAge: 60, secrets, logger: console });
   * const key = await store.create({ data: '{"a":1}', expiresAt: Date.now() + 60_000 });
   * const next = await store.save(key, { data: '{"a":2}', expiresAt: Date.now() + 60_000 });
   * assert.equal((await store.load(next))?.data, '{"a":2}');
   * ```
   */
  save(_key: string, record: StoredSession, _mustCreate?: boolean): Promise<string> {
    return this.create(record);
  }

  /**
   * Does nothing: the server holds nothing to delete, and copies of the
   * cookie stay valid until they expire. The middleware deletes the
   * browser's cookie when the session is flushed.
   *
   * @example
   * ```ts
   * import { CookieStore } from "@tessera/sessions";
   *
   * await new CookieStore().delete("anything");
   * ```
   */
  delete(_key: string): Promise<void> {
    return Promise.resolve();
  }

  /**
   * Removes nothing and returns `0`: signed cookies expire by themselves.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { CookieStore } from "@tessera/sessions";
   *
   * assert.equal(await new CookieStore().clearExpired(), 0);
   * ```
   */
  clearExpired(): Promise<number> {
    return Promise.resolve(0);
  }

  #configured(): readonly string[] {
    if (this.#secrets.length === 0) {
      throw new Error(
        "Cannot use the CookieStore before it is configured: give it to withSessions(handler, { store, secret }), or call store.configure(settings)",
      );
    }
    return this.#secrets;
  }

  // The session's own expiry, kept in its data as Django does, counts from
  // the signing, which is the last save: seconds after it, or an instant.
  // Without one, or with 0 (the cookie ends with the browser), the session
  // lives cookieAge seconds after it.
  #expiresAt(timestamp: number, expiry: unknown): number {
    if (typeof expiry === "string") {
      const instant = Date.parse(expiry);
      if (!Number.isNaN(instant)) return instant;
    }
    const seconds = Number.isSafeInteger(expiry) && expiry !== 0
      ? expiry as number
      : this.#cookieAge;
    return (timestamp + seconds) * 1000;
  }
}
