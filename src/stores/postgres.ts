/**
 * Sessions in PostgreSQL (Django's `backends.db` on its usual database),
 * through the PostgreSQL client the application already has.
 *
 * @module
 */

import { createHash } from "node:crypto";
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
} from "./store.ts";

/**
 * A PostgreSQL client as {@link PostgresStore} uses it: any object with one
 * of these methods, tried in this order, runs one statement with `$1`, `$2`…
 * placeholders and resolves to its rows:
 *
 * - `unsafe(text, parameters)`, resolving to the rows as an array: the
 *   [`postgres`](https://github.com/porsager/postgres) package's
 *   `postgres()` client, and Bun's built-in `SQL` (`sql` from `"bun"`);
 * - `query(text, parameters)`, resolving to `{ rows }`:
 *   [`pg`](https://node-postgres.com)'s `Pool` (or a single `Client`).
 *
 * Statements never depend on a connection's state, so a pool may run each
 * one on any of its connections. Any other client is one small object away:
 * `{ query: (text, parameters) => ... }`.
 *
 * @example Adapting a client with another method name
 * ```ts
 * import type { PostgresClient } from "@tessera/sessions";
 *
 * const other = { run: (text: string, values: string[]) => Promise.resolve([]) };
 * const client: PostgresClient = {
 *   query: async (text, parameters) => ({ rows: await other.run(text, parameters) }),
 * };
 * ```
 */
export type PostgresClient =
  | { unsafe(text: string, parameters: string[]): PromiseLike<readonly PostgresRow[]> }
  | { query(text: string, parameters: string[]): PromiseLike<{ rows: readonly PostgresRow[] }> };

/**
 * One row as a {@link PostgresClient} returns it: column name to value.
 *
 * @example
 * ```ts
 * import type { PostgresRow } from "@tessera/sessions";
 *
 * const row: PostgresRow = { session_data: "{}", expires_at: "1700000000000" };
 * ```
 */
export type PostgresRow = Record<string, unknown>;

/**
 * Options of {@link PostgresStore}.
 *
 * @example
 * ```ts
 * import type { PostgresStoreOptions } from "@tessera/sessions";
 *
 * const client = { query: () => Promise.resolve({ rows: [] }) };
 * const options: PostgresStoreOptions = { client, table: "django_session" };
 * ```
 */
