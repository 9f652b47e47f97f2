/**
 * Sessions in an SQLite database file (Django's `backends.db`), on the
 * `node:sqlite` module that Deno and Bun both provide.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { isValidKey } from "../_key.ts";
import { SessionExistsError, SessionInterruptedError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import {
  decodeDjangoSession,
  djangoStoredSession,
  encodeDjangoSession,
  isDjangoFormat,
  requireDjangoSecret,
} from "./_django_format.ts";
import {
  createWithUniqueKey,
  type SessionStore,
  type StoredSession,
  type StoreSettings,
  type SweepOptions,
  type SweepReport,
} from "./store.ts";

/**
 * Options of {@link SqliteStore}.
 *
 * @example
 * ```ts
 * import { SqliteStore, type SqliteStoreOptions } from "@tessera/sessions";
 *
 * const options: SqliteStoreOptions = { path: ":memory:", table: "django_session" };
 * new SqliteStore(options).close();
 * ```
 */
export interface SqliteStoreOptions {
  /**
   * The database file, created if missing (its directory must exist), or
   * `":memory:"` for a database that lives and dies with the store.
   */
  path: string;
  /**
   * The table of the sessions, created with its index if missing: a letter
   * or `_`, then letters, digits and `_`.
   *
   * @default {"django_session"}
   */
  table?: string;
  /**
   * How long a write waits, in milliseconds, for another connection or
   * process holding the database's write lock before it fails.
   *
   * @default {5000}
   */
  busyTimeout?: number;
  /**
   * The most expired rows one statement of `clearExpired()` deletes, each
   * batch a short transaction of its own; the event loop runs between them.
   *
   * @default {1000}
   */
  sweepBatchSize?: number;
  /**
   * `"django"` keeps `session_data` exactly as Django does (signed with the
   * first `secret` of `withSessions`, which is then required), so that a
   * Django project with the same `SECRET_KEY` shares the table live; left
   * out, `session_data` is Tessera's own record.
   *
   * @default {undefined}
   */
  format?: "django";
}

const DEFAULT_SWEEP_BATCH_SIZE = 1000;

const TABLE_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

// The latest instant Django's DateTimeField (Python's datetime) can hold.
const MAX_EXPIRE_DATE = "9999-12-31 23:59:59.999999";

// Django's SQLite backend writes str(datetime) in UTC: a fraction only when
// the microseconds are not zero.
const DATE_PATTERN = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$/;

/**
 * Sessions as rows of an SQLite table laid out as Django's `django_session`
 * (`session_key` varchar(40) primary key, `session_data` text,
 * `expire_date` datetime, indexed), so that several server processes can
 * share one database file, and a Django project can share the table.
 *
 * The database runs in WAL mode, so readers never wait for a writer, with a
 * busy timeout so that processes take turns to write. Statements are
 * prepared once. `expire_date` is written in Django's format (UTC
 * `YYYY-MM-DD HH:MM:SS.ffffff`) and compared in SQL: a load never returns an
 * expired row. `clearExpired()` deletes expired rows in batches of
 * `sweepBatchSize` on the `expire_date` index, each its own short
 * transaction, and yields to the event loop between them: requests go on
 * being served during a sweep of any size.
 * `session_data` holds the serialized data as it is (signed by
 * `withSessions` when it has a `secret`); with `format: "django"` it holds
 * Django's own `session_data`, signed with the first `secret` as Django signs
 * it with `SECRET_KEY`, and a custom expiry stays in the data as
 * `_session_expiry`: a Django project (`USE_TZ = True`) with the same secret
 * reads and writes the same sessions. A row signed with an older secret, or
 * in Django's pre-3.1 format, is saved again in the current one on its next
 * request.
 *
 * `node:sqlite` is synchronous: a query blocks the event loop while it runs,
 * which on a local file is microseconds, but a write that waits for another
 * process's lock waits up to `busyTimeout`. Under Deno, grant
 * `--allow-read` and `--allow-write` for the file and its `-wal` and `-shm`
 * companions (its directory).
 *
 * @example Sessions in a database file
 * ```ts
 * import { SqliteStore, withSessions } from "@tessera/sessions";
 *
 * const store = new SqliteStore({ path: `${Deno.makeTempDirSync()}/sessions.sqlite3` });
 * const handler = withSessions(() => new Response("ok"), { store });
 * store.close();
 * ``` *
 * @example Sharing the table with a Django project
 * ```ts
 * import assert from "node:assert/strict";
 * import { getSession, SqliteStore, withSessions } from "@tessera/sessions";
 *
 * const store = new SqliteStore({ path: ":memory:", format: "django" });
 * const handler = withSessions(async (req) => {
 *   (await getSession(req)).set("color", "blue");
 *   return new Response("ok");
 * }, { store, secret: "the Django project's SECRET_KEY, 32 bytes or more" });
 * assert.equal((await handler(new Request("http://localhost/"))).status, 200);
 * // Django's format signs with Django's SECRET_KEY: without one, no sessions.
 * assert.throws(() => withSessions(() => new Response("ok"), { store }), TypeError);
 * store.close();
 * ```
 */
