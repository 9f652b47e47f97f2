// The index of sessions by user in SQLite and PostgreSQL, native: each
// session of a user is a row of its own, so that processes updating one
// user at the same instant never overwrite each other's entries (the
// generic backend's one record per user is a read-modify-write), and a
// user's generation is a row incremented in place. Both engines run the
// same statements; only placeholders, types and the set-up differ.

import { DatabaseSync } from "node:sqlite";
import type { PostgresClient, PostgresRow } from "./stores/postgres.ts";
import type { SqliteStore } from "./stores/sqlite.ts";
import type { Entry, Generation, UserBackend } from "./users.ts";

/** Options of the native SQLite index of {@link UserSessions}. */
export interface SqliteUserIndexOptions {
  /**
   * The database file of the index (its directory must exist), or the
   * `SqliteStore` of the sessions, whose file then holds the index too, in
   * tables of its own: `django_session` is never altered.
   */
  sqlite: string | SqliteStore;
  /**
   * The start of the index's two table names: `<prefix>session`, a row per
   * session of a user, and `<prefix>generation`, a row per user.
   *
   * @default {"tessera_user_"}
   */
  prefix?: string;
  /**
   * How long a write waits, in milliseconds, for another connection or
   * process holding the database's write lock before it fails.
   *
   * @default {5000}
   */
  busyTimeout?: number;
}

/** Options of the native PostgreSQL index of {@link UserSessions}. */
export interface PostgresUserIndexOptions {
  /** A PostgreSQL client or pool, as `PostgresStore` takes. */
  postgres: PostgresClient;
  /**
   * The start of the index's two table names: `<prefix>session`, a row per
   * session of a user, and `<prefix>generation`, a row per user.
   *
   * @default {"tessera_user_"}
   */
  prefix?: string;
}

type RecordKey = (kind: "u" | "g", userId: string) => Promise<string>;
type Run = (text: string, parameters: string[]) => Promise<readonly PostgresRow[]>;

const PREFIX_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,40}$/;
// Expired rows of other users deleted by one write: the sweep of a
// forgotten user's rows never makes a write long.
const PRUNE_BATCH = 100;

interface Dialect {
  // The n-th parameter, typed where PostgreSQL needs it.
  p(n: number, type: "text" | "bigint"): string;
  // A set of ids from a JSON array text.
  ids(n: number): string;
}

const SQLITE: Dialect = {
  p: (n) => `?${n}`,
  ids: (n) => `(SELECT value FROM json_each(?${n}))`,
};

const POSTGRES: Dialect = {
  p: (n, type) => `$${n}::${type}`,
  ids: (n) => `(SELECT json_array_elements_text($${n}::text::json))`,
};

interface Prepared {
  statement: ReturnType<DatabaseSync["prepare"]>;
  // The parameter each placeholder takes, in order.
  order: number[];
  rows: boolean;
}

const RETURNS_ROWS = new Set(["entries", "entry", "remove", "generation", "bump"]);

interface Statements {
  entries: string;
  entry: string;
  upsert: string;
  removeOld: string;
  prune: string;
  remove: string;
  generation: string;
  bump: string;
  pruneGenerations: string;
}

