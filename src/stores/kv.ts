/**
 * Sessions in Deno KV: a local SQLite file under Deno, a managed, replicated
 * database on Deno Deploy. Deno only.
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
  type SweepOptions,
  type SweepReport,
} from "./store.ts";

/**
 * A Deno KV key (`Deno.KvKey`): a list of parts, each a string, a number, a
 * bigint, a boolean or bytes.
 *
 * @example
 * ```ts
 * import type { DenoKvKey } from "@tessera/sessions";
 *
 * const prefix: DenoKvKey = ["myapp", "sessions"];
 * ```
 */
export type DenoKvKey = readonly (string | number | bigint | boolean | Uint8Array)[];

/**
 * One entry as Deno KV returns it (`Deno.KvEntryMaybe`): a `versionstamp`
 * of `null` means there is no entry under the key.
 *
 * @example
 * ```ts
 * import type { DenoKvEntry } from "@tessera/sessions";
 *
 * const missing: DenoKvEntry = { key: ["sessions", "abcdefgh12345678"], value: null, versionstamp: null };
 * ```
 */
export interface DenoKvEntry {
  /** The entry's key. */
  readonly key: readonly unknown[];
  /** The stored value, or `null` when there is no entry. */
  readonly value: unknown;
  /** The version of the entry, or `null` when there is no entry. */
  readonly versionstamp: string | null;
}

/**
 * The part of `Deno.AtomicOperation` that {@link KvStore} uses: checks and
 * mutations that commit together or not at all.
 *
 * @example
 * ```ts
 * import type { DenoKv, DenoKvAtomicOperation } from "@tessera/sessions";
 *
 * function createOnly(kv: DenoKv, key: string[], value: Uint8Array): DenoKvAtomicOperation {
 *   return kv.atomic().check({ key, versionstamp: null }).set(key, value);
 * }
 * ```
 */
export interface DenoKvAtomicOperation {
  /** Commits only if each key's entry still has this versionstamp (`null`: no entry). */
  check(...checks: { key: DenoKvKey; versionstamp: string | null }[]): DenoKvAtomicOperation;
  /** Stores `value` under `key`; KV may delete it once `expireIn` milliseconds have passed. */
  set(key: DenoKvKey, value: unknown, options?: { expireIn?: number }): DenoKvAtomicOperation;
  /** Deletes the entry under `key`. */
  delete(key: DenoKvKey): DenoKvAtomicOperation;
  /** Applies everything, or nothing when a check failed (`ok: false`). */
  commit(): Promise<{ ok: boolean }>;
}

/**
 * The part of `Deno.Kv` that {@link KvStore} uses, typed here so that the
 * package type-checks where Deno's own types are absent (a Bun project).
 * What `Deno.openKv()` resolves to is one.
 *
 * @example
 * ```ts
 * import type { DenoKv } from "@tessera/sessions";
 *
 * const kv: DenoKv = await Deno.openKv(":memory:");
 * kv.close();
 * ```
 */
export interface DenoKv {
  /** The entry under `key`. */
  get(key: DenoKvKey, options?: { consistency?: "strong" | "eventual" }): Promise<DenoKvEntry>;
  /** The entries whose key starts with `prefix`, in key order. */
  list(
    selector: { prefix: DenoKvKey },
    options?: { batchSize?: number; consistency?: "strong" | "eventual" },
  ): AsyncIterable<DenoKvEntry>;
  /** Deletes the entry under `key`, if any. */
  delete(key: DenoKvKey): Promise<unknown>;
  /** A new atomic operation. */
  atomic(): DenoKvAtomicOperation;
  /** Closes the database. */
  close(): void;
}

/**
 * Options of {@link KvStore}.
 *
 * @example
 * ```ts
 * import type { KvStoreOptions } from "@tessera/sessions";
 *
 * const options: KvStoreOptions = { kv: await Deno.openKv(":memory:"), prefix: ["myapp", "sessions"] };
 * options.kv?.close();
 * ```
 */