export interface PostgresStoreOptions {
  /**
   * A PostgreSQL client: `postgres()` from the `postgres` package, a `pg`
   * `Pool`, Bun's `SQL`, or anything shaped like one of them (see
   * {@link PostgresClient}).
   */
  client: PostgresClient;
  /**
   * The table of the sessions, in the connection's `search_path`, created
   * with Django's two indexes when missing: a letter or `_`, then letters,
   * digits and `_`.
   *
   * @default {"django_session"}
   */
  table?: string;
  /**
   * How many expired rows `clearExpired()` deletes per statement, so that
   * no statement holds many row locks for long.
   *
   * @default {1000}
   */
  batchSize?: number;
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

const TABLE_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

// PostgreSQL's identifier limit, which Django's index names are cut to fit
// (connection.ops.max_name_length()).
const MAX_NAME_LENGTH = 63;

// The range of Django's DateTimeField (Python's datetime), in UTC: a row
// outside it would fail Django's reads.
const MAX_EXPIRE_DATE = "9999-12-31 23:59:59.999999+00";
const MAX_EXPIRE_MS = 253_402_300_799_999;
const MIN_EXPIRE_DATE = "0001-01-01 00:00:00+00";
const MIN_EXPIRE_MS = -62_135_596_800_000;

// A text column cannot hold NUL, and a driver would replace an unpaired
// surrogate with U+FFFD: a record holding either is refused, not mangled.
const UNSTORABLE_TEXT = /[\0\p{Cs}]/u;

// SQLSTATE admin_shutdown and crash_shutdown: a server stopping or
// restarting ended the session.
const SHUT_DOWN = new Set(["57P01", "57P02"]);

type Run = (text: string, parameters: string[]) => Promise<readonly PostgresRow[]>;

interface Statements {
  setup: string;
  load: string;
  exists: string;
  insert: string;
  update: string;
  delete: string;
  clearExpired: string;
}

/**
 * Sessions as rows of a PostgreSQL table laid out as Django's
 * `django_session`, so that many servers, and a Django project, can share
 * them.
 *
 * On first use the store creates the table if it is missing, exactly as
 * Django's migration does (`session_key varchar(40)` primary key,
 * `session_data text`, `expire_date timestamp with time zone`, an index on
 * `expire_date` and a `varchar_pattern_ops` index on `session_key`, with
 * Django's names); a table that exists, Django's own included, is used as it
 * is and never altered. When the store creates it first, Django's `migrate`
 * needs `--fake-initial` for `sessions`.
 *
 * A new key is inserted with `ON CONFLICT DO NOTHING` (a taken key makes
 * `create()` try another), an update changes only a row that still exists
 * (a session deleted meanwhile answers the request with 400 rather than
 * come back), a load reads only a row whose `expire_date` has not passed,
 * and `clearExpired()` deletes expired rows in batches. `expire_date` is
 * written in UTC; `session_data` holds the record's data as it is (signed by
 * `withSessions` when it has a `secret`), or with `format: "django"`
 * Django's own `session_data`, signed with the first `secret` as Django signs
 * it with `SECRET_KEY`, a custom expiry staying in the data as
 * `_session_expiry`: a Django project with the same secret reads and writes
 * the same sessions, and a row signed with an older secret (or in Django's
 * pre-3.1 format) is saved again in the current one on its next request. A cookie
 * value that is not a session key never reaches the database, and a
 * database error fails the request with a logged 500. A statement that a
 * server shutting down ended (SQLSTATE 57P01, 57P02) did not run: it is
 * sent once more, so that the connections a pool kept from before a
 * restart fail no request.
 *
 * Give the client a short connect timeout, so that requests fail fast while
 * the server is away. The `postgres` package also waits before each new
 * connection after a failed one, up to 20 s by default: set `backoff` low.
 * `pg`'s `Pool` reports a connection the server ends as an `error` event,
 * which ends the process unless it is listened to.
 *
 * @example With the postgres package
 * ```ts ignore
 * import postgres from "postgres";
 * import { PostgresStore, withSessions } from "@tessera/sessions";
 *
 * const sql = postgres("postgres://app@127.0.0.1/app", { connect_timeout: 2, backoff: () => 0.05 });
 * const store = new PostgresStore({ client: sql });
 * await store.ready();
 * Deno.serve(withSessions(handler, { store }));
 * ```
 *
 * @example Sharing Django's table (the Django project's SECRET_KEY as the secret)
 * ```ts ignore
 * import postgres from "postgres";
 * import { PostgresStore, withSessions } from "@tessera/sessions";
 *
 * const sql = postgres("postgres://app@127.0.0.1/app", { connect_timeout: 2, backoff: () => 0.05 });
 * const store = new PostgresStore({ client: sql, format: "django" });
 * Deno.serve(withSessions(handler, { store, secret: Deno.env.get("DJANGO_SECRET_KEY")! }));
 * ```
 *
 * @example With pg's Pool
 * ```ts ignore
 * import pg from "pg";
 * import { PostgresStore, withSessions } from "@tessera/sessions";
 *
 * const pool = new pg.Pool({ connectionString: "postgres://app@127.0.0.1/app", connectionTimeoutMillis: 2000 });
 * pool.on("error", (error) => console.error("PostgreSQL:", error.message));
 * Deno.serve(withSessions(handler, { store: new PostgresStore({ client: pool }) }));
 * ```
 *
 * @example With Bun's SQL
 * ```ts ignore
 * import { SQL } from "bun";
 * import { PostgresStore, withSessions } from "@tessera/sessions";
 *
 * const sql = new SQL("postgres://app@127.0.0.1/app", { connectionTimeout: 2 });
 * Bun.serve({ fetch: withSessions(handler, { store: new PostgresStore({ client: sql }) }) });
 * ```
 *
 * @example Any client with query(text, parameters)
 * ```ts
 * import assert from "node:assert/strict";
 * import { PostgresStore } from "@tessera/sessions";
 *
 * const seen: string[] = [];
 * const client = {
 *   query: (text: string) => {
 *     seen.push(text.trim().split(/\s+/)[0]!);
 *     return Promise.resolve({ rows: [] });
 *   },
 * };
 * const store = new PostgresStore({ client });
 * assert.equal(await store.load("abcdefgh12345678"), null);
 * assert.deepEqual(seen, ["DO", "SELECT"]);
 * ```
 */
export class PostgresStore implements SessionStore {
  /**
   * The table of the sessions.
   */
  readonly table: string;
  /**
   * How many expired rows `clearExpired()` deletes per statement.
   */
  readonly batchSize: number;
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
  readonly #run: Run;
  readonly #sql: Statements;
  #ready: Promise<void> | undefined;
  #logger: Logger = console;
  #secrets: readonly string[] = [];