// The statements both engines run, in their placeholders. A write of an
// entry takes [user, id, entry, expires at, old id, now] in every one of
// its statements, so that PostgreSQL can join them into one.
function statements(prefix: string, d: Dialect): Statements {
  const s = `"${prefix}session"`;
  const g = `"${prefix}generation"`;
  return {
    entries: `SELECT session_id, entry FROM ${s}
WHERE user_hash = ${d.p(1, "text")} AND expires_at > ${d.p(2, "bigint")}`,
    entry: `SELECT entry FROM ${s}
WHERE user_hash = ${d.p(1, "text")} AND session_id = ${d.p(2, "text")} AND expires_at > ${
      d.p(3, "bigint")
    }`,
    upsert: `INSERT INTO ${s} (user_hash, session_id, entry, expires_at)
VALUES (${d.p(1, "text")}, ${d.p(2, "text")}, ${d.p(3, "text")}, ${d.p(4, "bigint")})
ON CONFLICT (user_hash, session_id) DO UPDATE SET entry = excluded.entry, expires_at = excluded.expires_at`,
    removeOld: `DELETE FROM ${s} WHERE user_hash = ${d.p(1, "text")} AND session_id = ${
      d.p(5, "text")
    }`,
    // The user's own expired rows, and a bounded batch of anyone's; never
    // the row being written (PostgreSQL runs both in one statement).
    prune: `DELETE FROM ${s} WHERE expires_at <= ${d.p(6, "bigint")} AND session_id <> ${
      d.p(2, "text")
    } AND (user_hash = ${d.p(1, "text")} OR (user_hash, session_id) IN (
  SELECT user_hash, session_id FROM ${s} WHERE expires_at <= ${
      d.p(6, "bigint")
    } LIMIT ${PRUNE_BATCH}))`,
    // Only the rows this statement deleted are returned: of two removers
    // racing for a row, one gets it.
    remove: `DELETE FROM ${s} WHERE user_hash = ${d.p(1, "text")} AND session_id IN ${d.ids(2)}
RETURNING entry`,
    generation: `SELECT CAST(generation AS TEXT) AS g, CAST(bumped_at AS TEXT) AS at FROM ${g}
WHERE user_hash = ${d.p(1, "text")} AND expires_at > ${d.p(2, "bigint")}`,
    // A generation past its lifetime reads as 0 (the row is as good as
    // gone), so the bump after it makes 1, as a new record would.
    bump: `INSERT INTO ${g} AS old (user_hash, generation, bumped_at, expires_at)
VALUES (${d.p(1, "text")}, 1, ${d.p(2, "bigint")}, ${d.p(3, "bigint")})
ON CONFLICT (user_hash) DO UPDATE SET
  generation = CASE WHEN old.expires_at > excluded.bumped_at THEN old.generation + 1 ELSE 1 END,
  bumped_at = excluded.bumped_at, expires_at = excluded.expires_at
RETURNING CAST(generation AS TEXT) AS g`,
    pruneGenerations: `DELETE FROM ${g} WHERE user_hash IN (
  SELECT user_hash FROM ${g} WHERE expires_at <= ${d.p(1, "bigint")} LIMIT ${PRUNE_BATCH})`,
  };
}

// The tables, created if missing: the same layout on both engines.
function tables(prefix: string, bigint: string): string[] {
  const s = `"${prefix}session"`;
  const g = `"${prefix}generation"`;
  return [
    `CREATE TABLE IF NOT EXISTS ${s} (user_hash varchar(40) NOT NULL, session_id varchar(24) NOT NULL, entry text NOT NULL, expires_at ${bigint} NOT NULL, PRIMARY KEY (user_hash, session_id))`,
    `CREATE INDEX IF NOT EXISTS "${prefix}session_expires_at" ON ${s} (expires_at)`,
    `CREATE TABLE IF NOT EXISTS ${g} (user_hash varchar(40) NOT NULL PRIMARY KEY, generation ${bigint} NOT NULL, bumped_at ${bigint} NOT NULL, expires_at ${bigint} NOT NULL)`,
    `CREATE INDEX IF NOT EXISTS "${prefix}generation_expires_at" ON ${g} (expires_at)`,
  ];
}

/** @ignore Checks the prefix of the index's tables. */
export function checkPrefix(prefix: unknown): string {
  if (typeof prefix !== "string" || !PREFIX_PATTERN.test(prefix)) {
    throw new TypeError(
      `Cannot create UserSessions as 'prefix' must be a letter or '_' followed by up to 40 letters, digits and '_': current value is ${
        JSON.stringify(prefix)
      }`,
    );
  }
  return prefix;
}

type Rows = readonly PostgresRow[];