export interface KvStoreOptions {
  /**
   * An open Deno KV database, such as `await Deno.openKv("./sessions.kv")`.
   * It stays open when the store is closed. Without it, the store opens
   * `Deno.openKv()` (Deno Deploy's database, or a local default file) on
   * first use.
   *
   * @default {undefined}
   */
  kv?: DenoKv;
  /**
   * The start of every session's KV key, so that sessions never share a key
   * with other data in the same database: a session is `[...prefix, key]`.
   *
   * @default {["tessera", "sessions"]}
   */
  prefix?: DenoKvKey;
}

/** The default namespace of the sessions in a KV database. */
const DEFAULT_PREFIX: DenoKvKey = ["tessera", "sessions"];

// Deno KV refuses a value over 64 KiB ("Value too large (max 65536 bytes)").
// Values are bytes, so the limit is checked before the commit, exactly.
const MAX_VALUE_BYTES = 65_536;

// Deno 2.9 refuses an expireIn that puts the deletion past about year
// 262000 ("expireIn is too large"); a session that long-lived gets none.
const MAX_EXPIRE_IN = 1e15;

// A record whose expiry has already passed (a session given a past Date)
// is stored with this deletion delay, so that a sweep finds and counts it
// rather than race KV's own deletion; no load ever returns it.
const EXPIRED_GRACE = 60_000;

// Two processes on one local KV file see "database is locked" on commits
// that overlap (SQLite's busy error, which Deno 2.9 does not wait out).
// An operation is retried with a growing, randomised pause until this long
// after its first try, the same bound as SqliteStore's busyTimeout.
const LOCK_TIMEOUT = 5000;
const MAX_LOCK_PAUSE = 50;

// How often a sweep reports progress, in entries.
const PROGRESS_EVERY = 1000;

const encoder = new TextEncoder();
// Not fatal, as files and Redis values are read: a stored byte that is not
// UTF-8 becomes U+FFFD and the data fails to decode as a session.
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

interface DenoRuntime {
  openKv?: (path?: string) => Promise<DenoKv>;
}

/**
 * Sessions in Deno KV, each under `[...prefix, key]` as bytes: its expiry
 * instant on the first line, its serialized data after it.
 *
 * A new key is written by an atomic operation that checks that no entry
 * has the key; an update by one that checks the versionstamp read just
 * before it. When that check fails because another request saved the same
 * session in between, the update reads again and retries (the last save
 * wins, as on every engine); when the entry is gone, a concurrent request
 * deleted it, and the save fails with `SessionInterruptedError` (400)
 * rather than bring it back. Reads use KV's strong consistency, so a
 * session deleted at logout is not read back from a stale replica.
 *
 * Each entry gets `expireIn` from the session's expiry, but KV deletes an
 * expired entry lazily, at some time after it: every read checks the stored
 * expiry too, and `clearExpired()` sweeps the prefix for entries whose
 * expiry has passed. A session over KV's 64 KiB value limit fails its save
 * with a clear error (a logged 500), never a truncated session. Records are
 * kept as opaque text, and with a `secret` they are signed like every other
 * engine's.
 *
 * Deno KV is unstable in Deno 2.9: run with `--unstable-kv`, or put
 * `"unstable": ["kv"]` in `deno.json`. Under Bun the constructor throws.
 * A local KV file is created with the process's umask (often readable by
 * every user): keep it in a directory only the server's user can enter.
 * Two processes may share one local file; their overlapping commits, which
 * SQLite refuses with "database is locked", are retried for up to 5 s.
 *
 * @example Sessions in a local KV file
 * ```ts
 * import assert from "node:assert/strict";
 * import { getSession, KvStore, withSessions } from "@tessera/sessions";
 *
 * const kv = await Deno.openKv(`${Deno.makeTempDirSync()}/sessions.kv`);
 * const handler = withSessions(async (req) => {
 *   const session = await getSession<{ visits: number }>(req);
 *   session.set("visits", (session.get("visits") ?? 0) + 1);
 *   return new Response(`visit ${session.get("visits")}`);
 * }, { store: new KvStore({ kv }) });
 *
 * const first = await handler(new Request("http://localhost/"));
 * const cookie = first.headers.get("set-cookie")!.split(";")[0]!;
 * const second = await handler(new Request("http://localhost/", { headers: { cookie } }));
 * assert.equal(await second.text(), "visit 2");
 * kv.close();
 * ```
 */
