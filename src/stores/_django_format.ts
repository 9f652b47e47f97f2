// Records as Django 3.2+ keeps them (`format: "django"`), so that a Django
// app with the same SECRET_KEY shares the sessions live.
//
// What Django keeps. `session_data` is
// `signing.dumps(data, salt="django.contrib.sessions.SessionStore",
// compress=True)` (django/contrib/sessions/backends/base.py, encode()), the
// same text in a database row and in a session file. A custom expiry lives
// inside the data as `_session_expiry`; the database engines also keep
// `expire_date`, and the file engine takes the file's mtime plus
// SESSION_COOKIE_AGE when the data has no custom expiry (backends/file.py,
// _expiry_date()).
//
// Why these records carry no signature of withSessions. Django's signature
// is over the data alone, and Django could not read a record wrapped in a
// second one; a store in this format says `authenticatesRecords: true`. A
// key or an expire_date is then not covered by a signature: whoever can write
// the table or the directory can move a session to another key or extend it,
// as with Django itself.

import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { Logger } from "../logger.ts";
import { BadSignatureError, dumpsJsonSync, loadsJsonSync } from "../_signer.ts";
import type { StoredSession, StoreSettings } from "./store.ts";

/** The salt of Django's session data (`SessionBase.key_salt` of every built-in engine). */
export const DJANGO_SESSION_SALT = "django.contrib.sessions.SessionStore";

// Django's pre-3.1 format, still read by Django 3.2 (`_legacy_decode`):
// base64(hex HMAC-SHA1 + ":" + JSON), the HMAC keyed with
// SHA-1("django.contrib.sessions" + class name + SECRET_KEY).
const LEGACY_SALT = "django.contrib.sessionsSessionStore";
const LEGACY_BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const LEGACY_HASH = /^[0-9a-f]{40}$/;
const EXPIRY_KEY = "_session_expiry";
// The most session data this format loads, as JSON bytes: Django has no
// limit, a store needs one before it inflates what it reads.
const MAX_DATA_BYTES = 1_048_576;

const encoder = new TextEncoder();

/** A record of this format, decoded and verified. */
export interface DjangoSessionData {
  /** The session data as JSON text, what `StoredSession.data` holds. */
  json: string;
  /** `_session_expiry` as stored (seconds, or an ISO date of newer Django); `null` without one. */
  expiry: number | string | null;
  /**
   * Verified with an old secret, or kept in Django's pre-3.1 format: the
   * store should return it with `refresh: true`, so that this request saves
   * it again, signed with the current secret in the current format.
   */
  stale: boolean;
}

/** What decoding needs: the secrets (the first one signs) and where to warn. */
export interface DjangoFormatSettings {
  /** Django's SECRET_KEY first, then any older keys (SECRET_KEY_FALLBACKS). */
  secrets: readonly string[];
  /** Where a record that does not verify is reported. */
  logger: Logger;
}

/**
 * Whether a store's `format` option asks for Django's format: `"django"`
 * does, `undefined` does not, and anything else is a mistake.
 *
 * @param format The option as the user gave it.
 * @param store The store's class name, for the message.
 * @throws {TypeError} when `format` is neither `"django"` nor undefined.
 */
export function isDjangoFormat(format: unknown, store: string): boolean {
  if (format === undefined) return false;
  if (format === "django") return true;
  throw new TypeError(
    `Cannot create a ${store} as 'format' must be "django" or left out: current value is ${
      typeof format === "string" ? JSON.stringify(format) : `of type ${typeof format}`
    }`,
  );
}

/**
 * Checks, from a store's `configure()`, that `withSessions` was given the
 * secret this format signs with (Django's SECRET_KEY).
 *
 * @param settings What `withSessions` passed to `configure()`.
 * @param store The store's class name, for the message.
 * @throws {TypeError} when no secret was given.
 */
export function requireDjangoSecret(settings: Pick<StoreSettings, "secrets">, store: string): void {
  if (settings.secrets.length === 0) {
    throw new TypeError(
      `Cannot create sessions as ${store} with format "django" needs 'secret', Django's SECRET_KEY (then any SECRET_KEY_FALLBACKS): pass withSessions(handler, { store, secret: [SECRET_KEY] }): current value is undefined`,
    );
  }
}