// The parts both engines share: what a row means. Each engine makes the
// three writes atomic its own way.
abstract class SqlBackend implements UserBackend {
  readonly #recordKey: RecordKey;
  readonly #generationLifetime: number;

  constructor(recordKey: RecordKey, generationLifetime: number) {
    this.#recordKey = recordKey;
    this.#generationLifetime = generationLifetime;
  }

  protected abstract read(
    name: "entries" | "entry" | "generation",
    parameters: string[],
  ): Promise<Rows>;
  // Drops the entry of `old id` (or none for ""), sets the new one, prunes;
  // parameters: [user, id, entry, expires at, old id, now].
  protected abstract write(parameters: string[]): Promise<void>;
  // Deletes the live entries of a user that `select` picks; returns them.
  protected abstract delete(user: string, select: (id: string) => boolean): Promise<Rows>;
  // Parameters: [user, now, expires at]; returns the bump's row.
  protected abstract increment(parameters: string[]): Promise<Rows>;

  async entries(userId: string): Promise<Record<string, Entry>> {
    const user = await this.#recordKey("u", userId);
    const rows = await this.read("entries", [user, String(Date.now())]);
    const entries: Record<string, Entry> = {};
    for (const row of rows) {
      const entry = parseEntry(row.entry);
      if (entry !== null) entries[String(row.session_id)] = entry;
    }
    return entries;
  }

  async generation(userId: string): Promise<Generation> {
    const user = await this.#recordKey("g", userId);
    const [row] = await this.read("generation", [user, String(Date.now())]);
    if (row === undefined) return { g: 0, at: 0 };
    const generation = { g: Number(row.g), at: Number(row.at) };
    if (
      typeof row.g !== "string" || !Number.isSafeInteger(generation.g) ||
      !Number.isFinite(generation.at)
    ) {
      // Reading it as 0 would bring back every session it ended.
      throw new Error("Cannot read a user's generation as its record is damaged");
    }
    return generation;
  }

