// The synchronous core of Django's django.core.signing, behind the async
// functions of signing.ts and called directly by the engines that sign on
// every request (CookieStore, the Django record format). Every HMAC goes
// through _hmac.ts (node:crypto, compared in constant time): WebCrypto's
// async sign and verify cost tens of microseconds of CPU and a task hop per
// call, more than the rest of a signed-cookie read.

import { deflateSync, inflateSync } from "node:zlib";
import { decodeBase62, encodeBase62 } from "./_base62.ts";
import { hmacSign, hmacVerify } from "./_hmac.ts";
import type {
  DumpsOptions,
  LoadedJson,
  LoadsOptions,
  SignOptions,
  UnsignOptions,
  Verified,
} from "./signing.ts";

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

/** `sign()` of signing.ts, synchronous. */
export function signSync(value: string, options: SignOptions): string {
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
  return `${signed}:${hmacSign(signed, secrets[0]!, salt)}`;
}

/** `verify()` of signing.ts, synchronous. */
export function verifySync(signed: string, options: UnsignOptions): Verified {
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
  const secretIndex = hmacVerify(signedPart, signature, secrets, salt);
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

/** `dumpsJson()` of signing.ts, synchronous. */
export function dumpsJsonSync(json: string, options: DumpsOptions): string {
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
  return signSync(payload, { ...options, salt: options.salt ?? DUMPS_SALT });
}

/** `loadsJson()` of signing.ts, synchronous. */
export function loadsJsonSync(signed: string, options: LoadsOptions): LoadedJson {
  const maxSize = options.maxSize ?? DEFAULT_MAX_SIZE;
  if (!Number.isSafeInteger(maxSize) || maxSize < 0) {
    throw new TypeError(
      `Cannot load as 'maxSize' must be a non-negative whole number of bytes: current value is ${maxSize}`,
    );
  }
  const { value, timestamp, secretIndex } = verifySync(signed, {
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
