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
 * `SECRET_KEY_FALLBACKS`). Signatures are checked with
 * `crypto.subtle.verify`, in constant time. A compressed payload is inflated
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

import { deflateSync, inflateSync } from "node:zlib";
import { decodeBase62, encodeBase62 } from "./_base62.ts";

/**
 * A signed value whose signature matches none of the secrets, or that is
 * not a signed value at all (Django's `BadSignature`). A tampered,
 * truncated or foreign value throws it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BadSignatureError, sign, unsign } from "@tessera/sessions";
 *
 * const secret = "a-long-random-secret-shared-with-django";
 * const signed = await sign("hello", { secret });
 * await assert.rejects(unsign(signed.replace("hello", "jello"), { secret }), BadSignatureError);
 * ```
 */
export class BadSignatureError extends Error {
  /**
   * An error saying why the value was refused, without the value itself.
   *
   * @param message Why the value was refused.
   */
  constructor(message: string) {
    super(message);
    this.name = "BadSignatureError";
  }
}

/**
 * A correctly signed value that is older than `maxAge` (Django's
 * `SignatureExpired`, a kind of `BadSignature`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BadSignatureError, sign, SignatureExpiredError, unsign } from "@tessera/sessions";
 *
 * const secret = "a-long-random-secret-shared-with-django";
 * const signed = await sign("hello", { secret, now: Date.now() - 60_000 });
 * await assert.rejects(unsign(signed, { secret, maxAge: 30 }), SignatureExpiredError);
 * await assert.rejects(unsign(signed, { secret, maxAge: 30 }), BadSignatureError);
 * ```
 */
export class SignatureExpiredError extends BadSignatureError {
  /**
   * An error giving the value's age and the limit, as Django does.
   *
   * @param message The age and the limit.
   */
  constructor(message: string) {
    super(message);
    this.name = "SignatureExpiredError";
  }
}

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

const DUMPS_SALT = "django.core.signing";
const TIMESTAMP_SIGNER_SALT = "django.core.signing.TimestampSigner";
const SIGNER_SALT = "django.core.signing.Signer";
const DEFAULT_MAX_SIZE = 1_048_576;

// A SHA-256 HMAC is 32 bytes: 43 base64url characters without padding, the
// last of which carries 2 unused bits that must be zero. Requiring the one
// canonical spelling keeps the accepted strings those Django accepts (it
// compares the text).
const SIGNATURE = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;
// Python's json.dumps(ensure_ascii=True) escapes everything outside
// " ".."~"; JSON.stringify already escaped the control characters.
const NOT_ASCII = /[\u007f-\uffff]/g;