  async bump(userId: string): Promise<number> {
    const user = await this.#recordKey("g", userId);
    const now = Date.now();
    const [row] = await this.increment([user, String(now), String(now + this.#generationLifetime)]);
    const generation = Number(row?.g);
    if (!Number.isSafeInteger(generation)) {
      throw new Error("Cannot read a user's generation as its record is damaged");
    }
    return generation;
  }

  async put(
    userId: string,
    id: string,
    oldId: string | null,
    make: (previous: Entry | undefined) => Entry,
  ): Promise<void> {
    const user = await this.#recordKey("u", userId);
    const now = Date.now();
    // Only the creation time comes from the previous entry: a write racing
    // with this one is a save of the same session, never another's entry.
    const [row] = await this.read("entry", [user, id, String(now)]);
    const entry = make(parseEntry(row?.entry) ?? undefined);
    await this.write([
      user,
      id,
      JSON.stringify(entry),
      String(Math.floor(entry.e)),
      oldId ?? "",
      String(now),
    ]);
  }

  async remove(userId: string, select: (id: string) => boolean): Promise<Entry[]> {
    const user = await this.#recordKey("u", userId);
    const removed = await this.delete(user, select);
    return removed.map((row) => parseEntry(row.entry)).filter((entry) => entry !== null);
  }
}

/** @ignore The native index in an SQLite database. */
export class SqliteBackend extends SqlBackend {
  readonly #db: DatabaseSync;
  readonly #statements: Record<keyof Statements, Prepared>;

  constructor(
    options: SqliteUserIndexOptions,
    recordKey: RecordKey,
    generationLifetime: number,
  ) {
    super(recordKey, generationLifetime);
    const source = options.sqlite;
    const path = typeof source === "string" ? source : source?.path;
    if (typeof path !== "string" || path === "" || path === ":memory:" && source !== path) {
      throw new TypeError(
        `Cannot create UserSessions as 'sqlite' must be a database file name or a SqliteStore of one: current value is ${
          typeof path === "string" ? JSON.stringify(path) : String(source)
        }`,
      );
    }
    const prefix = checkPrefix(options.prefix ?? "tessera_user_");
    const busyTimeout = options.busyTimeout ?? 5000;
    if (!Number.isSafeInteger(busyTimeout) || busyTimeout < 0) {
      throw new RangeError(
        `Cannot create UserSessions as 'busyTimeout' must be a non-negative whole number of milliseconds: current value is ${busyTimeout}`,
      );
    }
    this.#db = new DatabaseSync(path, { timeout: busyTimeout });
    try {
      const db = this.#db;
      untilUnlocked(busyTimeout, () => {
        db.exec("PRAGMA journal_mode = WAL");
        for (const text of tables(prefix, "integer")) db.exec(text);
      });
      const texts = statements(prefix, SQLITE);
      this.#statements = Object.fromEntries(
        Object.entries(texts).map(([name, text]) => {
          // node:sqlite binds values in order to plain "?" placeholders.
          const order: number[] = [];
          const plain = text.replace(
            /\?(\d+)/g,
            (_: string, n: string) => (order.push(Number(n)), "?"),
          );
          return [name, { statement: db.prepare(plain), order, rows: RETURNS_ROWS.has(name) }];
        }),
      ) as Record<keyof Statements, Prepared>;
    } catch (error) {
      this.#db.close();
      throw new Error(
        `Cannot set up the user index tables in '${path}': ${
          error instanceof Error ? error.message : String(error)
        }`,
        { cause: error },
      );
    }
  }

  protected read(name: "entries" | "entry" | "generation", parameters: string[]): Promise<Rows> {
    return Promise.resolve(this.#run(name, parameters));
  }

  protected write(parameters: string[]): Promise<void> {
    this.#atomically(() => {
      this.#run("removeOld", parameters);
      this.#run("upsert", parameters);
      this.#run("prune", parameters);
    });
    return Promise.resolve();
  }

  protected delete(user: string, select: (id: string) => boolean): Promise<Rows> {
    return Promise.resolve(this.#atomically(() => {
      const rows = this.#run("entries", [user, String(Date.now())]);
      const chosen = rows.map((row) => String(row.session_id)).filter((id) => select(id));
      return chosen.length === 0 ? [] : this.#run("remove", [user, JSON.stringify(chosen)]);
    }));
  }

  protected increment(parameters: string[]): Promise<Rows> {
    return Promise.resolve(this.#atomically(() => {
      const rows = this.#run("bump", parameters);
      this.#run("pruneGenerations", [parameters[1]!]);
      return rows;
    }));
  }

  #run(name: keyof Statements, parameters: string[]): Rows {
    // Every value is bound as text; the columns' integer affinity stores
    // the numbers as integers.
    const { statement, order, rows } = this.#statements[name];
    const values = order.map((n) => parameters[n - 1]!);
    return rows ? statement.all(...values) as PostgresRow[] : (statement.run(...values), []);
  }

  // Synchronous from BEGIN to COMMIT: node:sqlite blocks, so no other code
  // of this process (another connection to the file, the session store's
  // own) runs while this one holds the write lock.
  #atomically<T>(body: () => T): T {
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      const result = body();
      this.#db.exec("COMMIT");
      return result;
    } catch (error) {
      this.#db.exec("ROLLBACK");
      throw error;
    }
  }

  close(): void {
    try {
      this.#db.close();
    } catch {
      // Closed already.
    }
  }
}

/** @ignore The native index in a PostgreSQL database. */
export class PostgresBackend extends SqlBackend {
  readonly #run: Run;
  readonly #statements: Statements;
  readonly #setup: string;
  readonly #write: string;
  #ready: Promise<void> | undefined;

