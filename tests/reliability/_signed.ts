// Django's signed session cookies, written from Django's algorithm on
// node:crypto and node:zlib rather than from the code under test: the
// hostile-input properties make cookies with it (synchronously, as
// fast-check's arbitraries need), and judge with it what CookieStore adopts.
//
// signing.dumps(data, salt, compress=True): the JSON in ASCII, deflated when
// that saves more than a byte (then "." first), in base64url without
// padding; then TimestampSigner: value ":" base62(seconds) ":" signature,
// the signature being base64url(HMAC-SHA256(SHA-256(salt "signer" secret),
// value ":" timestamp)), compared as text.

import { Buffer } from "node:buffer";
import { createHash, createHmac } from "node:crypto";
import { deflateSync, inflateSync } from "node:zlib";

/** The salt of Django's signed_cookies engine, which CookieStore uses. */
export const COOKIE_SALT = "django.contrib.sessions.backends.signed_cookies";

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** Django's b62_encode. */
export function base62(n: number): string {
  if (n === 0) return "0";
  let rest = Math.abs(n);
  let text = "";
  while (rest > 0) {
    text = BASE62[rest % 62]! + text;
    rest = Math.floor(rest / 62);
  }
  return n < 0 ? `-${text}` : text;
}

/** Django's b62_decode, or null for text that is not base62. */
export function fromBase62(text: string): number | null {
  if (!/^-?[0-9A-Za-z]+$/.test(text)) return null;
  const negative = text.startsWith("-");
  let n = 0;
  for (const char of negative ? text.slice(1) : text) n = n * 62 + BASE62.indexOf(char);
  return negative ? -n : n;
}

/** The signature Django's Signer puts after `value`. */
export function signatureOf(value: string, secret: string, salt = COOKIE_SALT): string {
  const key = createHash("sha256").update(`${salt}signer${secret}`).digest();
  return createHmac("sha256", key).update(value).digest("base64url");
}

/** Python's json.dumps(ensure_ascii=True) escapes of what JSON.stringify leaves. */
export function asciiJson(json: string): string {
  return json.replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** The payload part of signing.dumps for these bytes: base64url, deflated when shorter. */
export function payloadOf(bytes: Uint8Array, compress: boolean): string {
  const deflated = compress ? deflateSync(bytes) : null;
  if (deflated !== null && deflated.length < bytes.length - 1) {
    return `.${Buffer.from(deflated).toString("base64url")}`;
  }
  return Buffer.from(bytes).toString("base64url");
}

/** TimestampSigner.sign: `payload:timestamp:signature`. */
export function signPayload(
  payload: string,
  seconds: number | string,
  secret: string,
  salt = COOKIE_SALT,
): string {
  const value = `${payload}:${typeof seconds === "number" ? base62(seconds) : seconds}`;
  return `${value}:${signatureOf(value, secret, salt)}`;
}

/** signing.dumps of JSON text, as a session cookie value signed `seconds` after the epoch. */
export function signJson(
  json: string,
  seconds: number,
  secret: string,
  { compress = true, salt = COOKIE_SALT }: { compress?: boolean; salt?: string } = {},
): string {
  const payload = payloadOf(new TextEncoder().encode(asciiJson(json)), compress);
  return signPayload(payload, seconds, secret, salt);
}

/** What Django's signing.loads would make of a cookie value, for the oracle. */
export interface Verdict {
  /** The index of the secret whose signature it carries, or -1. */
  secretIndex: number;
  /** The signing time in seconds, when the value has one. */
  timestamp: number | null;
  /** The payload decoded to JSON text, when it decodes. */
  json: string | null;
}

/**
 * Checks `cookie` against `secrets` as Django does (the signature compared
 * as text), and decodes its payload.
 */
export function judge(cookie: string, secrets: readonly string[]): Verdict {
  const end = cookie.lastIndexOf(":");
  const value = end === -1 ? "" : cookie.slice(0, end);
  const signature = cookie.slice(end + 1);
  const secretIndex = end === -1
    ? -1
    : secrets.findIndex((secret) => signatureOf(value, secret) === signature);
  const separator = value.lastIndexOf(":");
  const timestamp = separator === -1 ? null : fromBase62(value.slice(separator + 1));
  const payload = value.slice(0, Math.max(separator, 0));
  let json: string | null = null;
  try {
    const compressed = payload.startsWith(".");
    const bytes = Buffer.from(compressed ? payload.slice(1) : payload, "base64url");
    json = new TextDecoder("utf-8", { fatal: true }).decode(
      compressed ? inflateSync(bytes, { maxOutputLength: 4 * 1_048_576 }) : bytes,
    );
  } catch {
    json = null;
  }
  return { secretIndex, timestamp, json };
}