const encoder = new TextEncoder();
const utf8 = new TextDecoder("utf-8", { fatal: true });

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
export async function sign(value: string, options: SignOptions): Promise<string> {
  if (typeof value !== "string") {
    throw new TypeError(
      `Cannot sign as the value must be a string: current type is ${typeof value}`,
    );
  }
  const secrets = secretList(options.secret, "sign");
  const timestamped = options.timestamp ?? true;
  const salt = saltOf(options.salt, timestamped ? TIMESTAMP_SIGNER_SALT : SIGNER_SALT, "sign");
  const signed = timestamped
    ? `${value}:${encodeBase62(Math.floor(timeOf(options.now, "sign") / 1000))}`
    : value;
  const key = await hmacKey(salt, secrets[0]!);
  const signature = await crypto.subtle.sign("HMAC", key, encoder.encode(signed));
  return `${signed}:${
    new Uint8Array(signature).toBase64({ alphabet: "base64url", omitPadding: true })
  }`;
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
export async function unsign(signed: string, options: UnsignOptions): Promise<string> {
  return (await verify(signed, options)).value;
}

/**
 * Checks a signed value as {@link unsign} does, and tells also when it was
 * signed and which secret verified it. Every secret of the list is tried,
 * each with `crypto.subtle.verify` (a constant-time comparison).
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
export async function verify(signed: string, options: UnsignOptions): Promise<Verified> {
  const secrets = secretList(options.secret, "verify");
  const timestamped = options.timestamp ?? true;
  const salt = saltOf(options.salt, timestamped ? TIMESTAMP_SIGNER_SALT : SIGNER_SALT, "verify");
  const maxAge = options.maxAge;
  if (maxAge !== undefined && !(typeof maxAge === "number" && maxAge >= 0)) {
    throw new TypeError(
      `Cannot verify as 'maxAge' must be a non-negative number of seconds: current value is ${maxAge}`,
    );
  }
  const now = timeOf(options.now, "verify");
  if (typeof signed !== "string") throw new BadSignatureError("The signed value is not a string");

  const end = signed.lastIndexOf(":");
  if (end === -1) throw new BadSignatureError('No ":" found in the signed value');
  const signedPart = signed.slice(0, end);
  const signature = signed.slice(end + 1);
  if (!SIGNATURE.test(signature)) throw new BadSignatureError("The signature does not match");
  const signatureBytes = Uint8Array.fromBase64(signature, { alphabet: "base64url" });
  const data = encoder.encode(signedPart);
  let secretIndex = -1;
  for (let i = 0; i < secrets.length; i++) {
    const key = await hmacKey(salt, secrets[i]!);
    if (await crypto.subtle.verify("HMAC", key, signatureBytes, data)) {
      secretIndex = i;
      break;
    }
  }
  if (secretIndex === -1) throw new BadSignatureError("The signature does not match");
  if (!timestamped) return { value: signedPart, timestamp: null, secretIndex };

  const separator = signedPart.lastIndexOf(":");
  const timestamp = separator === -1 ? null : decodeBase62(signedPart.slice(separator + 1));
  if (timestamp === null) {
    throw new BadSignatureError("The signed value has no timestamp: it was signed without one");
  }
  if (maxAge !== undefined) {
    const age = now / 1000 - timestamp;
    if (age > maxAge) {
      throw new SignatureExpiredError(`Signature age ${age} > ${maxAge} seconds`);
    }
  }
  return { value: signedPart.slice(0, separator), timestamp, secretIndex };
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
export async function dumps(value: unknown, options: DumpsOptions): Promise<string> {
  const json = JSON.stringify(value) as string | undefined;
  if (json === undefined) {
    throw new TypeError(
      `Cannot sign as the value has no JSON form: current type is ${typeof value}`,
    );
  }
  return await dumpsJson(json, options);
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
export async function dumpsJson(json: string, options: DumpsOptions): Promise<string> {
  if (typeof json !== "string") {
    throw new TypeError(`Cannot sign as the JSON must be a string: current type is ${typeof json}`);
  }
  const bytes = encoder.encode(toAscii(json));
  let payload: string;
  const compressed = options.compress === true ? deflateSync(bytes) : null;
  // Django keeps the compressed form only when it saves more than one byte.
  if (compressed !== null && compressed.length < bytes.length - 1) {
    payload = `.${compressed.toBase64({ alphabet: "base64url", omitPadding: true })}`;
  } else {
    payload = bytes.toBase64({ alphabet: "base64url", omitPadding: true });
  }
  return await sign(payload, { ...options, salt: options.salt ?? DUMPS_SALT });
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
export async function loads(signed: string, options: LoadsOptions): Promise<unknown> {
  return JSON.parse((await loadsJson(signed, options)).json);
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
export async function loadsJson(signed: string, options: LoadsOptions): Promise<LoadedJson> {
  const maxSize = options.maxSize ?? DEFAULT_MAX_SIZE;
  if (!Number.isSafeInteger(maxSize) || maxSize < 0) {
    throw new TypeError(
      `Cannot load as 'maxSize' must be a non-negative whole number of bytes: current value is ${maxSize}`,
    );
  }
  const { value, timestamp, secretIndex } = await verify(signed, {
    ...options,
    salt: options.salt ?? DUMPS_SALT,
  });
  const compressed = value.charCodeAt(0) === 46; // "."
  const base64 = compressed ? value.slice(1) : value;
  if (!BASE64URL.test(base64) || base64.length % 4 === 1) {
    throw new TypeError("Cannot load the signed value as its payload is not base64url");
  }
  let bytes: Uint8Array = Uint8Array.fromBase64(base64, { alphabet: "base64url" });
  if (compressed) {
    try {
      bytes = inflateSync(bytes, { maxOutputLength: Math.max(maxSize, 1) });
    } catch (error) {
      if (error instanceof RangeError) throw tooLarge(maxSize);
      throw new TypeError("Cannot load the signed value as its payload is not zlib data", {
        cause: error,
      });
    }
  }
  if (bytes.length > maxSize) throw tooLarge(maxSize);
  let json: string;
  try {
    json = utf8.decode(bytes);
  } catch (error) {
    throw new TypeError("Cannot load the signed value as its payload is not UTF-8", {
      cause: error,
    });
  }
  return { json, timestamp, secretIndex };
}

function tooLarge(maxSize: number): RangeError {
  return new RangeError(
    `Cannot load the signed value as its payload is over 'maxSize', ${maxSize} bytes`,
  );
}

function toAscii(json: string): string {
  NOT_ASCII.lastIndex = 0;
  if (!NOT_ASCII.test(json)) return json;
  return json.replace(
    NOT_ASCII,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

// Deriving a key costs a SHA-256 and an import; a server signs with a few
// (salt, secret) pairs, so each is derived once. Bounded, in case a caller
// varies the salt per value.
const keys = new Map<string, Promise<CryptoKey>>();
const MAX_CACHED_KEYS = 1000;

function hmacKey(salt: string, secret: string): Promise<CryptoKey> {
  // The salt's length makes the pair unambiguous.
  const id = `${salt.length}:${salt}${secret}`;
  let key = keys.get(id);
  if (key === undefined) {
    if (keys.size >= MAX_CACHED_KEYS) keys.clear();
    key = deriveKey(salt, secret);
    keys.set(id, key);
    key.catch(() => keys.delete(id));
  }
  return key;
}

// Django's salted_hmac: the HMAC key is SHA-256(salt + "signer" + secret).
async function deriveKey(salt: string, secret: string): Promise<CryptoKey> {
  const material = await crypto.subtle.digest("SHA-256", encoder.encode(`${salt}signer${secret}`));
  return crypto.subtle.importKey("raw", material, { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
    "verify",
  ]);
}

function secretList(secret: unknown, action: string): readonly string[] {
  const list = typeof secret === "string" ? [secret] : secret;
  if (
    !Array.isArray(list) || list.length === 0 ||
    !list.every((entry) => typeof entry === "string" && entry !== "")
  ) {
    // Never show a secret, only its shape.
    throw new TypeError(
      `Cannot ${action} as 'secret' must be a non-empty string or a non-empty array of them: current value is ${
        Array.isArray(secret) ? "an array" : `of type ${typeof secret}`
      }`,
    );
  }
  return list;
}

function saltOf(salt: unknown, fallback: string, action: string): string {
  if (salt === undefined) return fallback;
  if (typeof salt !== "string") {
    throw new TypeError(
      `Cannot ${action} as 'salt' must be a string: current value is of type ${typeof salt}`,
    );
  }
  return salt;
}

function timeOf(now: unknown, action: string): number {
  if (now === undefined) return Date.now();
  if (typeof now !== "number" || !Number.isFinite(now) || now < 0) {
    throw new TypeError(
      `Cannot ${action} as 'now' must be milliseconds since the epoch: current value is ${now}`,
    );
  }
  return now;
}