  constructor(
    options: PostgresUserIndexOptions,
    recordKey: RecordKey,
    generationLifetime: number,
  ) {
    super(recordKey, generationLifetime);
    this.#run = runner(options.postgres);
    const prefix = checkPrefix(options.prefix ?? "tessera_user_");
    this.#statements = statements(prefix, POSTGRES);
    const { removeOld, prune, upsert } = this.#statements;
    this.#write = `WITH old AS (${removeOld}), pruned AS (${prune})\n${upsert}`;
    // One statement, so that it runs on one connection of a pool; the
    // advisory lock makes processes that start together take turns, as
    // concurrent CREATE TABLE IF NOT EXISTS can fail.
    this.#setup = `DO $tessera$
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('tessera.users:' || current_schema() || '.${prefix}'));
  ${tables(prefix, "bigint").join(";\n  ")};
END
$tessera$`;
  }

  protected read(name: "entries" | "entry" | "generation", parameters: string[]): Promise<Rows> {
    return this.#query(this.#statements[name], parameters);
  }

  // One statement, on one connection of a pool: the old entry goes, the
  // new one comes, and expired ones are pruned, all or none.
  protected async write(parameters: string[]): Promise<void> {
    await this.#query(this.#write, parameters);
  }

  protected async delete(user: string, select: (id: string) => boolean): Promise<Rows> {
    const rows = await this.#query(this.#statements.entries, [user, String(Date.now())]);
    const chosen = rows.map((row) => String(row.session_id)).filter((id) => select(id));
    if (chosen.length === 0) return [];
    return await this.#query(this.#statements.remove, [user, JSON.stringify(chosen)]);
  }

  protected async increment(parameters: string[]): Promise<Rows> {
    const rows = await this.#query(this.#statements.bump, parameters);
    await this.#query(this.#statements.pruneGenerations, [parameters[1]!]);
    return rows;
  }

  async #query(text: string, parameters: string[]): Promise<Rows> {
    this.#ready ??= this.#run(this.#setup, []).then(() => {}, (error) => {
      this.#ready = undefined;
      throw error;
    });
    await this.#ready;
    return await this.#run(text, parameters);
  }
}

function runner(client: unknown): Run {
  const candidate = client as Record<string, unknown> | null | undefined;
  if (typeof candidate?.unsafe === "function") {
    const unsafe = candidate.unsafe as (t: string, p: string[]) => PromiseLike<unknown>;
    // postgres's and Bun's queries are lazy thenables: awaiting one sends it.
    return async (text, parameters) => {
      const rows = await unsafe.call(candidate, text, parameters);
      return Array.isArray(rows) ? rows : [];
    };
  }
  if (typeof candidate?.query === "function") {
    const query = candidate.query as (t: string, p: string[]) => PromiseLike<{ rows?: unknown }>;
    return async (text, parameters) => {
      const result = await query.call(candidate, text, parameters);
      return Array.isArray(result?.rows) ? result.rows : [];
    };
  }
  throw new TypeError(
    "Cannot create UserSessions as 'postgres' must be a PostgreSQL client with an unsafe() or query() method: current value is " +
      (client === null || typeof client !== "object" ? String(client) : "an object without them"),
  );
}

function parseEntry(value: unknown): Entry | null {
  if (typeof value !== "string") return null;
  try {
    const entry = JSON.parse(value) as Entry;
    if (typeof entry.k === "string" && Number.isFinite(entry.e)) return entry;
  } catch {
    // A damaged entry is left out of the list.
  }
  return null;
}

// Two processes opening one new database at once: switching it to WAL
// takes a lock for which SQLite does not call its busy handler, so the
// set-up, which is idempotent, is tried again while the busy timeout allows.
function untilUnlocked(timeoutMs: number, setUp: () => void): void {
  const deadline = Date.now() + timeoutMs;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  while (true) {
    try {
      setUp();
      return;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (!/database is locked|SQLITE_BUSY/i.test(message) || Date.now() >= deadline) throw error;
      Atomics.wait(pause, 0, 0, 10 + Math.random() * 20);
    }
  }
}
