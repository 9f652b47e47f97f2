/**
 * The options of `withSessions`, with Django's settings and defaults, and
 * their validation.
 *
 * @module
 */

import { formatAttributes } from "./cookie.ts";
import type { Logger } from "./logger.ts";
import { JSON_SERIALIZER, type Serializer, type SessionData } from "./serializer.ts";
import type { SessionConfig } from "./session.ts";
import { FileStore } from "./stores/file.ts";
import { sealStore } from "./stores/_sealed.ts";
import type { SessionStore } from "./stores/store.ts";
import { CONFIGURE, UserSessions } from "./users.ts";

/** The `SameSite` values a session cookie can have; `false` omits it. */
export type SameSite = "Lax" | "Strict" | "None" | false;

/**
 * The options of {@link withSessions}, one per Django `SESSION_*` setting,
 * with the same defaults. Every option is checked when `withSessions` is
 * called, not on the first request.
 *
 * @example
 * ```ts
 * import { MemoryStore, withSessions, type SessionOptions } from "@tessera/sessions";
 *
 * const options: SessionOptions = {
 *   store: new MemoryStore(),
 *   cookieAge: 60 * 60 * 24,
 *   cookieSecure: true,
 * };
 * withSessions(() => new Response("ok"), options);
 * ```
 */
export interface SessionOptions {
  /**
   * The session engine (`SESSION_ENGINE`).
   *
   * @default {new FileStore()} one file per session in the OS temp dir
   */
  store?: SessionStore;
  /**
   * The cookie's name (`SESSION_COOKIE_NAME`), also the file engine's file
   * name prefix. A `__Host-` name requires `cookieSecure`, path `/` and no
   * domain; a `__Secure-` name requires `cookieSecure`; browsers read both
   * prefixes in any letter case, and so does this check.
   *
   * @default {"sessionid"}
   */
  cookieName?: string;
  /**
   * Seconds a session lives after its last save (`SESSION_COOKIE_AGE`): the
   * cookie's `Max-Age` and the server-side expiry.
   *
   * @default {1209600} two weeks
   */
  cookieAge?: number;
  /**
   * The cookie's `Domain` (`SESSION_COOKIE_DOMAIN`); none means this host only.
   *
   * @default {undefined}
   */
  cookieDomain?: string;
  /**
   * The cookie's `Path` (`SESSION_COOKIE_PATH`).
   *
   * @default {"/"}
   */
  cookiePath?: string;
  /**
   * Whether the cookie is sent over HTTPS only (`SESSION_COOKIE_SECURE`).
   *
   * @default {false}
   */
  cookieSecure?: boolean;
  /**
   * Whether scripts are kept from reading the cookie (`SESSION_COOKIE_HTTPONLY`).
   *
   * @default {true}
   */
  cookieHttpOnly?: boolean;
  /**
   * The cookie's `SameSite` (`SESSION_COOKIE_SAMESITE`): `"Lax"`, `"Strict"`,
   * `"None"` (which requires `cookieSecure`), or `false` to omit it.
   *
   * @default {"Lax"}
   */
  cookieSameSite?: SameSite;
  /**
   * Whether the cookie carries `Partitioned` (CHIPS): a browser then keeps a
   * separate cookie for each top-level site that embeds this one, as an app
   * inside another site's iframe needs now that browsers block third-party
   * cookies. It requires `cookieSecure`; a cross-site embed also needs
   * `cookieSameSite: "None"`. The deletion cookie carries it too, or the
   * browser would not match it to the cookie it deletes.
   *
   * @default {false}
   */
  cookiePartitioned?: boolean;
  /**
   * Whether sessions end when the browser closes
   * (`SESSION_EXPIRE_AT_BROWSER_CLOSE`); `setExpiry` overrides it.
   *
   * @default {false}
   */
  expireAtBrowserClose?: boolean;
  /**
   * Whether every request that carries a live session cookie saves the
   * session again, sliding its expiry (`SESSION_SAVE_EVERY_REQUEST`). A
   * request without one never creates a session.
   *
   * @default {false}
   */
  saveEveryRequest?: boolean;
  /**
   * How session data becomes stored text (`SESSION_SERIALIZER`).
   *
   * @default {JSON_SERIALIZER}
   */
  serializer?: Serializer;
  /**
   * The signing secret (`SECRET_KEY`), or a list whose first entry signs and
   * whose every entry verifies (`SECRET_KEY_FALLBACKS`). Each must be at
   * least 32 bytes. Required by the signed-cookie engine. With a secret,
   * every server-side engine stores each session signed (its key, expiry and
   * data together) and ignores, with a warning, any record it did not sign:
   * a session is only ever what this application wrote. Without one, anyone
   * who can write the store can make a session.
   *
   * @default {undefined}
   */
  secret?: string | readonly string[];
  /**
   * Load a stored session that carries no signature (one written before
   * `secret` was set) and sign it on this request, instead of ignoring it.
   * For the move to a secret only: set it for one `cookieAge` after adding
   * the secret, then remove it, since while it is on, a record planted in
   * the store is accepted as it was before. A record with a signature that
   * does not verify is ignored either way.
   *
   * @default {false}
   */
  acceptUnsignedRecords?: boolean;
  /**
   * Where store failures and ignored corrupt sessions are reported.
   *
   * @default {console}
   */
  logger?: Logger;
  /**
   * Seconds a session may live in all, from its start (its first save, or
   * its last `cycleKey()` or `flush()`), whatever renewals or
   * `saveEveryRequest` do: OWASP's absolute timeout. The start is kept in
   * the session data as `_session_start` (hidden from `keys()`); a session
   * past it is refused on load, on every engine.
   *
   * @default {null} no cap
   */
  absoluteTimeout?: number | null;
  /**
   * Sliding expiry without a write per request: an unchanged session is
   * saved again (and its cookie re-sent) once this fraction of its lifetime
   * has passed, so a session in use never expires while most requests
   * write nothing. Between 0 and 1; 0 saves on every request, as
   * `saveEveryRequest` does.
   *
   * @default {null} off: a session is saved only when it changes
   */
  renewAfter?: number | null;
  /**
   * The index of sessions by user and the per-user generation number
   * ("log out everywhere"): see {@link UserSessions}. Off costs nothing:
   * no store call is added to any request.
   *
   * @default {null} off
   */
  users?: UserSessions | null;
  /**
   * A check of each loaded session's data: returning `false` makes the
   * session absent, as if it had expired (for example, Django's
   * `_auth_user_hash` compared with the user's current password hash).
   * An error it throws fails the request as a store failure would.
   *
   * @default {null} none
   */
  verifySession?: ((data: Readonly<SessionData>) => boolean | Promise<boolean>) | null;
}