  /**
   * A store on `options.client`; it sends nothing until it is first used.
   *
   * @throws {TypeError} when the client has neither `unsafe()` nor
   * `query()`, `table` is not an identifier, or `format` is neither
   * `"django"` nor left out.
   * @throws {RangeError} when `batchSize` is not a positive whole number.
   * @example
   * ```ts
   * import { PostgresStore } from "@tessera/sessions";
   *
   * const client = { unsafe: () => Promise.resolve([]) };
   * const store = new PostgresStore({ client, table: "myapp_session", batchSize: 500 });
   * ```
   */
  constructor(options: PostgresStoreOptions) {
    this.#run = statementRunner(options?.client);
    const table = options.table ?? "django_session";
    if (typeof table !== "string" || !TABLE_PATTERN.test(table)) {
      throw new TypeError(
        `Cannot create a PostgresStore as 'table' must be a letter or '_' followed by up to 62 letters, digits and '_': current value is ${
          JSON.stringify(table)
        }`,
      );
    }
    const batchSize = options.batchSize ?? 1000;
    if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
      throw new RangeError(
        `Cannot create a PostgresStore as 'batchSize' must be a positive whole number of rows: current value is ${batchSize}`,
      );
    }
    const django = isDjangoFormat(options.format, "PostgresStore");
    this.format = django ? "django" : undefined;
    this.authenticatesRecords = django;
    this.table = table;
    this.batchSize = batchSize;
    this.#sql = statements(table, batchSize);
  }

