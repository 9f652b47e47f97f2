// Django's salted HMAC-SHA256, synchronous: node:crypto's createHmac, which
// Deno and Bun both implement without a promise. WebCrypto's async sign and
// verify cost a promise and a task hop per call; on a session read that is
// the largest single cost after the I/O (see docs/benchmarks.md).

import { createHash, createHmac, timingSafeEqual } from "node:crypto";

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
  const mac = createHmac("sha256", hmacKey(salt, secret)).update(encoder.encode(value)).digest();
  return new Uint8Array(mac.buffer, mac.byteOffset, mac.byteLength).toBase64({
    alphabet: "base64url",
    omitPadding: true,
  });
}

/**
 * The index of the first secret whose HMAC of `value` is `signature` (32
 * bytes), compared in constant time; -1 when none is.
 */
export function hmacVerify(
  value: string,
  signature: Uint8Array,
  secrets: readonly string[],
  salt: string,
): number {
  if (signature.length !== 32) return -1;
  const bytes = encoder.encode(value);
  for (let i = 0; i < secrets.length; i++) {
    const mac = createHmac("sha256", hmacKey(salt, secrets[i]!)).update(bytes).digest();
    if (timingSafeEqual(mac, signature)) return i;
  }
  return -1;
}