/** The options after validation, with defaults filled in and attributes preformatted. */
export interface ResolvedOptions extends SessionConfig {
  /** The store as given (or the default), without the signing layer: what a sweep works on. */
  engine: SessionStore;
  cookieName: string;
  saveEveryRequest: boolean;
  absoluteTimeout: number | null;
  renewAfter: number | null;
  users: UserSessions | null;
  verifySession: ((data: Readonly<SessionData>) => boolean | Promise<boolean>) | null;
  secrets: readonly string[];
  /** `; Domain=…; Path=…; Secure; HttpOnly; SameSite=…`, built once. */
  cookieAttributes: string;
}

const OPTION_NAMES: ReadonlySet<string> = new Set([
  "store",
  "cookieName",
  "cookieAge",
  "cookieDomain",
  "cookiePath",
  "cookieSecure",
  "cookieHttpOnly",
  "cookieSameSite",
  "cookiePartitioned",
  "expireAtBrowserClose",
  "saveEveryRequest",
  "serializer",
  "secret",
  "acceptUnsignedRecords",
  "logger",
  "absoluteTimeout",
  "renewAfter",
  "users",
  "verifySession",
]);

// RFC 6265 section 4.1.1: a cookie name is an RFC 7230 token.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Attribute values must not end the attribute (";") or hold controls or
// non-ASCII, so that no option can inject another attribute.
const ATTRIBUTE_VALUE = /^[\x21-\x3a\x3c-\x7e]+$/;
const DOMAIN =
  /^\.?[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;
const MIN_SECRET_BYTES = 32;

/**
 * Checks `options` and fills in Django's defaults; throws a `TypeError` or
 * `RangeError` that names the option, says what it must be and shows the
 * current value (never a secret's).
 */
export function resolveOptions(options: SessionOptions): ResolvedOptions {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Cannot create sessions as the options must be an object: current value is ${
        describe(options)
      }`,
    );
  }
  for (const name of Object.keys(options)) {
    if (!OPTION_NAMES.has(name)) {
      throw new TypeError(
        `Cannot create sessions as '${name}' is not an option: the options are ${
          [...OPTION_NAMES].join(", ")
        }`,
      );
    }
  }

  const cookieName = options.cookieName ?? "sessionid";
  if (typeof cookieName !== "string" || !TOKEN.test(cookieName)) {
    invalid("cookieName", "a cookie name (letters, digits and !#$%&'*+-.^_`|~)", cookieName);
  }
  const cookieAge = options.cookieAge ?? 1_209_600;
  if (!Number.isSafeInteger(cookieAge) || cookieAge < 0) {
    invalid(
      "cookieAge",
      "a non-negative whole number of seconds",
      cookieAge,
      typeof cookieAge === "number" ? RangeError : TypeError,
    );
  }
  const cookieDomain = options.cookieDomain;
  if (
    cookieDomain !== undefined && (typeof cookieDomain !== "string" || !DOMAIN.test(cookieDomain))
  ) {
    invalid("cookieDomain", "a host name such as '.example.com'", cookieDomain);
  }
  const cookiePath = options.cookiePath ?? "/";
  if (
    typeof cookiePath !== "string" || !cookiePath.startsWith("/") ||
    !ATTRIBUTE_VALUE.test(cookiePath)
  ) {
    invalid(
      "cookiePath",
      "a path starting with '/' without ';', spaces or control characters",
      cookiePath,
    );
  }
  const cookieSecure = boolean("cookieSecure", options.cookieSecure, false);
  const cookieHttpOnly = boolean("cookieHttpOnly", options.cookieHttpOnly, true);
  const expireAtBrowserClose = boolean("expireAtBrowserClose", options.expireAtBrowserClose, false);
  const saveEveryRequest = boolean("saveEveryRequest", options.saveEveryRequest, false);
  const cookieSameSite = sameSite(options.cookieSameSite);
  const cookiePartitioned = boolean("cookiePartitioned", options.cookiePartitioned, false);
  if (cookiePartitioned && !cookieSecure) {
    invalid(
      "cookieSecure",
      "true when 'cookiePartitioned' is true, as browsers drop Partitioned cookies that are not Secure",
      cookieSecure,
    );
  }

  if (cookieSameSite === "None" && !cookieSecure) {
    invalid(
      "cookieSameSite",
      "'Lax' or 'Strict' unless 'cookieSecure' is true, as browsers drop SameSite=None cookies that are not Secure",
      cookieSameSite,
    );
  }
  // Browsers match the prefixes in any letter case (RFC 6265bis, after
  // httpwg/http-extensions#2231): "__host-id" is held to "__Host-" rules.
  const prefix = cookieName.toLowerCase();
  if (prefix.startsWith("__secure-") && !cookieSecure) {
    invalid("cookieSecure", "true for a cookie named '__Secure-…'", cookieSecure);
  }
  if (prefix.startsWith("__host-")) {
    if (!cookieSecure) invalid("cookieSecure", "true for a cookie named '__Host-…'", cookieSecure);
    if (cookiePath !== "/") invalid("cookiePath", "'/' for a cookie named '__Host-…'", cookiePath);
    if (cookieDomain !== undefined) {
      invalid("cookieDomain", "unset for a cookie named '__Host-…'", cookieDomain);
    }
  }

  const secrets = secretList(options.secret);
  const serializer = options.serializer ?? JSON_SERIALIZER;
  if (!hasMethods(serializer, ["stringify", "parse", "validate"])) {
    invalid("serializer", "an object with stringify(), parse() and validate() methods", serializer);
  }
  const logger = options.logger ?? console;
  if (!hasMethods(logger, ["warn", "error"])) {
    invalid("logger", "an object with warn() and error() methods, such as console", logger);
  }
  const store: SessionStore = options.store ?? new FileStore();
  if (!hasMethods(store, ["load", "exists", "create", "save", "delete", "clearExpired"])) {
    invalid("store", "a session store such as new FileStore() or new MemoryStore()", store);
  }
  const acceptUnsigned = boolean("acceptUnsignedRecords", options.acceptUnsignedRecords, false);
  if (acceptUnsigned && secrets.length === 0) {
    invalid("acceptUnsignedRecords", "false unless 'secret' is given", acceptUnsigned);
  }
  store.configure?.({ cookieName, cookieAge, secrets, logger });

  const absoluteTimeout = options.absoluteTimeout ?? null;
  if (
    absoluteTimeout !== null && (!Number.isSafeInteger(absoluteTimeout) || absoluteTimeout <= 0)
  ) {
    invalid(
      "absoluteTimeout",
      "a positive whole number of seconds or null",
      absoluteTimeout,
      typeof absoluteTimeout === "number" ? RangeError : TypeError,
    );
  }
  const renewAfter = options.renewAfter ?? null;
  if (
    renewAfter !== null &&
    (typeof renewAfter !== "number" || !(renewAfter >= 0 && renewAfter <= 1))
  ) {
    invalid(
      "renewAfter",
      "a fraction between 0 and 1 or null",
      renewAfter,
      typeof renewAfter === "number" ? RangeError : TypeError,
    );
  }
  // A cache that caps the expiry of its copies (CachedStore's cacheTtl)
  // makes every cached session look near its end: renewAfter would save it
  // on every request, as saveEveryRequest does.
  const cacheTtl = (store as { cacheTtl?: unknown }).cacheTtl;
  if (renewAfter !== null && typeof cacheTtl === "number") {
    const needed = Math.ceil((1 - renewAfter) * cookieAge);
    if (cacheTtl < needed) {
      logger.warn(
        `Cannot renew sessions without a write per request as the store's cacheTtl is shorter than the part of cookieAge that renewAfter leaves (${needed} seconds): current value is ${cacheTtl}`,
      );
    }
  }
  const users = options.users ?? null;
  if (users !== null && !(users instanceof UserSessions)) {
    invalid("users", "a UserSessions or null", users);
  }
  users?.[CONFIGURE](logger);
  const verifySession = options.verifySession ?? null;
  if (verifySession !== null && typeof verifySession !== "function") {
    invalid("verifySession", "a function or null", verifySession);
  }

  return {
    engine: store,
    store: secrets.length === 0 || store.authenticatesRecords === true
      ? store
      : sealStore(store, { secrets, logger, acceptUnsigned }),
    cookieName,
    cookieAge,
    expireAtBrowserClose,
    saveEveryRequest,
    absoluteTimeout,
    renewAfter,
    users,
    verifySession,
    serializer,
    logger,
    secrets,
    cookieAttributes: formatAttributes({
      domain: cookieDomain,
      path: cookiePath,
      secure: cookieSecure,
      httpOnly: cookieHttpOnly,
      sameSite: cookieSameSite,
      partitioned: cookiePartitioned,
    }),
  };
}