  /**
   * Creates the table and its indexes if the table is missing; every other
   * method waits for it. Call it at startup to fail fast on a connection or
   * permission problem; after a failure, the next call tries again.
   *
   * @throws {Error} when the database cannot be reached or the table cannot
   * be created.
   * @example
   * ```ts
   * import { PostgresStore } from "@tessera/sessions";
   *
   * const client = { query: () => Promise.resolve({ rows: [] }) };
   * await new PostgresStore({ client }).ready();
   * ```
   */
  ready(): Promise<void> {
    this.#ready ??= this.#query("set up the session table", null, this.#sql.setup, []).then(
      () => {},
      (error) => {
        this.#ready = undefined;
        throw error;
      },
    );
    return this.#ready;
  }

  /**
   * Keeps the logger of `withSessions`, for rows it cannot read, and its
   * secrets, which the django format signs and verifies with.
   *
   * @throws {TypeError} in the django format, when `withSessions` has no
   * `secret`.
   * @example
   * ```ts
   * import { PostgresStore } from "@tessera/sessions";
   *
   * const client = { query: () => Promise.resolve({ rows: [] }) };
   * new PostgresStore({ client }).configure({ cookieName: "sid", cookieAge: 60, secrets: [], logger: console });
   * ```
   */
  configure(settings: StoreSettings): void {
    if (this.format === "django") requireDjangoSecret(settings, "PostgresStore");
    this.#logger = settings.logger;
    this.#secrets = settings.secrets;
  }

  /**
   * The live session stored under `key`, or `null`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { PostgresStore } from "@tessera/sessions";
   *
   * const client = { query: () => Promise.resolve({ rows: [] }) };
   * assert.equal(await new PostgresStore({ client }).load("abcdefgh12345678"), null);
   * ```
   */
  async load(key: string): Promise<StoredSession | null> {
    if (!isValidKey(key)) return null;
    const rows = await this.#query("read a session", key, this.#sql.load, [
      key,
      toExpireDate(Date.now()),
    ]);
    const row = rows[0];
    if (row === undefined) return null;
    const record = this.#decode(row);
    if (record === null) {
      this.#logger.warn(`A corrupt session row in table '${this.table}' was ignored`);
    }
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
   * import { PostgresStore } from "@tessera/sessions";
   *
   * const client = { query: () => Promise.resolve({ rows: [] }) };
   * assert.equal(await new PostgresStore({ client }).exists("abcdefgh12345678"), false);
   * ```
   */
  async exists(key: string): Promise<boolean> {
    if (!isValidKey(key)) return false;
    const rows = await this.#query("check a session", key, this.#sql.exists, [key]);
    return rows.length > 0;
  }

  /**
   * Inserts `record` under a new key.
   *
   * @example
   * ```ts
   * import { PostgresStore } from "@tessera/sessions";
   *
   * const client = { query: () => Promise.resolve({ rows: [{ inserted: 1 }] }) };
   * await new PostgresStore({ client }).create({ data: "{}", expiresAt: Date.now() + 60_000 });
   * ```
   */
  create(record: StoredSession): Promise<string> {
    return createWithUniqueKey((key) => this.save(key, record, true));
  }

  /**
   * Inserts (`mustCreate`) or updates the row of `key`.
   *
   * @throws {SessionExistsError} with `mustCreate`, when the key is taken.
   * @throws {SessionInterruptedError} without it, when the row is gone.
   * @throws {TypeError} when `key` is not a session key, or the data holds
   * a NUL character or an unpaired surrogate, which a `text` column cannot
   * hold.
   * @example
   * ```ts
   * import { PostgresStore } from "@tessera/sessions";
   *
   * const client = { query: () => Promise.resolve({ rows: [{ inserted: 1 }] }) };
   * const record = { data: "{}", expiresAt: Date.now() + 60_000 };
   * await new PostgresStore({ client }).save("abcdefgh12345678", record, true);
   * ```
   */
  async save(key: string, record: StoredSession, mustCreate = false): Promise<string> {
    if (!isValidKey(key)) {
      throw new TypeError("Cannot save a session as the key is not a session key");
    }
    const [data, expireDate] = this.#encode(
      this.format === "django"
        ? { ...record, data: await encodeDjangoSession(record.data, this.#djangoSecrets()) }
        : record,
    );
    if (mustCreate) {
      const rows = await this.#query("write a session", key, this.#sql.insert, [
        key,
        data,
        expireDate,
      ]);
      if (rows.length === 0) throw new SessionExistsError();
    } else {
      // Django's UpdateError: a row another request deleted stays deleted.
      const rows = await this.#query("write a session", key, this.#sql.update, [
        key,
        data,
        expireDate,
      ]);
      if (rows.length === 0) throw new SessionInterruptedError();
    }
    return key;
  }

  /**
   * Deletes the row of `key`, if any.
   *
   * @example
   * ```ts
   * import { PostgresStore } from "@tessera/sessions";
   *
   * const client = { query: () => Promise.resolve({ rows: [] }) };
   * await new PostgresStore({ client }).delete("abcdefgh12345678");
   * ```
   */
  async delete(key: string): Promise<void> {
    if (!isValidKey(key)) return;
    await this.#query("delete a session", key, this.#sql.delete, [key]);
  }

  /**
   * Deletes every row expired now, `batchSize` rows per statement on the
   * `expire_date` index, until a statement finds fewer. Rows another
   * request is saving are skipped, and a row whose save moved its expiry
   * to the future is kept.
   *
   * @returns How many rows it deleted.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { PostgresStore } from "@tessera/sessions";
   *
   * const client = { query: () => Promise.resolve({ rows: [{ removed: "0" }] }) };
   * assert.equal(await new PostgresStore({ client }).clearExpired(), 0);
   * ```
   */
  async clearExpired(): Promise<number> {
    const now = toExpireDate(Date.now());
    let total = 0;
    for (;;) {
      const rows = await this.#query("delete expired sessions", null, this.#sql.clearExpired, [
        now,
      ]);
      const removed = Number(rows[0]?.removed ?? 0);
      total += removed;
      if (!(removed >= this.batchSize)) return total;
      // Between batches, the requests that queued behind this sweep go first.
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }

  // The django format cannot read or write a row without Django's key.
  #djangoSecrets(): readonly string[] {
    requireDjangoSecret({ secrets: this.#secrets }, "PostgresStore");
    return this.#secrets;
  }

  // The record as the row's session_data and expire_date.
  #encode(record: StoredSession): [string, string] {
    const data = record.data;
    if (typeof data !== "string" || UNSTORABLE_TEXT.test(data)) {
      throw new TypeError(
        "Cannot save a session in PostgreSQL as its data must be text without NUL characters or unpaired surrogates: current value holds one",
      );
    }
    return [data, toExpireDate(record.expiresAt)];
  }

  #decode(row: PostgresRow): StoredSession | null {
    const data = row.session_data;
    const expiresAt = Number(row.expires_at);
    if (typeof data !== "string" || !Number.isSafeInteger(expiresAt)) return null;
    return { data, expiresAt };
  }

  async #query(
    action: string,
    key: string | null,
    text: string,
    parameters: string[],
  ): Promise<readonly PostgresRow[]> {
    if (text !== this.#sql.setup) await this.ready();
    try {
      try {
        return await this.#run(text, parameters);
      } catch (error) {
        if (!SHUT_DOWN.has((error as { code?: unknown } | null)?.code as string)) throw error;
        // The server ended the connection before the statement committed:
        // it did not run. A pool still holding connections to a server that
        // restarted meets this once per connection (postgres 3.4 even on
        // the statement it sends first on a new one), so it is sent again,
        // once, on another connection.
        return await this.#run(text, parameters);
      }
    } catch (error) {
      throw new Error(`Cannot ${action} in PostgreSQL: ${scrub(messageOf(error), key)}`, {
        cause: scrubbed(error, key),
      });
    }
  }
}

