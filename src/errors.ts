/**
 * The errors a session can raise that callers are expected to catch.
 *
 * @module
 */

const INTERRUPTED_MESSAGE =
  "The request's session was deleted before the request completed. The user may have logged out in a concurrent request, for example.";

/**
 * The session was deleted by another request between this request's load and
 * its save (Django's `UpdateError`, answered as `SessionInterrupted`).
 *
 * A store throws it from `save()` when asked to update a record that no longer
 * exists, rather than bring back a session a concurrent logout removed. The
 * middleware answers such a request with `400 Bad Request`.
 *
 * @example Telling a concurrent logout apart from other failures
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryStore, SessionInterruptedError } from "@tessera/sessions";
 *
 * const store = new MemoryStore();
 * await assert.rejects(
 *   store.save("abcdefgh12345678", { data: "{}", expiresAt: Date.now() + 1000 }),
 *   SessionInterruptedError,
 * );
 * ```
 */
export class SessionInterruptedError extends Error {
  /** Makes an error with Django's message for this condition. */
  constructor() {
    super(INTERRUPTED_MESSAGE);
    this.name = "SessionInterruptedError";
  }
}

/**
 * A store was asked to create a record under a key that is already taken
 * (Django's `CreateError`). `create()` retries with a fresh key when it sees
 * it; callers of `save(key, record, true)` may see it directly.
 *
 * @example A key can be created once
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryStore, SessionExistsError } from "@tessera/sessions";
 *
 * const store = new MemoryStore();
 * const record = { data: "{}", expiresAt: Date.now() + 1000 };
 * await store.save("abcdefgh12345678", record, true);
 * await assert.rejects(store.save("abcdefgh12345678", record, true), SessionExistsError);
 * ```
 */
export class SessionExistsError extends Error {
  /** Makes an error saying the key is taken, without naming the key. */
  constructor() {
    super("Cannot create the session as its key is already in use");
    this.name = "SessionExistsError";
  }
}

/**
 * The session store failed (disk full, permission denied, the server is
 * down). The original error is kept as `cause`. The middleware logs it and
 * answers `500 Internal Server Error`; it never reports a lost write as
 * success.
 *
 * @example Catching a store failure in a handler
 * ```ts
 * import assert from "node:assert/strict";
 * import { SessionStoreError } from "@tessera/sessions";
 *
 * const error = new SessionStoreError("Cannot load the session", new Error("disk on fire"));
 * assert.equal(error.name, "SessionStoreError");
 * assert.ok(error.cause instanceof Error);
 * ```
 */
export class SessionStoreError extends Error {
  /**
   * Wraps a store's error.
   *
   * @param message What could not be done, without keys or secrets.
   * @param cause The store's own error.
   */
  constructor(message: string, cause: unknown) {
    super(message, { cause });
    this.name = "SessionStoreError";
  }
}
