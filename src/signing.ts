/**
 * Django's `django.core.signing`, byte for byte: values signed here verify in
 * Django and values signed by Django verify here, given the same secret and
 * salt.
 *
 * - {@link sign} / {@link unsign}: `TimestampSigner.sign` / `.unsign`
 *   (`value:timestamp:signature`), or `Signer` with `timestamp: false`.
 * - {@link dumps} / {@link loads}: `signing.dumps` / `signing.loads`, a
 *   JSON value in a URL-safe signed string, compressed when that helps.
 * - {@link verify} and {@link loadsJson} tell also when a value was signed
 *   and which secret verified it, so that a value verified with an old
 *   secret can be signed again with the current one.
 *
 * The signature is HMAC-SHA256 whose key is SHA-256 of
 * `salt + "signer" + secret`, in URL-safe base64 without padding; the
 * timestamp is whole seconds in base62. A `secret` may be a list: the first
 * entry signs and every entry verifies (Django's `SECRET_KEY` and
 * `SECRET_KEY_FALLBACKS`). Signatures are computed with node:crypto's
 * `createHmac`, synchronously, and compared in constant time, as
 * Django's `constant_time_compare` does. A compressed payload is inflated
 * only after its signature verified, and never past `maxSize` bytes.
 *
 * Also importable alone as `@tessera/sessions/signing`.
 *
 * @example A signed token that expires
 * ```ts
 * import assert from "node:assert/strict";
 * import { dumps, loads, SignatureExpiredError } from "@tessera/sessions/signing";
 *
 * const secret = "a-long-random-secret-shared-with-django";
 * const token = await dumps({ user: 42 }, { secret, salt: "password-reset" });
 * assert.deepEqual(await loads(token, { secret, salt: "password-reset", maxAge: 3600 }), { user: 42 });
 *
 * const later = Date.now() + 7200_000;
 * await assert.rejects(
 *   loads(token, { secret, salt: "password-reset", maxAge: 3600, now: later }),
 *   SignatureExpiredError,
 * );
 * ```
 *
 * @module
 */

import { dumpsJsonSync, loadsJsonSync, signSync, verifySync } from "./_signer.ts";

export { BadSignatureError, SignatureExpiredError } from "./_signer.ts";

/**
 * Options of {@link sign} and {@link dumps}.
 *
 * @example
 * ```ts
 * import type { SignOptions } from "@tessera/sessions";
 *
 * const options: SignOptions = { secret: ["the-current-secret", "the-previous-secret"], salt: "invites" };
 * ```
 */
export interface SignOptions {
  /**
   * The secret (Django's `SECRET_KEY`), or a list whose first entry signs.
   * Use a long random string; `withSessions` requires 32 bytes or more.
   */
  secret: string | readonly string[];
  /**
   * Separates the uses of one secret: a value signed with one salt never
   * verifies with another.
   *
   * @default {"django.core.signing"} for dumps/loads; for sign/unsign,
   * `"django.core.signing.TimestampSigner"` (or `"django.core.signing.Signer"`
   * with `timestamp: false`), as Django's classes name themselves
   */
  salt?: string;
  /**
   * Whether a timestamp is signed with the value (Django's
   * `TimestampSigner`); `false` signs the value alone (Django's `Signer`),
   * which then never expires.
   *
   * @default {true}
   */
  timestamp?: boolean;
  /**
   * The current time in milliseconds since the epoch; the timestamp is its
   * whole seconds. For tests and for reproducing a value.
   *
   * @default {Date.now()}
   */
  now?: number;
}

/**
 * Options of {@link dumps} and {@link dumpsJson}.
 *
 * @example
 * ```ts
 * import type { DumpsOptions } from "@tessera/sessions";
 *
 * const options: DumpsOptions = { secret: "the-current-secret", compress: true };
 * ```
 */
export interface DumpsOptions extends SignOptions {
  /**
   * Whether to deflate the JSON (zlib format) when that makes it more than
   * one byte shorter; a compressed payload starts with `.`.
   *
   * @default {false}
   */
  compress?: boolean;
}

/**
 * Options of {@link unsign} and {@link verify}.
 *
 * @example
 * ```ts
 * import type { UnsignOptions } from "@tessera/sessions";
 *
 * const options: UnsignOptions = { secret: ["the-current-secret", "the-previous-secret"], maxAge: 3600 };
 * ```
 */
export interface UnsignOptions {
  /**
   * The secrets any of which may have signed the value, the current one
   * first (Django's `SECRET_KEY` then `SECRET_KEY_FALLBACKS`).
   */
  secret: string | readonly string[];
  /**
   * The salt the value was signed with.
   *
   * @default {"django.core.signing"} for dumps/loads; for sign/unsign,
   * `"django.core.signing.TimestampSigner"` (or `"django.core.signing.Signer"`
   * with `timestamp: false`)
   */
  salt?: string;
  /**
   * Whether the value carries a timestamp; must match how it was signed.
   *
   * @default {true}
   */
  timestamp?: boolean;
  /**
   * The oldest a value may be, in seconds since it was signed (Django's
   * `max_age`); older ones throw {@link SignatureExpiredError}. Without
   * it, any age is accepted.
   *
   * @default {undefined}
   */
  maxAge?: number;
  /**
   * The current time in milliseconds since the epoch, for the age check.
   *
   * @default {Date.now()}
   */
  now?: number;
}