function statementRunner(client: unknown): Run {
  const candidate = client as Record<string, unknown> | null | undefined;
  if (typeof candidate?.unsafe === "function") {
    const unsafe = candidate.unsafe as (
      text: string,
      parameters: string[],
    ) => PromiseLike<readonly PostgresRow[]>;
    // postgres's and Bun's queries are lazy thenables: awaiting one sends it.
    return async (text, parameters) => {
      const rows = await unsafe.call(candidate, text, parameters);
      return Array.isArray(rows) ? rows : [];
    };
  }
  if (typeof candidate?.query === "function") {
    const query = candidate.query as (
      text: string,
      parameters: string[],
    ) => PromiseLike<{ rows?: readonly PostgresRow[] }>;
    return async (text, parameters) => {
      const result = await query.call(candidate, text, parameters);
      return Array.isArray(result?.rows) ? result.rows : [];
    };
  }
  throw new TypeError(
    `Cannot create a PostgresStore as 'client' must be a PostgreSQL client with an unsafe() or query() method (postgres, Bun's SQL, pg's Pool): current value is ${
      client === null || typeof client !== "object" && typeof client !== "function"
        ? String(client)
        : "an object without them"
    }`,
  );
}

function statements(table: string, batchSize: number): Statements {
  const quoted = `"${table}"`;
  const keyIndex = indexName(table, "session_key", "_like");
  const dateIndex = indexName(table, "expire_date", "");
  // Every value but the batch size is a parameter, cast from text: a client
  // that sends a parameter by the type the server describes would turn an
  // instant into a Date and lose its microseconds (postgres 3.4).
  return {
    // One statement, so that it runs on one connection of a pool, in one
    // transaction. The advisory lock makes processes that start together
    // take turns; the table is looked up rather than created IF NOT EXISTS,
    // so that an existing table, Django's included, is never touched.
    // Django's migration on PostgreSQL, index names included.
    setup: `DO $tessera$
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('tessera.sessions:' || current_schema() || '.${table}'));
  IF to_regclass('${quoted}') IS NULL THEN
    CREATE TABLE ${quoted} ("session_key" varchar(40) NOT NULL PRIMARY KEY, "session_data" text NOT NULL, "expire_date" timestamp with time zone NOT NULL);
    CREATE INDEX "${keyIndex}" ON ${quoted} ("session_key" varchar_pattern_ops);
    CREATE INDEX "${dateIndex}" ON ${quoted} ("expire_date");
  END IF;
END
$tessera$`,
    load:
      `SELECT session_data, floor(extract(epoch FROM expire_date) * 1000)::bigint::text AS expires_at
FROM ${quoted} WHERE session_key = $1::varchar AND expire_date > $2::text::timestamptz`,
    exists: `SELECT 1 AS found FROM ${quoted} WHERE session_key = $1::varchar`,
    insert: `INSERT INTO ${quoted} (session_key, session_data, expire_date)
VALUES ($1::varchar, $2::text, $3::text::timestamptz)
ON CONFLICT (session_key) DO NOTHING RETURNING 1 AS inserted`,
    update: `UPDATE ${quoted} SET session_data = $2::text, expire_date = $3::text::timestamptz
WHERE session_key = $1::varchar RETURNING 1 AS updated`,
    delete: `DELETE FROM ${quoted} WHERE session_key = $1::varchar`,
    // SKIP LOCKED leaves a row a save holds to a later sweep; the DELETE's
    // own condition is checked again on the row's latest version, so a row
    // whose save moved its expiry on is kept.
    clearExpired: `WITH doomed AS (
  SELECT session_key FROM ${quoted} WHERE expire_date < $1::text::timestamptz
  LIMIT ${batchSize} FOR UPDATE SKIP LOCKED
), removed AS (
  DELETE FROM ${quoted} WHERE session_key IN (SELECT session_key FROM doomed)
  AND expire_date < $1::text::timestamptz RETURNING 1
)
SELECT count(*)::text AS removed FROM removed`,
  };
}