export class KvStore implements SessionStore {
  /**
   * False: KV deletes an expired entry only some time after its expiry, so
   * `clearExpired()` still has work to do, and `clearsessions` runs it.
   */
  readonly expiresOnItsOwn = false;
  /**
   * The start of every session's KV key.
   */
  readonly prefix: DenoKvKey;
  #kv: Promise<DenoKv> | undefined;
  readonly #open: (() => Promise<DenoKv>) | null;
  #logger: Logger = console;

  /**
   * A store on `options.kv`, or on `Deno.openKv()` opened on first use.
   *
   * @throws {Error} when not running on Deno, or when no `kv` is given and
   * Deno KV is not enabled (`--unstable-kv`).
   * @throws {TypeError} when `kv` is not a Deno KV database or `prefix` is
   * not a non-empty KV key.
   * @example
   * ```ts
   * import { KvStore } from "@tessera/sessions";
   *
   * const kv = await Deno.openKv(":memory:");
   * const store = new KvStore({ kv, prefix: ["myapp", "sessions"] });
   * kv.close();
   * ```
   */
  constructor(options: KvStoreOptions = {}) {
    const deno = (globalThis as { Deno?: DenoRuntime }).Deno;
    if (deno === undefined) {
      throw new Error(
        `Cannot create a KvStore as Deno KV needs the Deno runtime: current runtime is ${runtimeName()}`,
      );
    }
    const kv = options?.kv;
    if (kv !== undefined && !isKv(kv)) {
      throw new TypeError(
        `Cannot create a KvStore as 'kv' must be a Deno KV database from Deno.openKv(): current value is ${
          kv === null || typeof kv !== "object" ? String(kv) : "an object without its methods"
        }`,
      );
    }
    const prefix = options?.prefix ?? DEFAULT_PREFIX;
    if (!isKvKey(prefix)) {
      throw new TypeError(
        `Cannot create a KvStore as 'prefix' must be a non-empty KV key (an array of strings, numbers, bigints, booleans or Uint8Arrays): current value is ${
          describe(prefix)
        }`,
      );
    }
    this.prefix = Object.freeze([...prefix]);
    if (kv !== undefined) {
      this.#kv = Promise.resolve(kv);
      this.#open = null;
      return;
    }
    const openKv = deno.openKv;
    if (typeof openKv !== "function") {
      throw new Error(
        `Cannot create a KvStore as Deno KV is unstable in Deno 2 and must be enabled with the --unstable-kv flag or "unstable": ["kv"] in deno.json: current value of Deno.openKv is ${typeof openKv}`,
      );
    }
    this.#open = () => openKv.call(deno);
  }

  /**
   * Keeps the logger of `withSessions`, for entries it cannot read.
   *
   * @example
   * ```ts
   * import { KvStore } from "@tessera/sessions";
   *
   * const kv = await Deno.openKv(":memory:");
   * new KvStore({ kv }).configure({ cookieName: "sid", cookieAge: 60, secrets: [], logger: console });
   * kv.close();
   * ```
   */
  configure(settings: StoreSettings): void {
    this.#logger = settings.logger;
  }