export class SqliteStore implements SessionStore {
  /**
   * The database file.
   */
  readonly path: string;
  /**
   * The table of the sessions.
   */
  readonly table: string;
  /**
   * `"django"` when rows are kept as Django keeps them, else `undefined`.
   */
  readonly format: "django" | undefined;
  /**
   * Whether rows carry a signature of their own (Django's, in the django
   * format), so that `withSessions` adds none: Django must read the row as
   * it wrote it.
   */
  readonly authenticatesRecords: boolean;
  readonly #db: DatabaseSync;
  readonly #load: StatementSync;
  readonly #exists: StatementSync;
  readonly #insert: StatementSync;
  readonly #update: StatementSync;
  readonly #delete: StatementSync;
  readonly #clearBatch: StatementSync;
  readonly #countExpired: StatementSync;
  readonly #countLive: StatementSync;
  readonly #sweepBatchSize: number;
  #logger: Logger = console;
  #secrets: readonly string[] = [];

  /**
   * Opens (or creates) the database and the table.
   *
   * @throws {TypeError} when `path` is not a non-empty string, `table` is
   * not an identifier, or `format` is neither `"django"` nor left out.
   * @throws {RangeError} when `busyTimeout` is not a non-negative whole
   * number, or `sweepBatchSize` not a positive one.
   * @throws {Error} when the database cannot be opened.
   * @example
   * ```ts
   * import { SqliteStore } from "@tessera/sessions";
   *
   * const store = new SqliteStore({ path: ":memory:", table: "sessions" });
   * store.close();
   * ```
   */
  constructor(options: SqliteStoreOptions) {
    const path = options?.path;
    if (typeof path !== "string" || path === "") {
      throw new TypeError(
        `Cannot create a SqliteStore as 'path' must be a database file name or ":memory:": current value is ${
          JSON.stringify(path)
        }`,
      );
    }
    const table = options.table ?? "django_session";
    if (typeof table !== "string" || !TABLE_PATTERN.test(table)) {
      throw new TypeError(
        `Cannot create a SqliteStore as 'table' must be a letter or '_' followed by up to 62 letters, digits and '_': current value is ${
          JSON.stringify(table)
        }`,
      );
    }
    const busyTimeout = options.busyTimeout ?? 5000;
    if (!Number.isSafeInteger(busyTimeout) || busyTimeout < 0) {
      throw new RangeError(
        `Cannot create a SqliteStore as 'busyTimeout' must be a non-negative whole number of milliseconds: current value is ${busyTimeout}`,
      );
    }
    const sweepBatchSize = options.sweepBatchSize ?? DEFAULT_SWEEP_BATCH_SIZE;
    if (!Number.isSafeInteger(sweepBatchSize) || sweepBatchSize < 1) {
      throw new RangeError(
        `Cannot create a SqliteStore as 'sweepBatchSize' must be a positive whole number of rows: current value is ${sweepBatchSize}`,
      );
    }
    const django = isDjangoFormat(options.format, "SqliteStore");
    this.format = django ? "django" : undefined;
    this.authenticatesRecords = django;
    this.#sweepBatchSize = sweepBatchSize;
    this.path = path;
    this.table = table;
    try {
      this.#db = new DatabaseSync(path, { timeout: busyTimeout });
    } catch (error) {
      throw new Error(
        `Cannot open the session database '${path}': ${
          messageOf(error)
        }: check that its directory exists and can be written`,
        { cause: error },
      );
    }
    try {
      const quoted = `"${table}"`;
      const db = this.#db;
      untilUnlocked(busyTimeout, () => {
        db.exec("PRAGMA journal_mode = WAL");
        // Django's migration for django.contrib.sessions, made idempotent.
        db.exec(
          `CREATE TABLE IF NOT EXISTS ${quoted} ("session_key" varchar(40) NOT NULL PRIMARY KEY, "session_data" text NOT NULL, "expire_date" datetime NOT NULL)`,
        );
        db.exec(`CREATE INDEX IF NOT EXISTS "${indexName(table)}" ON ${quoted} ("expire_date")`);
      });
      this.#load = db.prepare(
        `SELECT CAST(session_data AS BLOB) AS session_data, expire_date FROM ${quoted} WHERE session_key = ? AND expire_date > ?`,
      );
      this.#exists = db.prepare(`SELECT 1 FROM ${quoted} WHERE session_key = ?`);
      this.#insert = db.prepare(
        `INSERT INTO ${quoted} (session_key, session_data, expire_date) VALUES (?, ?, ?) ON CONFLICT (session_key) DO NOTHING`,
      );
      this.#update = db.prepare(
        `UPDATE ${quoted} SET session_data = ?, expire_date = ? WHERE session_key = ?`,
      );
      this.#delete = db.prepare(`DELETE FROM ${quoted} WHERE session_key = ?`);
      this.#clearBatch = prepareClearBatch(db, quoted);
      this.#countExpired = db.prepare(
        `SELECT COUNT(*) AS n FROM ${quoted} WHERE expire_date < ?`,
      );
      this.#countLive = db.prepare(`SELECT COUNT(*) AS n FROM ${quoted} WHERE expire_date >= ?`);
    } catch (error) {
      this.#db.close();
      throw new Error(
        `Cannot set up the session table '${table}' in '${path}': ${messageOf(error)}`,
        { cause: error },
      );
    }
  }

  /**
   * Keeps the logger of `withSessions`, for rows it cannot read, and its
   * secrets, which the django format signs and verifies with.
   *
   * @throws {TypeError} in the django format, when `withSessions` has no
   * `secret`.
   * @example
   * ```ts
   * import { SqliteStore } from "@tessera/sessions";
   *
   * const store = new SqliteStore({ path: ":memory:" });
   * store.configure({ cookieName: "sid", cookieAge: 60, secrets: [], logger: console });
   * store.close();
   * ```
   */
  configure(settings: StoreSettings): void {
    if (this.format === "django") requireDjangoSecret(settings, "SqliteStore");
    this.#logger = settings.logger;
    this.#secrets = settings.secrets;
  }

  /**
   * The live session stored under `key`, or `null`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { SqliteStore } from "@tessera/sessions";
   *
   * const store = new SqliteStore({ path: ":memory:" });
   * assert.equal(await store.load("unknownkey123"), null);
   * store.close();
   * ```
   */
  async load(key: string): Promise<StoredSession | null> {
    if (!isValidKey(key)) return null;
    const record = await this.#run("read a session", () => {
      const row = this.#load.get(key, toExpireDate(Date.now())) as
        | { session_data: unknown; expire_date: unknown }
        | undefined;
      if (row === undefined) return null;
      const data = textOf(row.session_data);
      const expiresAt = fromExpireDate(row.expire_date);
      if (data === null || expiresAt === null) {
        this.#logger.warn(`A corrupt session row in table '${this.table}' was ignored`);
        return null;
      }
      return { data, expiresAt };
    });
    if (record === null || this.format !== "django") return record;
    const decoded = await decodeDjangoSession(record.data, {
      secrets: this.#djangoSecrets(),
      logger: this.#logger,
    });
    return decoded === null ? null : djangoStoredSession(decoded, record.expiresAt);
  }

  /**
   * Whether a row exists for `key`, expired or not (as Django's `exists`).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { SqliteStore } from "@tessera/sessions";
   *
   * const store = new SqliteStore({ path: ":memory:" });
   * assert.equal(await store.exists("abcdefgh12345678"), false);
   * store.close();
   * ```
   */
  exists(key: string): Promise<boolean> {
    if (!isValidKey(key)) return Promise.resolve(false);
    return this.#run("check a session", () => this.#exists.get(key) !== undefined);
  }

  /**
   * Inserts `record` under a new key.
   *
   * @example
   * ```ts
   * import { SqliteStore } from "@tessera/sessions";
   *
   * const store = new SqliteStore({ path: ":memory:" });
   * await store.create({ data: "{}", expiresAt: Date.now() + 60_000 });
   * store.close();
   * ```
   */
  create(record: StoredSession): Promise<string> {
    return createWithUniqueKey((key) => this.save(key, record, true));
  }

  /**
   * Inserts (`mustCreate`) or updates the row of `key`.
   *
   * @example
   * ```ts
   * import { SqliteStore } from "@tessera/sessions";
   *
   * const store = new SqliteStore({ path: ":memory:" });
   * await store.save("abcdefgh12345678", { data: "{}", expiresAt: Date.now() + 60_000 }, true);
   * store.close();
   * ```
   */
  async save(key: string, record: StoredSession, mustCreate = false): Promise<string> {
    if (!isValidKey(key)) {
      throw new TypeError("Cannot save a session as the key is not a session key");
    }
    const data = this.format === "django"
      ? await encodeDjangoSession(record.data, this.#djangoSecrets())
      : record.data;
    return await this.#run("write a session", () => {
      const expireDate = toExpireDate(record.expiresAt);
      if (mustCreate) {
        const result = this.#insert.run(key, data, expireDate);
        if (Number(result.changes) === 0) throw new SessionExistsError();
      } else {
        // Django's UpdateError: a row another request deleted stays deleted.
        const result = this.#update.run(data, expireDate, key);
        if (Number(result.changes) === 0) throw new SessionInterruptedError();
      }
      return key;
    });
  }

  /**
   * Deletes the row of `key`, if any.
   *
   * @example
   * ```ts
   * import { SqliteStore } from "@tessera/sessions";
   *
   * const store = new SqliteStore({ path: ":memory:" });
   * await store.delete("abcdefgh12345678");
   * store.close();
   * ```
   */
  delete(key: string): Promise<void> {
    if (!isValidKey(key)) return Promise.resolve();
    return this.#run("delete a session", () => {
      this.#delete.run(key);
    });
  }

  /**
   * Deletes every expired row, `sweepBatchSize` rows per statement, and
   * lets the event loop run between statements. A row saved again during
   * the sweep is judged by its new expiry.
   *
   * @returns How many rows it deleted.
   * @throws {Error} when the database fails; the batches before stay deleted.
   * @example
   * ```ts
   * import { SqliteStore } from "@tessera/sessions";
   *
   * const store = new SqliteStore({ path: ":memory:" });
   * const removed = await store.clearExpired();
   * store.close();
   * ```
   */
  async clearExpired(options: SweepOptions = {}): Promise<number> {
    return (await this.#sweep(options, false)).removed;
  }

  /**
   * Sweeps as {@link clearExpired} does, and reports what it removed and how
   * many live rows it kept. `onProgress` runs after every batch with the
   * rows deleted so far; a dry run counts the expired rows in one query.
   *
   * @throws {TypeError} when an option has the wrong type.
   * @throws {Error} when the database fails.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { SqliteStore } from "@tessera/sessions";
   *
   * const store = new SqliteStore({ path: ":memory:", sweepBatchSize: 2 });
   * for (let i = 0; i < 5; i++) await store.create({ data: "{}", expiresAt: Date.now() - 1000 });
   * await store.create({ data: "{}", expiresAt: Date.now() + 60_000 });
   * const progress: number[] = [];
   * const report = await store.sweep({ onProgress: (checked) => progress.push(checked) });
   * assert.deepEqual(progress, [2, 4, 5]);
   * assert.deepEqual(report, { removed: 5, kept: 1, tempRemoved: 0, failed: 0, errors: [] });
   * store.close();
   * ```
   */
  sweep(options: SweepOptions = {}): Promise<SweepReport> {
    return this.#sweep(options, true);
  }

  async #sweep(options: SweepOptions, countKept: boolean): Promise<SweepReport> {
    checkSweepOptions(options);
    const { dryRun = false, onProgress } = options;
    // One instant for the whole sweep: rows that expire while it runs wait
    // for the next one, and the sweep always ends.
    const cutoff = toExpireDate(options.now ?? Date.now());
    const batchSize = this.#sweepBatchSize;
    let removed = 0;
    if (dryRun) {
      removed = await this.#run(
        "count expired sessions",
        () => countOf(this.#countExpired, cutoff),
      );
      onProgress?.(removed);
    } else {
      for (;;) {
        const changes = await this.#run(
          "delete expired sessions",
          () => Number(this.#clearBatch.run(cutoff, batchSize).changes),
        );
        removed += changes;
        onProgress?.(removed);
        if (changes < batchSize) break;
        // node:sqlite blocks while a statement runs: between batches, the
        // requests waiting on this event loop get their turn.
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
    }
    const kept = countKept
      ? await this.#run("count live sessions", () => countOf(this.#countLive, cutoff))
      : 0;
    return { removed, kept, tempRemoved: 0, failed: 0, errors: [] };
  }

  /**
   * Closes the database; the store cannot be used after it.
   *
   * @example
   * ```ts
   * import { SqliteStore } from "@tessera/sessions";
   *
   * new SqliteStore({ path: ":memory:" }).close();
   * ```
   */
  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }

  // The django format cannot read or write a row without Django's key.
  #djangoSecrets(): readonly string[] {
    requireDjangoSecret({ secrets: this.#secrets }, "SqliteStore");
    return this.#secrets;
  }

  #run<T>(action: string, body: () => T): Promise<T> {
    try {
      return Promise.resolve(body());
    } catch (error) {
      if (error instanceof SessionExistsError || error instanceof SessionInterruptedError) {
        return Promise.reject(error);
      }
      // SQLite's messages name tables and constraints, never bound values,
      // so a session key cannot leak through them.
      return Promise.reject(
        new Error(`Cannot ${action} in the SQLite database '${this.path}': ${messageOf(error)}`, {
          cause: error,
        }),
      );
    }
  }
}

