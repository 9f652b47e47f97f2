// Django's salted HMAC-SHA256, synchronous: node:crypto's createHmac, which
// Deno and Bun both implement without a promise. WebCrypto's async sign and
// verify cost a promise and a task hop per call; on a session read that is
// the largest single cost after the I/O (see docs/benchmarks.md).

import { createHash, createHmac } from "node:crypto";

const encoder = new TextEncoder();

// Deriving a key costs a SHA-256; a server signs with a few (salt, secret)
// pairs, so each is derived once. Keyed by the salt, then the secret, as
// given: a string a caller passes again keeps its hash, where a key built
// from both would be a new string to hash on every call. Bounded, in case a
// caller varies the salt per value.
const keys = new Map<string, Map<string, Uint8Array>>();
const MAX_CACHED_KEYS = 1000;
let cachedKeys = 0;

/** Django's salted_hmac key: SHA-256 of `salt + "signer" + secret`. */
export function hmacKey(salt: string, secret: string): Uint8Array {
  let bySecret = keys.get(salt);
  let key = bySecret?.get(secret);
  if (key === undefined) {
    if (cachedKeys >= MAX_CACHED_KEYS) {
      keys.clear();
      cachedKeys = 0;
      bySecret = undefined;
    }
    if (bySecret === undefined) keys.set(salt, bySecret = new Map());
    key = new Uint8Array(
      createHash("sha256").update(encoder.encode(`${salt}signer${secret}`)).digest(),
    );
    bySecret.set(secret, key);
    cachedKeys++;
  }
  return key;
}

/** The HMAC-SHA256 of `value`'s UTF-8 bytes under the first secret, in base64url without padding. */
export function hmacSign(value: string, secret: string, salt: string): string {
  // A string in and base64url out, both inside node:crypto: no byte array
  // is built on either side (on Bun a third less CPU per signature).
  return createHmac("sha256", hmacKey(salt, secret)).update(value, "utf8").digest("base64url");
}

/**
 * The index of the first secret whose HMAC of `value` is `signature`, a
 * base64url signature in canonical form (43 characters), compared in
 * constant time; -1 when none is.
 */
export function hmacVerify(
  value: string,
  signature: string,
  secrets: readonly string[],
  salt: string,
): number {
  if (signature.length !== SIGNATURE_LENGTH) return -1;
  for (let i = 0; i < secrets.length; i++) {
    if (sameText(hmacSign(value, secrets[i]!, salt), signature)) return i;
  }
  return -1;
}

const SIGNATURE_LENGTH = 43;

// Django's constant_time_compare: every character is compared, whatever
// the first difference, so the time tells nothing of where it was.
function sameText(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return difference === 0;
}
