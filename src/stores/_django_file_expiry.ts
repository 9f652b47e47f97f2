// The custom expiry a Django session file claims, read without checking its
// signature, for the file engine's sweeper.
//
// Why unverified. The sweeper only decides whether a file is kept or
// removed. For a file that verifies, the claim is the verified value, so the
// sweeper judges a live session exactly as load() does. A file that does
// not verify is no session at all (load() refuses it): whatever it claims,
// judging it by the claim removes nothing live. Checking the signature
// costs an asynchronous WebCrypto call per file (on Deno, a hop to a worker
// thread, about 100 us on this project's test machine), which would make
// the sweep slower than Django's own clearsessions; the claim costs a base64
// decode, an inflate and a JSON parse.

import { inflateSync } from "node:zlib";

const EXPIRY_KEY = "_session_expiry";
// As _django_format.ts: the most JSON a session may inflate to.
const MAX_DATA_BYTES = 1_048_576;
const BASE64URL = /^[A-Za-z0-9_-]*$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * `_session_expiry` as the file's data holds it (a number of seconds, or
 * the ISO date newer Django writes), or `null` when it holds none or is no
 * session data (empty, corrupt, not a JSON object): such a file is judged
 * by its mtime alone, as Django's clearsessions judges it.
 */
export function claimedDjangoExpiry(text: string): number | string | null {
  let json: string;
  try {
    const colon = text.indexOf(":");
    if (colon === -1) {
      // Django's pre-3.1 format: base64(hash + ":" + JSON).
      if (!BASE64.test(text) || text.length > MAX_DATA_BYTES * 2) return null;
      const bytes = Uint8Array.fromBase64(text);
      const inner = bytes.indexOf(58);
      if (inner === -1) return null;
      json = utf8.decode(bytes.subarray(inner + 1));
    } else {
      // signing.dumps: payload ":" timestamp ":" signature; a payload
      // starting with "." is deflated.
      const compressed = text.charCodeAt(0) === 46;
      const base64 = text.slice(compressed ? 1 : 0, colon);
      if (!BASE64URL.test(base64) || base64.length % 4 === 1) return null;
      let bytes: Uint8Array = Uint8Array.fromBase64(base64, { alphabet: "base64url" });
      if (compressed) bytes = inflateSync(bytes, { maxOutputLength: MAX_DATA_BYTES });
      json = utf8.decode(bytes);
    }
  } catch {
    return null;
  }
  // Inside a string value the quotes would be escaped: only a key passes,
  // which spares most sessions the parse.
  if (!json.includes(`"${EXPIRY_KEY}"`)) return null;
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch {
    return null;
  }
  if (data === null || typeof data !== "object" || Array.isArray(data)) return null;
  const expiry = (data as Record<string, unknown>)[EXPIRY_KEY];
  return typeof expiry === "number" || typeof expiry === "string" ? expiry : null;
}