  /**
   * The live session under `key`, or `null`; an entry whose stored expiry
   * has passed is `null` even while KV still holds it.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { KvStore } from "@tessera/sessions";
   *
   * const kv = await Deno.openKv(":memory:");
   * assert.equal(await new KvStore({ kv }).load("abcdefgh12345678"), null);
   * kv.close();
   * ```
   */
  async load(key: string): Promise<StoredSession | null> {
    if (!isValidKey(key)) return null;
    const entry = await this.#run(key, "read a session", (kv) => kv.get(this.#keyOf(key)));
    if (entry.versionstamp === null) return null;
    const record = parseValue(entry.value);
    if (record === null) {
      this.#logger.warn(
        `A corrupt session entry under the KV prefix ${this.#prefixText()} was ignored`,
      );
      return null;
    }
    return record.expiresAt > Date.now() ? record : null;
  }

  /**
   * Whether KV holds an entry under `key`, expired or not (as in Django).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { KvStore } from "@tessera/sessions";
   *
   * const kv = await Deno.openKv(":memory:");
   * assert.equal(await new KvStore({ kv }).exists("abcdefgh12345678"), false);
   * kv.close();
   * ```
   */
  async exists(key: string): Promise<boolean> {
    if (!isValidKey(key)) return false;
    const entry = await this.#run(key, "check a session", (kv) => kv.get(this.#keyOf(key)));
    return entry.versionstamp !== null;
  }

  /**
   * Stores `record` under a new key.
   *
   * @example
   * ```ts
   * import { KvStore } from "@tessera/sessions";
   *
   * const kv = await Deno.openKv(":memory:");
   * await new KvStore({ kv }).create({ data: "{}", expiresAt: Date.now() + 60_000 });
   * kv.close();
   * ```
   */
  create(record: StoredSession): Promise<string> {
    return createWithUniqueKey((key) => this.save(key, record, true));
  }

  /**
   * Stores `record` under `key`: with `mustCreate`, only if no entry has the
   * key; otherwise only over the entry as last read, reading again when
   * another request saved it in between.
   *
   * @throws {SessionExistsError} with `mustCreate`, when the key is taken.
   * @throws {SessionInterruptedError} without it, when the entry is gone.
   * @throws {RangeError} when the record is over KV's 64 KiB value limit.
   * @example
   * ```ts
   * import { KvStore } from "@tessera/sessions";
   *
   * const kv = await Deno.openKv(":memory:");
   * const store = new KvStore({ kv });
   * await store.save("abcdefgh12345678", { data: "{}", expiresAt: Date.now() + 60_000 }, true);
   * await store.save("abcdefgh12345678", { data: '{"a":1}', expiresAt: Date.now() + 60_000 });
   * kv.close();
   * ```
   */
  async save(key: string, record: StoredSession, mustCreate = false): Promise<string> {
    if (!isValidKey(key)) {
      throw new TypeError("Cannot save a session as the key is not a session key");
    }
    const value = encodeValue(record);
    if (value.length > MAX_VALUE_BYTES) {
      throw new RangeError(
        `Cannot save a session in Deno KV as a value holds at most ${MAX_VALUE_BYTES} bytes: current size is ${value.length} bytes`,
      );
    }
    const name = this.#keyOf(key);
    const ttl = Math.ceil(record.expiresAt - Date.now());
    const expiry = ttl > MAX_EXPIRE_IN ? {} : { expireIn: ttl > 0 ? ttl : EXPIRED_GRACE };
    if (mustCreate) {
      const result = await this.#run(
        key,
        "write a session",
        (kv) =>
          kv.atomic().check({ key: name, versionstamp: null }).set(name, value, expiry).commit(),
      );
      if (!result.ok) throw new SessionExistsError();
      return key;
    }
    const deadline = Date.now() + LOCK_TIMEOUT;
    for (let pause = 1;; pause = Math.min(pause * 2, MAX_LOCK_PAUSE)) {
      const entry = await this.#run(key, "read a session", (kv) => kv.get(name));
      // Django's UpdateError: a session another request deleted stays deleted.
      if (entry.versionstamp === null) throw new SessionInterruptedError();
      if (pause > 1 && Date.now() >= deadline) {
        throw new Error(
          `Cannot save a session in Deno KV as other requests saved it before each attempt for ${LOCK_TIMEOUT} ms`,
        );
      }
      const result = await this.#run(
        key,
        "write a session",
        (kv) =>
          kv.atomic().check({ key: name, versionstamp: entry.versionstamp }).set(
            name,
            value,
            expiry,
          )
            .commit(),
      );
      if (result.ok) return key;
      // Another request saved the session since it was read: read it again
      // after a random pause, so that a crowd of writers on one session
      // thins out rather than collide on every round.
      await sleep(pause);
    }
  }

  /**
   * Deletes the session under `key`, if any.
   *
   * @example
   * ```ts
   * import { KvStore } from "@tessera/sessions";
   *
   * const kv = await Deno.openKv(":memory:");
   * await new KvStore({ kv }).delete("abcdefgh12345678");
   * kv.close();
   * ```
   */
  async delete(key: string): Promise<void> {
    if (!isValidKey(key)) return;
    await this.#run(key, "delete a session", (kv) => kv.delete(this.#keyOf(key)));
  }

  /**
   * Deletes every entry under the prefix whose stored expiry has passed
   * (see {@link KvStore.sweep}). KV would delete them too, but only some
   * time after their expiry: the sweep frees the space at a known time.
   *
   * @returns How many it deleted.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { KvStore } from "@tessera/sessions";
   *
   * const kv = await Deno.openKv(":memory:");
   * assert.equal(await new KvStore({ kv }).clearExpired(), 0);
   * kv.close();
   * ```
   */
  async clearExpired(options: SweepOptions = {}): Promise<number> {
    return (await this.sweep(options)).removed;
  }

  /**
   * Lists the entries under the prefix and deletes each one whose stored
   * expiry has passed, in an atomic operation that checks its versionstamp:
   * a session saved again during the sweep is kept. An entry it cannot read
   * is left to KV's own expiry and counted as kept.
   *
   * @example A dry run
   * ```ts
   * import assert from "node:assert/strict";
   * import { KvStore } from "@tessera/sessions";
   *
   * const kv = await Deno.openKv(":memory:");
   * const store = new KvStore({ kv });
   * await store.create({ data: "{}", expiresAt: Date.now() - 1000 });
   * const { removed } = await store.sweep({ dryRun: true });
   * assert.equal(removed, 1);
   * kv.close();
   * ```
   */
  async sweep(options: SweepOptions = {}): Promise<SweepReport> {
    const now = options.now ?? Date.now();
    const report: SweepReport = { removed: 0, kept: 0, tempRemoved: 0, failed: 0, errors: [] };
    const kv = await this.#database();
    let checked = 0;
    try {
      for await (const entry of kv.list({ prefix: this.prefix })) {
        checked++;
        if (options.onProgress && checked % PROGRESS_EVERY === 0) options.onProgress(checked);
        const record = parseValue(entry.value);
        if (record === null || record.expiresAt > now) {
          report.kept++;
          continue;
        }
        if (options.dryRun) {
          report.removed++;
          continue;
        }
        const key = entry.key as DenoKvKey;
        try {
          const result = await this.#retryLocked(() =>
            kv.atomic().check({ key, versionstamp: entry.versionstamp }).delete(key).commit()
          );
          if (result.ok) report.removed++;
          else report.kept++;
        } catch (error) {
          report.failed++;
          if (report.errors.length < 5) {
            report.errors.push(`Cannot delete an expired session in Deno KV: ${messageOf(error)}`);
          }
        }
      }
    } catch (error) {
      throw new Error(`Cannot list the sessions in Deno KV: ${messageOf(error)}`, { cause: error });
    }
    options.onProgress?.(checked);
    return report;
  }

  /**
   * Closes the KV database if the store opened it; a `kv` passed in stays
   * open for its owner.
   *
   * @example
   * ```ts
   * import { KvStore } from "@tessera/sessions";
   *
   * const kv = await Deno.openKv(":memory:");
   * new KvStore({ kv }).close();
   * kv.close();
   * ```
   */
  async close(): Promise<void> {
    const opened = this.#kv;
    if (this.#open === null || opened === undefined) return;
    this.#kv = undefined;
    (await opened).close();
  }

  #keyOf(key: string): DenoKvKey {
    return [...this.prefix, key];
  }

  #prefixText(): string {
    return describe(this.prefix);
  }

  #database(): Promise<DenoKv> {
    if (this.#kv === undefined) {
      const opening = this.#open!().catch((error) => {
        // The next request tries again (a permission granted meanwhile).
        if (this.#kv === opening) this.#kv = undefined;
        throw new Error(`Cannot open Deno KV: ${messageOf(error)}`, { cause: error });
      });
      this.#kv = opening;
    }
    return this.#kv;
  }

  async #run<T>(key: string, action: string, body: (kv: DenoKv) => Promise<T>): Promise<T> {
    const kv = await this.#database();
    try {
      return await this.#retryLocked(() => body(kv));
    } catch (error) {
      // KV's messages name limits, not keys; the key is masked all the same.
      const message = messageOf(error).replaceAll(key, "<session key>");
      throw new Error(`Cannot ${action} in Deno KV: ${message}`, { cause: error });
    }
  }

  async #retryLocked<T>(body: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + LOCK_TIMEOUT;
    for (let pause = 1;; pause = Math.min(pause * 2, MAX_LOCK_PAUSE)) {
      try {
        return await body();
      } catch (error) {
        if (!isLocked(error) || Date.now() >= deadline) throw error;
      }
      await sleep(pause);
    }
  }
}