/**
 * Django's name for an index of one column (BaseDatabaseSchemaEditor.
 * _create_index_name): table_column_ + 8 hex of an MD5 of both + suffix,
 * cut to PostgreSQL's 63 characters the way Django cuts it.
 */
function indexName(table: string, column: string, suffix: string): string {
  const digest = createHash("md5").update(table).update(column).digest("hex").slice(0, 8);
  let hashPart = `${digest}${suffix}`;
  const name = `${table}_${column}_${hashPart}`;
  if (name.length <= MAX_NAME_LENGTH) return name;
  if (hashPart.length > MAX_NAME_LENGTH / 3) hashPart = hashPart.slice(0, MAX_NAME_LENGTH / 3);
  const other = Math.floor((MAX_NAME_LENGTH - hashPart.length) / 2) - 1;
  const cut = `${table.slice(0, other)}_${column.slice(0, other)}_${hashPart}`;
  return cut[0] === "_" || /\d/.test(cut[0]!) ? `D${cut.slice(0, -1)}` : cut;
}

/** An instant as timestamptz text in UTC, within what Django can read back. */
function toExpireDate(ms: number): string {
  if (ms >= MAX_EXPIRE_MS) return MAX_EXPIRE_DATE;
  if (ms < MIN_EXPIRE_MS) return MIN_EXPIRE_DATE;
  return new Date(ms).toISOString();
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function scrub(text: string, key: string | null): string {
  return key === null ? text : text.replaceAll(key, "<session key>");
}

// Clients attach the statement's parameters, and so the session key, to
// their errors (postgres's `parameters`, a constraint's `detail`): the cause
// keeps the error's name, message and SQLSTATE code, with the key masked,
// and nothing else.
function scrubbed(error: unknown, key: string | null): Error {
  const copy = new Error(scrub(messageOf(error), key));
  const source = error as { name?: unknown; code?: unknown } | null | undefined;
  if (typeof source?.name === "string") copy.name = source.name;
  if (typeof source?.code === "string") Object.assign(copy, { code: scrub(source.code, key) });
  return copy;
}