/**
 * Django's `session_data` for session data given as JSON text:
 * `signing.dumps(data, salt="django.contrib.sessions.SessionStore",
 * compress=True)`, signed with the first secret.
 *
 * A `Date` expiry (`_session_expiry` as an ISO string) is refused: Django
 * 3.2 fails on every request of a session that holds one (it reads only a
 * whole number of seconds there), so it is an error here rather than in the
 * Django app.
 *
 * @param json The session data, as the serializer wrote it.
 * @param secrets The secrets; the first one signs.
 * @returns The text to keep as `session_data` or as the file's content.
 * @throws {TypeError} when the data holds an ISO date in `_session_expiry`
 * (a rejection: the promise is never thrown synchronously).
 */
export function encodeDjangoSession(json: string, secrets: readonly string[]): Promise<string> {
  try {
    return Promise.resolve(encodeDjangoSessionSync(json, secrets));
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * {@link encodeDjangoSession}, synchronous: signing needs no I/O, for a
 * caller on a synchronous path.
 *
 * @param json The session data, as the serializer wrote it.
 * @param secrets The secrets; the first one signs.
 * @returns The text to keep as `session_data` or as the file's content.
 * @throws {TypeError} when the data holds an ISO date in `_session_expiry`.
 */
export function encodeDjangoSessionSync(json: string, secrets: readonly string[]): string {
  // Inside a string value the quotes would be escaped: only a key (at any
  // depth) passes this test, which spares most sessions the parse.
  if (json.includes(`"${EXPIRY_KEY}"`)) {
    const expiry = (JSON.parse(json) as Record<string, unknown>)[EXPIRY_KEY];
    if (typeof expiry === "string") {
      throw new TypeError(
        `Cannot save the session as format "django" keeps only a whole number of seconds in '${EXPIRY_KEY}', the one kind of expiry Django 3.2 reads: current value is the date ${expiry}; call setExpiry() with seconds instead of a Date`,
      );
    }
  }
  return dumpsJsonSync(json, { secret: secrets, salt: DJANGO_SESSION_SALT, compress: true });
}

/**
 * The session data inside Django's `session_data` (or a session file's
 * content), verified with every secret in turn; `null` for anything that is
 * not a session this application may trust. A record whose signature does
 * not verify is reported to the logger as Django reports it
 * (`SuspiciousSession`), without the record or its key.
 *
 * Reads Django's current format and, as Django 3.2 still does, its pre-3.1
 * format (`base64(hash:json)`); the latter comes back `stale`, so that it is
 * saved in the current format.
 *
 * @param sessionData The stored text.
 * @param settings The secrets and the logger.
 * @returns The JSON text, the custom expiry and whether to save it again, or `null`.
 */
export function decodeDjangoSession(
  sessionData: string,
  settings: DjangoFormatSettings,
): Promise<DjangoSessionData | null> {
  try {
    return Promise.resolve(decodeDjangoSessionSync(sessionData, settings));
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * {@link decodeDjangoSession}, synchronous: verifying needs no I/O, for a
 * caller on a synchronous path.
 *
 * @param sessionData The stored text.
 * @param settings The secrets and the logger.
 * @returns The JSON text, the custom expiry and whether to save it again, or `null`.
 */
export function decodeDjangoSessionSync(
  sessionData: string,
  settings: DjangoFormatSettings,
): DjangoSessionData | null {
  // Django's file engine creates an empty file first, then renames the
  // written one over it: an empty file is a session being created.
  if (sessionData === "") return null;
  // The current format always holds ":"; base64 never does.
  return sessionData.includes(":")
    ? decodeSigned(sessionData, settings)
    : decodeLegacy(sessionData, settings);
}

/**
 * What a store's `load()` returns for a decoded record: its JSON and
 * `expiresAt`, with `refresh` when it should be saved again in the current
 * format with the current secret.
 *
 * @param decoded What {@link decodeDjangoSession} returned.
 * @param expiresAt `expire_date`, or {@link djangoFileExpiresAt} for a file, in milliseconds.
 * @returns The record for `withSessions`.
 */
export function djangoStoredSession(decoded: DjangoSessionData, expiresAt: number): StoredSession {
  return decoded.stale
    ? { data: decoded.json, expiresAt, refresh: true }
    : { data: decoded.json, expiresAt };
}

/**
 * When a session in Django's file layout expires, in milliseconds since the
 * epoch: its `_session_expiry` when it holds one, else the file's mtime plus
 * `cookieAge` (Django's `_expiry_date()`).
 *
 * One difference, on purpose (spec section 4): a whole number of seconds N
 * means N seconds after the last save, here as on every Tessera engine,
 * where Django's file engine never expires a positive one on the server. A
 * negative N has expired, as in Django; `0` (expire at browser close) keeps
 * the session for `cookieAge` after the last save, as in Django.
 *
 * For a file that does not decode (another secret, corrupt), pass `null`:
 * Django's clearsessions judges such a file by its mtime alone, and so may
 * a sweeper. A sweeper needs to decode only the files past mtime +
 * `cookieAge`: a custom expiry can keep one of those alive, and a younger
 * file it leaves is at worst removed on a later sweep, never too early.
 *
 * @param expiry `_session_expiry` as decoded (`DjangoSessionData.expiry`).
 * @param modified The file's mtime, in milliseconds since the epoch.
 * @param cookieAge The session lifetime in seconds (SESSION_COOKIE_AGE).
 * @returns The instant the session expires.
 */
export function djangoFileExpiresAt(expiry: unknown, modified: number, cookieAge: number): number {
  if (typeof expiry === "number" && Number.isFinite(expiry) && expiry !== 0) {
    return modified + expiry * 1000;
  }
  if (typeof expiry === "string") {
    const instant = Date.parse(expiry);
    if (!Number.isNaN(instant)) return instant;
  }
  return modified + cookieAge * 1000;
}

function decodeSigned(
  sessionData: string,
  settings: DjangoFormatSettings,
): DjangoSessionData | null {
  let json: string;
  let secretIndex: number;
  try {
    ({ json, secretIndex } = loadsJsonSync(sessionData, {
      secret: settings.secrets,
      salt: DJANGO_SESSION_SALT,
      maxSize: MAX_DATA_BYTES,
    }));
  } catch (error) {
    if (error instanceof BadSignatureError) {
      settings.logger.warn(
        "Session data corrupted: a Django session whose signature does not verify was ignored (SuspiciousSession): it was changed, or signed with a SECRET_KEY that is not in 'secret'",
      );
    } else {
      settings.logger.warn(
        `A Django session that is signed but cannot be read was ignored: ${
          (error as Error).message
        }`,
      );
    }
    return null;
  }
  return parsed(json, secretIndex > 0, settings.logger);
}

function decodeLegacy(
  sessionData: string,
  settings: DjangoFormatSettings,
): DjangoSessionData | null {
  const corrupted = (): null => {
    settings.logger.warn(
      "Session data corrupted: a Django session in the pre-3.1 format whose hash does not verify was ignored (SuspiciousSession)",
    );
    return null;
  };
  if (
    sessionData.length % 4 !== 0 || sessionData.length > MAX_DATA_BYTES * 2 ||
    !LEGACY_BASE64.test(sessionData)
  ) {
    return corrupted();
  }
  const bytes = Uint8Array.fromBase64(sessionData);
  const colon = bytes.indexOf(58);
  // Django 3.2 warns only when the text is not base64 or its hash differs.
  if (colon === -1) return null;
  const hash = latin1(bytes.subarray(0, colon));
  if (!LEGACY_HASH.test(hash)) return corrupted();
  const serialized = bytes.subarray(colon + 1);
  const expected = Uint8Array.fromHex(hash);
  let verified = false;
  for (const secret of settings.secrets) {
    const key = createHash("sha1").update(encoder.encode(LEGACY_SALT + secret)).digest();
    if (timingSafeEqual(createHmac("sha1", key).update(serialized).digest(), expected)) {
      verified = true;
      break;
    }
  }
  if (!verified) return corrupted();
  // Django's JSONSerializer reads the bytes as Latin-1.
  return parsed(latin1(serialized), true, settings.logger);
}

function parsed(json: string, stale: boolean, logger: Logger): DjangoSessionData | null {
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch {
    data = undefined;
  }
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    // Correctly signed, so written with this secret: most likely by a Django
    // app whose SESSION_SERIALIZER is not the JSON one.
    logger.warn(
      "A Django session that is not a JSON object was ignored: the Django app must keep SESSION_SERIALIZER = 'django.contrib.sessions.serializers.JSONSerializer'",
    );
    return null;
  }
  const expiry = (data as Record<string, unknown>)[EXPIRY_KEY];
  return {
    json,
    expiry: typeof expiry === "number" || typeof expiry === "string" ? expiry : null,
    stale,
  };
}

function latin1(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    text += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return text;
}
