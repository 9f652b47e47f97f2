// Authenticated records: with a secret, withSessions puts this wrapper around
// every server-side store, so that a record is a session only if this
// application signed it.
//
// Why a wrapper. The threat is the same for every engine (someone who can
// write the store: another local user in a shared temp dir, another
// application on the same Redis or database), and the defence needs nothing
// of an engine but the text it keeps. Engines keep treating `data` as
// opaque; the signature lives at the start of it.
//
// What is signed. The key, the expiry and the data together: a record copied
// to another key, given a later expiry (a file's first line, a row's
// expire_date) or edited does not verify. The HMAC and key derivation are
// signing.ts's (Django's salted_hmac with its own salt), so rotation works
// as for CookieStore: the first secret signs, every secret verifies, and a
// record verified with an old one is re-signed on its next save.

import type { Logger } from "../logger.ts";
import { hmacSign, hmacVerify } from "../_hmac.ts";
import {
  createWithUniqueKey,
  type SessionStore,
  type StoredSession,
  type SweepOptions,
  type SweepReport,
} from "./store.ts";

// Separates this use of the secret from every other (cookies, Django's data).
const SALT = "tessera.sessions.StoredRecord";
// "s1:" + a 43-character base64url HMAC-SHA256 + ":" + the data.
const MARK = "s1:";
const SIGNATURE_LENGTH = 43;
const HEADER_LENGTH = MARK.length + SIGNATURE_LENGTH + 1;
// 32 bytes in base64url: the last character carries 2 bits and 4 zero bits.
const SIGNATURE = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;
// The last millisecond of the year 9999: a store may keep no later expiry
// (SQL dates), and a signed expiry must come back exactly as it was signed.
const LAST_INSTANT = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/** How a store's records are authenticated. */
export interface SealOptions {
  /** The secrets, the first one signing. Never empty. */
  secrets: readonly string[];
  /** Where a record that does not verify is reported. */
  logger: Logger;
  /**
   * Load a record that carries no signature at all (one written before a
   * secret was set) and sign it on this request, instead of ignoring it.
   */
  acceptUnsigned: boolean;
}

/**
 * `store`, with every record it keeps signed and every record it returns
 * verified.
 */
export function sealStore(store: SessionStore, options: SealOptions): SessionStore {
  return new SealedStore(store, options);
}

class SealedStore implements SessionStore {
  readonly #inner: SessionStore;
  readonly #options: SealOptions;
  // Present only when the inner store has them: their absence means
  // something (the default key alphabet; no sweep report).
  readonly isValidKey?: (value: string) => boolean;
  readonly sweep?: (options?: SweepOptions) => Promise<SweepReport>;

  constructor(inner: SessionStore, options: SealOptions) {
    this.#inner = inner;
    this.#options = options;
    if (inner.isValidKey !== undefined) this.isValidKey = (value) => inner.isValidKey!(value);
    if (inner.sweep !== undefined) this.sweep = (sweepOptions) => inner.sweep!(sweepOptions);
  }

  get expiresOnItsOwn(): boolean {
    return this.#inner.expiresOnItsOwn ?? false;
  }

  async load(key: string): Promise<StoredSession | null> {
    const record = await this.#inner.load(key);
    return record === null ? null : this.#open(key, record);
  }

  exists(key: string): Promise<boolean> {
    return this.#inner.exists(key);
  }

  create(record: StoredSession): Promise<string> {
    // The key is signed with the record, so it is picked here rather than by
    // the store; save(key, record, true) is the store's exclusive create.
    return createWithUniqueKey((key) => this.save(key, record, true));
  }

  async save(key: string, record: StoredSession, mustCreate = false): Promise<string> {
    return await this.#inner.save(key, this.#seal(key, record), mustCreate);
  }

  delete(key: string): Promise<void> {
    return this.#inner.delete(key);
  }

  clearExpired(): Promise<number> {
    return this.#inner.clearExpired();
  }

  // Synchronous HMAC (node:crypto): WebCrypto's promise per call cost more
  // CPU than the HMAC itself (docs/benchmarks.md).
  #seal(key: string, record: StoredSession): StoredSession {
    const expiresAt = Math.min(Math.floor(record.expiresAt), LAST_INSTANT);
    const signature = hmacSign(
      message(key, expiresAt, record.data),
      this.#options.secrets[0]!,
      SALT,
    );
    return { data: `${MARK}${signature}:${record.data}`, expiresAt };
  }

  #open(key: string, record: StoredSession): StoredSession | null {
    const text = record.data;
    if (!text.startsWith(MARK) || text.charCodeAt(HEADER_LENGTH - 1) !== 58 /* ":" */) {
      if (this.#options.acceptUnsigned) {
        return { data: text, expiresAt: record.expiresAt, refresh: true };
      }
      this.#options.logger.warn(
        "A stored session without a signature was ignored (SuspiciousSession): it was written without a secret, or by something other than this application",
      );
      return null;
    }
    const data = text.slice(HEADER_LENGTH);
    const signature = text.slice(MARK.length, HEADER_LENGTH - 1);
    const secretIndex = SIGNATURE.test(signature)
      ? hmacVerify(
        message(key, record.expiresAt, data),
        signature,
        this.#options.secrets,
        SALT,
      )
      : -1;
    if (secretIndex === -1) {
      this.#options.logger.warn(
        "A stored session whose signature does not verify was ignored (SuspiciousSession): it was changed, moved to another key, or signed with another secret",
      );
      return null;
    }
    return secretIndex === 0
      ? { data, expiresAt: record.expiresAt }
      : { data, expiresAt: record.expiresAt, refresh: true };
  }
}

// The key is of the key alphabet (no newline) and the expiry a number, so
// the three parts cannot be shifted into one another.
function message(key: string, expiresAt: number, data: string): string {
  return `${key}\n${expiresAt}\n${data}`;
}
