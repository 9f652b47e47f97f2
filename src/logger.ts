/**
 * Where sessions report what they ignored or could not do.
 *
 * @module
 */

/**
 * A sink for the middleware's and the stores' messages. `console` is one.
 * Messages never contain a session key or a secret.
 *
 * @example Collecting messages in a test
 * ```ts
 * import { withSessions, type Logger } from "@tessera/sessions";
 *
 * const seen: string[] = [];
 * const logger: Logger = {
 *   warn: (message) => seen.push(message),
 *   error: (message) => seen.push(message),
 * };
 * withSessions(() => new Response("ok"), { logger });
 * ```
 */
export interface Logger {
  /**
   * Something suspicious was ignored (a corrupt session, a bad signature).
   *
   * @example
   * ```ts
   * console.warn("Session data corrupted");
   * ```
   */
  warn(message: string): void;
  /**
   * Something failed and the request was answered with an error.
   *
   * @example
   * ```ts
   * console.error("Cannot save the session", new Error("ENOSPC"));
   * ```
   */
  error(message: string, error?: unknown): void;
}
