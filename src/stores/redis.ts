/**
 * Sessions in Redis (Django's `backends.cache` on a shared cache), through
 * the Redis client the application already has.
 *
 * @module
 */

import { isValidKey } from "../_key.ts";
import { SessionExistsError, SessionInterruptedError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import {
  createWithUniqueKey,
  type SessionStore,
  type StoredSession,
  type StoreSettings,
} from "./store.ts";

/**
 * A Redis client as {@link RedisStore} uses it: any object with one of
 * these methods, tried in this order, sends one command and resolves to
 * Redis's reply (a string, a number or `null`):
 *
 * - `call(command, ...args)`: [ioredis](https://github.com/redis/ioredis)'s
 *   `Redis` (and `Cluster`);
 * - `send(command, args)`: Bun's built-in `RedisClient`;
 * - `sendCommand(args)`: [node-redis](https://github.com/redis/node-redis)'s
 *   client (`createClient()` from `redis`, v4 and later).
 *
 * Any other client is one small object away: `{ sendCommand: (args) => ... }`.
 * The client should fail a command at once while it is disconnected rather
 * than queue it (see docs/engines.md), so that a request gets a 500 instead of
 * hanging.
 *
 * @example Adapting a client with another method name
 * ```ts
 * import type { RedisCommandClient } from "@tessera/sessions";
 *
 * const other = { exec: (args: string[]) => Promise.resolve<unknown>(null) };
 * const client: RedisCommandClient = { sendCommand: (args) => other.exec(args) };
 * ```
 */
export type RedisCommandClient =
  | { call(command: string, ...args: string[]): Promise<unknown> }
  | { send(command: string, args: string[]): Promise<unknown> }
  | { sendCommand(args: string[]): Promise<unknown> };

/**
 * Options of {@link RedisStore}.
 *
 * @example
 * ```ts
 * import type { RedisStoreOptions } from "@tessera/sessions";
 *
 * const client = { sendCommand: (args: string[]) => Promise.resolve<unknown>(null) };
 * const options: RedisStoreOptions = { client, prefix: "myapp:session:" };
 * ```
 */
export interface RedisStoreOptions {
  /**
   * A connected Redis client: node-redis, ioredis, Bun's `RedisClient`, or
   * anything shaped like one of them (see {@link RedisCommandClient}).
   */
  client: RedisCommandClient;
  /**
   * The start of every session's Redis key, so that sessions never share a
   * name with other data in the same database (CVE-2011-4136).
   *
   * @default {"django.contrib.sessions.cache"}
   */
  prefix?: string;
}

type Send = (args: string[]) => Promise<unknown>;

/**
 * Sessions as Redis strings under prefix + key, each with a time to live
 * that ends at the session's expiry, so that Redis removes expired sessions
 * itself and many servers can share them.
 *
 * A new key is written with `SET key value NX PX ttl` (it fails if the key
 * exists), an update with `SET key value XX PX ttl` (it fails if the session
 * was deleted meanwhile, which answers the request with 400 rather than
 * bring the session back). A value holds the expiry instant on its first
 * line and the serialized data after it. A Redis error fails the request
 * with a logged 500; nothing is lost silently. A cookie value that is not a
 * session key never reaches Redis.
 *
 * @example With node-redis
 * ```ts ignore
 * import { createClient } from "redis";
 * import { RedisStore, withSessions } from "@tessera/sessions";
 *
 * const client = createClient({ url: "redis://127.0.0.1:6379", disableOfflineQueue: true });
 * client.on("error", (error) => console.error("Redis:", error.message));
 * await client.connect();
 * Deno.serve(withSessions(handler, { store: new RedisStore({ client }) }));
 * ```
 */
export class RedisStore implements SessionStore {
  /**
   * Redis removes expired sessions by itself: `clearExpired()` does nothing.
   */
  readonly expiresOnItsOwn = true;
  /**
   * The start of every session's Redis key.
   */
  readonly prefix: string;
  readonly #send: Send;
  #logger: Logger = console;

  /**
   * A store on `options.client`.
   *
   * @throws {TypeError} when the client has none of the methods of
   * {@link RedisCommandClient}, or the prefix is not a string.
   * @example
   * ```ts
   * import { RedisStore } from "@tessera/sessions";
   *
   * const client = { sendCommand: (args: string[]) => Promise.resolve<unknown>(null) };
   * const store = new RedisStore({ client, prefix: "myapp:session:" });
   * ```
   */
  constructor(options: RedisStoreOptions) {
    this.#send = commandSender(options?.client);
    const prefix = options.prefix ?? "django.contrib.sessions.cache";
    if (typeof prefix !== "string") {
      throw new TypeError(
        `Cannot create a RedisStore as 'prefix' must be a string: current value is ${
          String(prefix)
        }`,
      );
    }
    this.prefix = prefix;
  }

  /**
   * Keeps the logger of `withSessions`, for values it cannot read.
   *
   * @example
   * ```ts
   * import { RedisStore } from "@tessera/sessions";
   *
   * const client = { sendCommand: (args: string[]) => Promise.resolve<unknown>(null) };
   * new RedisStore({ client }).configure({ cookieName: "sid", cookieAge: 60, secrets: [], logger: console });
   * ```
   */
  configure(settings: StoreSettings): void {
    this.#logger = settings.logger;
  }

  /**
   * The live session under `key` (`GET`), or `null`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { RedisStore } from "@tessera/sessions";
   *
   * const client = { sendCommand: (args: string[]) => Promise.resolve<unknown>(null) };
   * assert.equal(await new RedisStore({ client }).load("abcdefgh12345678"), null);
   * ```
   */
  async load(key: string): Promise<StoredSession | null> {
    if (!isValidKey(key)) return null;
    let reply: unknown;
    try {
      reply = await this.#command(key, "read a session", ["GET", this.prefix + key]);
    } catch (error) {
      // A hash, a list or a set under the name is not a session either.
      if (!(error instanceof Error && error.message.includes("WRONGTYPE"))) throw error;
      reply = false;
    }
    if (reply === null || reply === undefined) return null;
    const record = parseValue(reply);
    if (record === null) {
      this.#logger.warn(`A corrupt session value under the prefix '${this.prefix}' was ignored`);
      return null;
    }
    return record.expiresAt > Date.now() ? record : null;
  }

  /**
   * Whether Redis holds a session under `key` (`EXISTS`).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { RedisStore } from "@tessera/sessions";
   *
   * const client = { sendCommand: (args: string[]) => Promise.resolve<unknown>(0) };
   * assert.equal(await new RedisStore({ client }).exists("abcdefgh12345678"), false);
   * ```
   */
  async exists(key: string): Promise<boolean> {
    if (!isValidKey(key)) return false;
    const reply = await this.#command(key, "check a session", ["EXISTS", this.prefix + key]);
    return isPositive(reply);
  }

  /**
   * Stores `record` under a new key.
   *
   * @example
   * ```ts
   * import { RedisStore } from "@tessera/sessions";
   *
   * const client = { sendCommand: (args: string[]) => Promise.resolve<unknown>("OK") };
   * await new RedisStore({ client }).create({ data: "{}", expiresAt: Date.now() + 60_000 });
   * ```
   */
  create(record: StoredSession): Promise<string> {
    return createWithUniqueKey((key) => this.save(key, record, true));
  }

  /**
   * Stores `record` under `key` with a time to live that ends at its
   * expiry: `SET ... NX` for a new key, `SET ... XX` for an update. A record
   * that has already expired is not stored, and an update to one deletes the
   * session.
   *
   * @example
   * ```ts
   * import { RedisStore } from "@tessera/sessions";
   *
   * const client = { sendCommand: (args: string[]) => Promise.resolve<unknown>("OK") };
   * await new RedisStore({ client }).save("abcdefgh12345678", { data: "{}", expiresAt: Date.now() + 60_000 }, true);
   * ```
   */
  async save(key: string, record: StoredSession, mustCreate = false): Promise<string> {
    if (!isValidKey(key)) {
      throw new TypeError("Cannot save a session as the key is not a session key");
    }
    const name = this.prefix + key;
    const ttl = Math.ceil(record.expiresAt - Date.now());
    if (!(ttl > 0)) {
      // Redis refuses a TTL that is not positive; the session is over.
      if (mustCreate) {
        const taken = await this.#command(key, "check a session", ["EXISTS", name]);
        if (isPositive(taken)) throw new SessionExistsError();
      } else {
        const deleted = await this.#command(key, "delete a session", ["DEL", name]);
        if (!isPositive(deleted)) throw new SessionInterruptedError();
      }
      return key;
    }
    const value = `${record.expiresAt}\n${record.data}`;
    const condition = mustCreate ? "NX" : "XX";
    const reply = await this.#command(key, "write a session", [
      "SET",
      name,
      value,
      condition,
      "PX",
      String(ttl),
    ]);
    if (reply === null || reply === undefined) {
      // NX: the key is taken. XX: the session was deleted by another request.
      throw mustCreate ? new SessionExistsError() : new SessionInterruptedError();
    }
    return key;
  }

  /**
   * Deletes the session under `key` (`DEL`), if any.
   *
   * @example
   * ```ts
   * import { RedisStore } from "@tessera/sessions";
   *
   * const client = { sendCommand: (args: string[]) => Promise.resolve<unknown>(0) };
   * await new RedisStore({ client }).delete("abcdefgh12345678");
   * ```
   */
  async delete(key: string): Promise<void> {
    if (!isValidKey(key)) return;
    await this.#command(key, "delete a session", ["DEL", this.prefix + key]);
  }

  /**
   * Does nothing: Redis removes each session when its time to live ends.
   *
   * @returns 0.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { RedisStore } from "@tessera/sessions";
   *
   * const client = { sendCommand: (args: string[]) => Promise.resolve<unknown>(null) };
   * assert.equal(await new RedisStore({ client }).clearExpired(), 0);
   * ```
   */
  clearExpired(): Promise<number> {
    return Promise.resolve(0);
  }

  async #command(key: string, action: string, args: string[]): Promise<unknown> {
    try {
      return await this.#send(args);
    } catch (error) {
      // Some clients attach the command, and so the session key, to their
      // errors: only the message goes on, with the key masked.
      const message = (error instanceof Error ? error.message : String(error)).replaceAll(
        key,
        "<session key>",
      );
      throw new Error(`Cannot ${action} in Redis: ${message}`);
    }
  }
}