// One batch of the sweep: the inner SELECT reads rowids off the expire_date
// index alone, and the DELETE goes to each row by its rowid. A table made
// WITHOUT ROWID has none: its rows are named by their key instead.
function prepareClearBatch(db: DatabaseSync, quoted: string): StatementSync {
  const batch = (column: string) =>
    `DELETE FROM ${quoted} WHERE ${column} IN (SELECT ${column} FROM ${quoted} WHERE expire_date < ? LIMIT ?)`;
  try {
    return db.prepare(batch("rowid"));
  } catch {
    return db.prepare(batch("session_key"));
  }
}

function countOf(statement: StatementSync, cutoff: string): number {
  return Number((statement.get(cutoff) as { n: number | bigint }).n);
}

function checkSweepOptions(options: SweepOptions): void {
  const { dryRun, onProgress, now } = options ?? {};
  if (dryRun !== undefined && typeof dryRun !== "boolean") {
    throw new TypeError(
      `Cannot sweep as 'dryRun' must be true or false: current value is ${dryRun}`,
    );
  }
  if (onProgress !== undefined && typeof onProgress !== "function") {
    throw new TypeError("Cannot sweep as 'onProgress' must be a function");
  }
  if (now !== undefined && !Number.isFinite(now)) {
    throw new TypeError(
      `Cannot sweep as 'now' must be a number of milliseconds since the epoch: current value is ${now}`,
    );
  }
}