function boolean(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") invalid(name, "true or false", value);
  return value;
}

function sameSite(value: unknown): SameSite {
  if (value === undefined) return "Lax";
  if (value === false) return false;
  // Django accepts any case; the header gets the canonical spelling.
  const canonical = typeof value === "string"
    ? ({ lax: "Lax", strict: "Strict", none: "None" } as const)[value.toLowerCase() as "lax"]
    : undefined;
  if (canonical === undefined) invalid("cookieSameSite", "'Lax', 'Strict', 'None' or false", value);
  return canonical;
}

function secretList(value: unknown): readonly string[] {
  if (value === undefined) return [];
  const list = typeof value === "string" ? [value] : value;
  if (!Array.isArray(list) || list.length === 0) {
    throw new TypeError(
      "Cannot create sessions as 'secret' must be a string or a non-empty array of strings: current value is " +
        (Array.isArray(list) ? "an empty array" : `of type ${typeof value}`),
    );
  }
  const encoder = new TextEncoder();
  list.forEach((secret: unknown, index: number) => {
    const where = Array.isArray(value) ? `'secret[${index}]'` : "'secret'";
    if (typeof secret !== "string") {
      throw new TypeError(
        `Cannot create sessions as ${where} must be a string: current value is of type ${typeof secret}`,
      );
    }
    const bytes = encoder.encode(secret).length;
    if (bytes < MIN_SECRET_BYTES) {
      // The length is safe to show; the secret itself never is.
      throw new RangeError(
        `Cannot create sessions as ${where} must be at least ${MIN_SECRET_BYTES} bytes long: current length is ${bytes}`,
      );
    }
  });
  return Object.freeze([...list] as string[]);
}

function hasMethods(value: unknown, names: string[]): boolean {
  if (typeof value !== "object" || value === null) return false;
  const record = value as Record<string, unknown>;
  return names.every((name) => typeof record[name] === "function");
}

function invalid(
  name: string,
  requirement: string,
  value: unknown,
  ErrorClass: typeof TypeError | typeof RangeError = TypeError,
): never {
  throw new ErrorClass(
    `Cannot create sessions as '${name}' must be ${requirement}: current value is ${
      describe(value)
    }`,
  );
}

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "object" && value !== null) {
    return `an object (${value.constructor?.name ?? "without prototype"})`;
  }
  return String(value);
}