function commandSender(client: unknown): Send {
  const candidate = client as Record<string, unknown> | null | undefined;
  if (typeof candidate?.call === "function") {
    const call = candidate.call as (command: string, ...args: string[]) => Promise<unknown>;
    return (args) => call.call(candidate, args[0]!, ...args.slice(1));
  }
  if (typeof candidate?.send === "function") {
    const send = candidate.send as (command: string, args: string[]) => Promise<unknown>;
    return (args) => send.call(candidate, args[0]!, args.slice(1));
  }
  if (typeof candidate?.sendCommand === "function") {
    const sendCommand = candidate.sendCommand as (args: string[]) => Promise<unknown>;
    return (args) => sendCommand.call(candidate, args);
  }
  throw new TypeError(
    `Cannot create a RedisStore as 'client' must be a Redis client with a call(), send() or sendCommand() method (ioredis, Bun's RedisClient, node-redis): current value is ${
      client === null || typeof client !== "object" ? String(client) : "an object without them"
    }`,
  );
}

const decoder = new TextDecoder();

function parseValue(reply: unknown): StoredSession | null {
  const text = typeof reply === "string"
    ? reply
    : reply instanceof Uint8Array
    ? decoder.decode(reply)
    : null;
  if (text === null) return null;
  const newline = text.indexOf("\n");
  if (newline <= 0) return null;
  const expiresAt = Number(text.slice(0, newline));
  if (!Number.isFinite(expiresAt)) return null;
  return { data: text.slice(newline + 1), expiresAt };
}

function isPositive(reply: unknown): boolean {
  return reply === true || (typeof reply === "number" && reply > 0) ||
    (typeof reply === "bigint" && reply > 0n);
}
