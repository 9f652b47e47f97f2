// Session keys: Django's VALID_KEY_CHARS and lengths, drawn from a CSPRNG.

/**
 * The characters of a session key. Lowercase only, so that keys also work as
 * file names on case-insensitive file systems (Django's `VALID_KEY_CHARS`).
 */
export const KEY_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

/** Length of a generated key: 32 characters, about 165 bits. */
export const KEY_LENGTH = 32;

// Django accepts any key of 8 characters or more; 40 is its database column's
// width, so longer cookie values are rejected before they reach a store.
const KEY_PATTERN = /^[a-z0-9]{8,40}$/;

// 252 is the largest multiple of 36 below 256: bytes at or above it are
// dropped, so that every character is equally likely (rejection sampling).
const UNBIASED_LIMIT = 252;

/** A new random session key: 32 characters of `a-z0-9` from `crypto.getRandomValues`. */
export function generateKey(): string {
  const bytes = new Uint8Array(48);
  let key = "";
  while (key.length < KEY_LENGTH) {
    crypto.getRandomValues(bytes);
    for (let i = 0; i < bytes.length && key.length < KEY_LENGTH; i++) {
      const byte = bytes[i]!;
      if (byte < UNBIASED_LIMIT) key += KEY_ALPHABET.charAt(byte % 36);
    }
  }
  return key;
}

/**
 * Whether a value can be a session key: 8 to 40 characters of `a-z0-9`.
 * Anything else (a path separator, a dot, NUL, upper case, a short value) is
 * treated as no key at all, before any store or path sees it.
 */
export function isValidKey(value: unknown): boolean {
  return typeof value === "string" && KEY_PATTERN.test(value);
}