/**
 * Options of {@link loads} and {@link loadsJson}.
 *
 * @example
 * ```ts
 * import type { LoadsOptions } from "@tessera/sessions";
 *
 * const options: LoadsOptions = { secret: "the-current-secret", maxAge: 3600, maxSize: 65_536 };
 * ```
 */
export interface LoadsOptions extends UnsignOptions {
  /**
   * The most bytes the JSON may have once decoded and inflated: a larger
   * payload throws a `RangeError` and inflating stops there.
   *
   * @default {1048576} one MiB
   */
  maxSize?: number;
}

/**
 * What {@link verify} found in a correctly signed value.
 *
 * @example
 * ```ts
 * import type { Verified } from "@tessera/sessions";
 *
 * const verified: Verified = { value: "hello", timestamp: 1_700_000_000, secretIndex: 0 };
 * ```
 */
export interface Verified {
  /**
   * The value that was signed.
   */
  value: string;
  /**
   * When it was signed, in whole seconds since the epoch; `null` for a value
   * signed with `timestamp: false`.
   */
  timestamp: number | null;
  /**
   * The position in the `secret` list of the secret that verified it: `0`
   * is the current secret, more means an old one, and the value should be
   * signed again.
   */
  secretIndex: number;
}

/**
 * What {@link loadsJson} found: the JSON text and how it was signed.
 *
 * @example
 * ```ts
 * import type { LoadedJson } from "@tessera/sessions";
 *
 * const loaded: LoadedJson = { json: '{"a":1}', timestamp: 1_700_000_000, secretIndex: 0 };
 * ```
 */
export interface LoadedJson {
  /**
   * The JSON text as it was signed (non-ASCII characters may be `\uXXXX`
   * escapes).
   */
  json: string;
  /**
   * When it was signed, in whole seconds since the epoch; `null` without a
   * timestamp.
   */
  timestamp: number | null;
  /**
   * The position of the secret that verified it; above `0` means an old one.
   */
  secretIndex: number;
}

/**
 * Signs `value` as Django's `TimestampSigner.sign` does:
 * `value:timestamp:signature` (or `value:signature` with
 * `timestamp: false`, as `Signer.sign`).
 *
 * @param value The text to sign; it stays readable in the result.
 * @param options The secret (the first of a list signs) and the salt.
 * @returns The signed value, URL-safe when `value` is.
 * @throws {TypeError} when `secret` or `salt` is not a string.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sign } from "@tessera/sessions";
 *
 * // Django: Signer(key="predictable-secret").sign("foo")
 * const signed = await sign("foo", { secret: "predictable-secret", timestamp: false });
 * assert.equal(signed, "foo:jZQoX_FtSO70jX9HLRGg2A_2s4kdDBxz1QoO_OpEQb0");
 * ```
 */
export function sign(value: string, options: SignOptions): Promise<string> {
  return settle(() => signSync(value, options));
}

/**
 * The value inside a signed value, as Django's `TimestampSigner.unsign`
 * (or `Signer.unsign` with `timestamp: false`) returns it.
 *
 * @param signed A value from {@link sign} or from Django.
 * @param options The secrets to try, the salt and the maximum age.
 * @returns The value that was signed.
 * @throws {BadSignatureError} when no secret verifies the signature.
 * @throws {SignatureExpiredError} when the value is older than `maxAge`.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sign, unsign } from "@tessera/sessions";
 *
 * const signed = await sign("hello", { secret: "the-previous-secret" });
 * const secret = ["the-current-secret", "the-previous-secret"];
 * assert.equal(await unsign(signed, { secret, maxAge: 60 }), "hello");
 * ```
 */
export function unsign(signed: string, options: UnsignOptions): Promise<string> {
  return settle(() => verifySync(signed, options).value);
}

/**
 * Checks a signed value as {@link unsign} does, and tells also when it was
 * signed and which secret verified it. The secrets of the list are tried in
 * turn, each signature compared in constant time.
 *
 * @param signed A value from {@link sign} or from Django.
 * @param options The secrets to try, the salt and the maximum age.
 * @returns The value, its timestamp and the index of the secret.
 * @throws {BadSignatureError} when no secret verifies the signature.
 * @throws {SignatureExpiredError} when the value is older than `maxAge`.
 * @example Re-signing what an old secret signed
 * ```ts
 * import assert from "node:assert/strict";
 * import { sign, verify } from "@tessera/sessions";
 *
 * const secret = ["the-current-secret", "the-previous-secret"];
 * let token = await sign("hello", { secret: "the-previous-secret" });
 * const verified = await verify(token, { secret });
 * if (verified.secretIndex > 0) token = await sign(verified.value, { secret });
 * assert.equal((await verify(token, { secret })).secretIndex, 0);
 * ```
 */