// A pause of up to `ms` milliseconds, random so that retries spread out.
function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 1 + Math.random() * ms));
}

function encodeValue(record: StoredSession): Uint8Array {
  return encoder.encode(`${record.expiresAt}\n${record.data}`);
}

function parseValue(value: unknown): StoredSession | null {
  if (!(value instanceof Uint8Array)) return null;
  const newline = value.indexOf(10);
  if (newline <= 0) return null;
  const expiresAt = Number(decoder.decode(value.subarray(0, newline)));
  if (!Number.isFinite(expiresAt)) return null;
  return { data: decoder.decode(value.subarray(newline + 1)), expiresAt };
}

// SQLite's SQLITE_BUSY as Deno 2.9 reports it: `TypeError: database is locked`.
function isLocked(error: unknown): boolean {
  return error instanceof Error && /database is (locked|busy)/i.test(error.message);
}

function isKv(value: unknown): value is DenoKv {
  const candidate = value as Record<string, unknown> | null;
  return typeof candidate === "object" && candidate !== null &&
    ["get", "list", "delete", "atomic", "close"].every((name) =>
      typeof candidate[name] === "function"
    );
}

function isKvKey(value: unknown): value is DenoKvKey {
  return Array.isArray(value) && value.length > 0 &&
    value.every((part) =>
      typeof part === "string" || typeof part === "bigint" || typeof part === "boolean" ||
      (typeof part === "number" && !Number.isNaN(part)) || part instanceof Uint8Array
    );
}

function describe(value: unknown): string {
  try {
    return JSON.stringify(value, (_, part) => typeof part === "bigint" ? `${part}n` : part) ??
      String(value);
  } catch {
    return String(value);
  }
}

function runtimeName(): string {
  const bun = (globalThis as { Bun?: { version?: string } }).Bun;
  if (typeof bun?.version === "string") return `Bun ${bun.version}`;
  const node = (globalThis as { process?: { versions?: { node?: string } } }).process;
  if (typeof node?.versions?.node === "string") return `Node.js ${node.versions.node}`;
  return "not Deno";
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