/** Django's name for the index on `expire_date`: table_column_ + 8 hex of an MD5. */
function indexName(table: string): string {
  const digest = createHash("md5").update(table).update("expire_date").digest("hex");
  return `${table}_expire_date_${digest.slice(0, 8)}`;
}

// Two processes opening one new database at once: switching it to WAL
// takes a lock for which SQLite does not call its busy handler, so the
// loser sees "database is locked" at once. Setting up is idempotent, so it
// is tried again, for as long as the busy timeout allows.
function untilUnlocked(timeoutMs: number, setUp: () => void): void {
  const deadline = Date.now() + timeoutMs;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  while (true) {
    try {
      setUp();
      return;
    } catch (error) {
      const locked = /database is locked|SQLITE_BUSY/i.test(messageOf(error));
      if (!locked || Date.now() >= deadline) throw error;
      // A synchronous wait: this runs in the constructor.
      Atomics.wait(pause, 0, 0, 10 + Math.random() * 20);
    }
  }
}

function toExpireDate(ms: number): string {
  const date = new Date(ms);
  // An instant past what a Date holds (a session's own expiry may be any
  // whole number of seconds) would make toISOString() throw.
  const iso = Number.isNaN(date.getTime()) ? "" : date.toISOString();
  if (iso.length !== 24) return ms > 0 ? MAX_EXPIRE_DATE : "0000-01-01 00:00:00.000000";
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)}000`;
}

function fromExpireDate(value: unknown): number | null {
  const match = typeof value === "string" ? DATE_PATTERN.exec(value) : null;
  if (match === null) return null;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as number[];
  const date = new Date(0);
  // setUTCFullYear, unlike Date.UTC, does not read years 0-99 as 1900-1999.
  date.setUTCFullYear(year!, month! - 1, day!);
  date.setUTCHours(hour!, minute!, second!);
  // Whole milliseconds, as every store keeps them; Django's microseconds are cut.
  return date.getTime() + Number((match[7] ?? "").padEnd(3, "0").slice(0, 3));
}

// The data is read as bytes: Deno's node:sqlite cuts a text value at its
// first NUL character, which a custom serializer may write.
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function textOf(value: unknown): string | null {
  if (!(value instanceof Uint8Array)) return null;
  try {
    return utf8.decode(value);
  } catch {
    return null;
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