export function verify(signed: string, options: UnsignOptions): Promise<Verified> {
  return settle(() => verifySync(signed, options));
}

/**
 * A JSON value as a URL-safe signed string (Django's `signing.dumps`): the
 * JSON with non-ASCII characters escaped, deflated if `compress` is set and
 * that helps, in base64url, signed with a timestamp.
 *
 * @param value Any value `JSON.stringify` accepts.
 * @param options The secret, the salt and whether to compress.
 * @returns The signed string.
 * @throws {TypeError} when the value has no JSON form (`undefined`, a function).
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { dumps, loads } from "@tessera/sessions";
 *
 * const secret = "a-long-random-secret-shared-with-django";
 * const signed = await dumps(Array.from({ length: 20 }, (_, i) => i), { secret, compress: true });
 * assert.ok(signed.startsWith("."));
 * assert.equal((await loads(signed, { secret }) as number[]).length, 20);
 * ```
 */
export function dumps(value: unknown, options: DumpsOptions): Promise<string> {
  return settle(() => {
    const json = JSON.stringify(value) as string | undefined;
    if (json === undefined) {
      throw new TypeError(
        `Cannot sign as the value has no JSON form: current type is ${typeof value}`,
      );
    }
    return dumpsJsonSync(json, options);
  });
}

/**
 * Signs JSON text as {@link dumps} signs a value, for text that is JSON
 * already (a serialized session): non-ASCII characters are escaped as
 * `\uXXXX` first, as Python's `json.dumps` does, because Django 3.2 reads
 * the signed bytes as Latin-1.
 *
 * @param json JSON text.
 * @param options The secret, the salt and whether to compress.
 * @returns The signed string.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { dumpsJson, loadsJson } from "@tessera/sessions";
 *
 * const secret = "a-long-random-secret-shared-with-django";
 * const signed = await dumpsJson('{"name":"Zoë"}', { secret });
 * assert.equal((await loadsJson(signed, { secret })).json, '{"name":"Zo\\u00eb"}');
 * ```
 */
export function dumpsJson(json: string, options: DumpsOptions): Promise<string> {
  return settle(() => dumpsJsonSync(json, options));
}

/**
 * The value inside a string from {@link dumps} or Django's `signing.dumps`
 * (Django's `signing.loads`). The signature is checked before anything is
 * decoded or inflated.
 *
 * @param signed The signed string.
 * @param options The secrets, the salt, the maximum age and size.
 * @returns The value.
 * @throws {BadSignatureError} when no secret verifies the signature.
 * @throws {SignatureExpiredError} when the value is older than `maxAge`.
 * @throws {RangeError} when the JSON would pass `maxSize` bytes.
 * @throws {TypeError | SyntaxError} when a correctly signed payload is not
 * base64url, zlib or JSON (the signer wrote something else).
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { dumps, loads } from "@tessera/sessions";
 *
 * const secret = "a-long-random-secret-shared-with-django";
 * const signed = await dumps({ a: "dictionary" }, { secret });
 * assert.deepEqual(await loads(signed, { secret, maxAge: 60 }), { a: "dictionary" });
 * ```
 */
export function loads(signed: string, options: LoadsOptions): Promise<unknown> {
  return settle(() => JSON.parse(loadsJsonSync(signed, options).json));
}

/**
 * Checks and decodes a string from {@link dumps} as {@link loads} does, but
 * returns the JSON text unparsed, with the timestamp and the index of the
 * secret that verified it.
 *
 * @param signed The signed string.
 * @param options The secrets, the salt, the maximum age and size.
 * @returns The JSON text, its timestamp and the secret's index.
 * @throws {BadSignatureError} when no secret verifies the signature.
 * @throws {SignatureExpiredError} when the value is older than `maxAge`.
 * @throws {RangeError} when the JSON would pass `maxSize` bytes.
 * @throws {TypeError} when a correctly signed payload is not base64url,
 * zlib or UTF-8.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { dumps, loadsJson } from "@tessera/sessions";
 *
 * const signed = await dumps([1, 2], { secret: "the-previous-secret" });
 * const loaded = await loadsJson(signed, { secret: ["the-current-secret", "the-previous-secret"] });
 * assert.equal(loaded.json, "[1,2]");
 * assert.equal(loaded.secretIndex, 1);
 * ```
 */
export function loadsJson(signed: string, options: LoadsOptions): Promise<LoadedJson> {
  return settle(() => loadsJsonSync(signed, options));
}

// The public functions stay promises, as they were when they used WebCrypto:
// an invalid argument rejects rather than throws.
function settle<T>(run: () => T): Promise<T> {
  try {
    return Promise.resolve(run());
  } catch (error) {
    return Promise.reject(error);
  }
}
