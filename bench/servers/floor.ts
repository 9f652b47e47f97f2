// The floor of a workload on Deno or Bun: a bare server doing the I/O a
// session engine cannot avoid, and nothing else. Tessera's row divided by
// its floor says how much of what the engine could reach it reaches.
//
//   floor.ts <memory|file|cookie|sqlite|postgres> <read|write|new> [--root <dir>] [--plain]
//
// It speaks the harness's counter protocol (_counter.mjs) with the session
// cookie and the stored records in Tessera's formats, so that the harness
// seeds and checks it as any session server. By default records are signed
// as Tessera signs them with a secret ("s1:" + HMAC-SHA256 over key, expiry
// and data, base64url, + ":" + data), so a read includes one HMAC verify and
// a write one HMAC sign; `--plain` stores the data alone, as Tessera does
// without a secret. The signed cookie is always signed (Django's format).
//
// What each floor does per request (a write also sends the cookie again, as
// a saved session does):
// - memory read: parse the cookie, Map lookup, [verify], JSON.parse, add Vary;
//   memory write: the same, then JSON.stringify, [sign], Map.set.
// - file read: readFileSync of the session file, [verify], JSON.parse;
//   file write: the same, then write a temp file (open O_EXCL 0600, write,
//   set its mtime to the expiry, close) and rename it over the session file:
//   the native format's atomic write, synchronous calls throughout.
// - cookie read: one HMAC verify of Django's signed cookie, base64url
//   decode, JSON.parse, the timestamp's age.
// - sqlite read: one prepared SELECT by key and expiry (node:sqlite),
//   [verify], JSON.parse; sqlite write: the same, then one prepared UPDATE;
//   in WAL mode, as SqliteStore sets it.
// - postgres read: one prepared SELECT by key and expiry (PostgresStore's
//   own statement) over one connection of the postgres package, on a
//   private cluster started as PostgresStore's row starts its own, [verify],
//   JSON.parse; a new session one INSERT.
import {
  closeSync,
  futimesSync,
  mkdtempSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { createHash, createHmac } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { DatabaseSync } from "node:sqlite";
import { parseArgs } from "node:util";
import { listen } from "./_listen.ts";
import { SECRET, visit, workloadOf } from "./_counter.mjs";

const COOKIE = "sessionid";
const AGE = 1_209_600;
const ATTRIBUTES = "; Path=/; HttpOnly; SameSite=Lax";
const KEY = /^[a-z0-9]{32}$/;
const RECORD_SALT = "tessera.sessions.StoredRecord";
const COOKIE_SALT = "django.contrib.sessions.backends.signed_cookies";
const MARK = "s1:";
const HEADER = MARK.length + 43 + 1;
const encoder = new TextEncoder();

const { values, positionals } = parseArgs({
  args: process.argv.slice(2),
  options: {
    root: { type: "string" },
    plain: { type: "boolean", default: false },
  },
  allowPositionals: true,
});
const [path = "", workloadName] = positionals;
const workload = workloadOf(workloadName);
const signed = !values.plain;

// Django's salted_hmac key, derived once, as Tessera caches it. The HMAC is
// node:crypto's, synchronous on both runtimes: the cheapest way to do the
// signing a signed row cannot avoid, and the one Tessera's record layer uses
// (src/_hmac.ts). The signed-cookie floor uses it too, so that a slower
// HMAC in a row shows as a ratio below 1.
function hmacKey(salt: string): Uint8Array {
  return new Uint8Array(
    createHash("sha256").update(encoder.encode(`${salt}signer${SECRET}`)).digest(),
  );
}

function signature(key: Uint8Array, message: string): string {
  return createHmac("sha256", key).update(message, "utf8").digest("base64url");
}

// Compared as base64url text, every character, in constant time.
function verifies(key: Uint8Array, message: string, mac: string): boolean {
  const expected = signature(key, message);
  if (mac.length !== expected.length) return false;
  let difference = 0;
  for (let i = 0; i < expected.length; i++) {
    difference |= expected.charCodeAt(i) ^ mac.charCodeAt(i);
  }
  return difference === 0;
}

const recordKey = hmacKey(RECORD_SALT);

/** A stored record as the sealed format keeps it: the signature heads the data. */
function seal(
  key: string,
  expiresAt: number,
  data: string,
): string {
  if (!signed) return data;
  return `${MARK}${
    signature(
      recordKey,
      `${key}\n${expiresAt}\n${data}`,
    )
  }:${data}`;
}

/** The data of a stored record, or `null` when its signature does not verify. */
function open(
  key: string,
  expiresAt: number,
  stored: string,
): string | null {
  if (!signed) return stored;
  if (!stored.startsWith(MARK) || stored.charCodeAt(HEADER - 1) !== 58) {
    return null;
  }
  const data = stored.slice(HEADER);
  const ok = verifies(
    recordKey,
    `${key}\n${expiresAt}\n${data}`,
    stored.slice(MARK.length, HEADER - 1),
  );
  return ok ? data : null;
}

function cookieValue(req: Request): string | null {
  const header = req.headers.get("cookie");
  if (header === null) return null;
  const at = header.indexOf(`${COOKIE}=`);
  if (
    at === -1 || (at > 0 && header[at - 1] !== " " && header[at - 1] !== ";")
  ) return null;
  const start = at + COOKIE.length + 1;
  const end = header.indexOf(";", start);
  return header.slice(start, end === -1 ? undefined : end).trim();
}

function answer(body: string, cookie: string | null): Response {
  const headers = new Headers({ "Vary": "Cookie" });
  if (cookie !== null) {
    const expires = new Date(Date.now() + AGE * 1000).toUTCString();
    headers.set(
      "Set-Cookie",
      `${COOKIE}=${cookie}; Expires=${expires}; Max-Age=${AGE}${ATTRIBUTES}`,
    );
  }
  return new Response(body, { headers });
}

function newKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  let key = "";
  for (const byte of bytes) {
    key += "abcdefghijklmnopqrstuvwxyz0123456789"[byte % 36];
  }
  return key;
}

/** A stored record and its expiry, in milliseconds. */
type Loaded = { stored: string; expiresAt: number } | null;

/** Where a path keeps records: load one by key, store one (a database, asynchronously). */
interface Records {
  load(key: string): Loaded | Promise<Loaded>;
  store(
    key: string,
    expiresAt: number,
    stored: string,
    isNew: boolean,
  ): void | Promise<void>;
}

let cleanup = (): void | Promise<void> => {};

function scratch(): string {
  const directory = mkdtempSync(
    join(values.root ?? tmpdir(), "tessera-bench-floor-"),
  );
  cleanup = () => rmSync(directory, { recursive: true, force: true });
  return directory;
}

function memoryRecords(): Records {
  const entries = new Map<string, { stored: string; expiresAt: number }>();
  return {
    load: (key) => entries.get(key) ?? null,
    store: (key, expiresAt, stored) => void entries.set(key, { stored, expiresAt }),
  };
}

function fileRecords(): Records {
  const directory = scratch();
  return {
    load(key) {
      let text: string;
      try {
        text = readFileSync(join(directory, COOKIE + key), "utf8");
      } catch (error) {
        if ((error as { code?: string }).code === "ENOENT") return null;
        throw error;
      }
      const newline = text.indexOf("\n");
      return {
        expiresAt: Number(text.slice(0, newline)),
        stored: text.slice(newline + 1),
      };
    },
    store(key, expiresAt, stored) {
      const file = join(directory, COOKIE + key);
      const temp = `${file}.tmp-${newKey().slice(0, 12)}`;
      const fd = openSync(temp, "wx", 0o600);
      try {
        writeSync(fd, `${expiresAt}\n${stored}`);
        futimesSync(fd, Date.now() / 1000, expiresAt / 1000);
      } finally {
        closeSync(fd);
      }
      renameSync(temp, file);
    },
  };
}

// Django's expire_date text, as SqliteStore writes and compares it.
function expireDate(ms: number): string {
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)}000`;
}

function sqliteRecords(): Records {
  const db = new DatabaseSync(join(scratch(), "sessions.sqlite3"));
  const removeDirectory = cleanup;
  cleanup = () => {
    db.close();
    removeDirectory();
  };
  // The journal SqliteStore sets: the same durability, so the same writes.
  db.exec("PRAGMA journal_mode = WAL");
  db.exec(
    `CREATE TABLE "django_session" ("session_key" varchar(40) NOT NULL PRIMARY KEY, "session_data" text NOT NULL, "expire_date" datetime NOT NULL)`,
  );
  db.exec(
    `CREATE INDEX "django_session_expire_date" ON "django_session" ("expire_date")`,
  );
  const select = db.prepare(
    `SELECT session_data, expire_date FROM "django_session" WHERE session_key = ? AND expire_date > ?`,
  );
  const insert = db.prepare(
    `INSERT INTO "django_session" (session_key, session_data, expire_date) VALUES (?, ?, ?)`,
  );
  const update = db.prepare(
    `UPDATE "django_session" SET session_data = ?, expire_date = ? WHERE session_key = ?`,
  );
  return {
    load(key) {
      const row = select.get(key, expireDate(Date.now())) as
        | { session_data: string; expire_date: string }
        | undefined;
      if (row === undefined) return null;
      const date = row.expire_date;
      // The signed expiry is the row's, read back to milliseconds.
      const expiresAt = signed
        ? Date.parse(`${date.slice(0, 10)}T${date.slice(11, 23)}Z`)
        : Infinity;
      return { stored: row.session_data, expiresAt };
    },
    store(key, expiresAt, stored, isNew) {
      if (isNew) insert.run(key, stored, expireDate(expiresAt));
      else update.run(stored, expireDate(expiresAt), key);
    },
  };
}

// PostgresStore's table (Django's, without its key index, which a load
// does not use) and its load, sent as a prepared statement.
async function postgresRecords(): Promise<Records> {
  // Loaded only by this floor, so that no other floor carries it.
  const { default: postgres } = await import("postgres");
  const { startPostgres } = await import("../../tests/_postgres.ts");
  const server = await startPostgres();
  const sql = postgres(server.url, { max: 1, onnotice: () => {} });
  cleanup = async () => {
    await sql.end({ timeout: 1 });
    await server.destroy();
  };
  await sql.unsafe(
    `CREATE TABLE "django_session" ("session_key" varchar(40) NOT NULL PRIMARY KEY, "session_data" text NOT NULL, "expire_date" timestamp with time zone NOT NULL)`,
  );
  await sql.unsafe(
    `CREATE INDEX "django_session_expire_date" ON "django_session" ("expire_date")`,
  );
  const select =
    `SELECT session_data, floor(extract(epoch FROM expire_date) * 1000)::bigint::text AS expires_at
FROM "django_session" WHERE session_key = $1::varchar AND expire_date > $2::text::timestamptz`;
  const insert = `INSERT INTO "django_session" (session_key, session_data, expire_date)
VALUES ($1::varchar, $2::text, $3::text::timestamptz)`;
  const update =
    `UPDATE "django_session" SET session_data = $2::text, expire_date = $3::text::timestamptz WHERE session_key = $1::varchar`;
  return {
    async load(key) {
      const rows = await sql.unsafe(select, [key, new Date().toISOString()], {
        prepare: true,
      });
      const row = rows[0];
      if (row === undefined) return null;
      return {
        stored: row.session_data as string,
        expiresAt: Number(row.expires_at),
      };
    },
    async store(key, expiresAt, stored, isNew) {
      const date = new Date(expiresAt).toISOString();
      await sql.unsafe(isNew ? insert : update, [key, stored, date], {
        prepare: true,
      });
    },
  };
}

type Handler = (req: Request) => Response | Promise<Response>;

function recordsHandler(records: Records): Handler {
  const start = async (): Promise<Response> => {
    const key = newKey();
    const expiresAt = Date.now() + AGE * 1000;
    const { store, body } = visit(undefined, workload);
    const pending = records.store(
      key,
      expiresAt,
      seal(key, expiresAt, JSON.stringify({ count: store })),
      true,
    );
    if (pending !== undefined) await pending;
    return answer(body, key);
  };
  return async (req) => {
    const key = cookieValue(req);
    if (key === null || !KEY.test(key)) return await start();
    const loaded = records.load(key);
    const record = loaded instanceof Promise ? await loaded : loaded;
    if (record === null || !(record.expiresAt > Date.now())) {
      return await start();
    }
    const data = open(key, record.expiresAt, record.stored);
    if (data === null) return await start();
    const { store, body } = visit(
      (JSON.parse(data) as { count?: unknown }).count,
      workload,
    );
    if (store === undefined) return answer(body, null);
    const expiresAt = Date.now() + AGE * 1000;
    const pending = records.store(
      key,
      expiresAt,
      seal(key, expiresAt, JSON.stringify({ count: store })),
      false,
    );
    if (pending !== undefined) await pending;
    return answer(body, key);
  };
}

// Django's signed_cookies value: base64url JSON, ":" base62 seconds, ":"
// HMAC-SHA256 over both.
const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

function cookieHandler(): Handler {
  const key = hmacKey(COOKIE_SALT);
  return (req) => {
    const value = cookieValue(req);
    const last = value === null ? -1 : value.lastIndexOf(":");
    if (value !== null && last > 0) {
      const content = value.slice(0, last);
      const stamp = content.lastIndexOf(":");
      if (stamp > 0 && verifies(key, content, value.slice(last + 1))) {
        let seconds = 0;
        for (const char of content.slice(stamp + 1)) {
          seconds = seconds * 62 + BASE62.indexOf(char);
        }
        if (Date.now() / 1000 - seconds <= AGE) {
          const json = new TextDecoder().decode(
            Uint8Array.fromBase64(content.slice(0, stamp), {
              alphabet: "base64url",
            }),
          );
          const { body } = visit(
            (JSON.parse(json) as { count?: unknown }).count,
            "read",
          );
          return answer(body, null);
        }
      }
    }
    const { store, body } = visit(undefined, workload);
    const payload = encoder.encode(JSON.stringify({ count: store })).toBase64({
      alphabet: "base64url",
      omitPadding: true,
    });
    let seconds = Math.floor(Date.now() / 1000);
    let stamp = "";
    while (seconds > 0) {
      stamp = BASE62[seconds % 62] + stamp;
      seconds = Math.floor(seconds / 62);
    }
    const content = `${payload}:${stamp}`;
    return answer(body, `${content}:${signature(key, content)}`);
  };
}

const PATHS: Record<string, () => Handler | Promise<Handler>> = {
  memory: () => recordsHandler(memoryRecords()),
  file: () => recordsHandler(fileRecords()),
  sqlite: () => recordsHandler(sqliteRecords()),
  postgres: async () => recordsHandler(await postgresRecords()),
  cookie: cookieHandler,
};
const build = PATHS[path];
if (build === undefined) {
  throw new TypeError(
    `Cannot start the floor server as the path must be one of ${
      Object.keys(PATHS).join(", ")
    }: current value is ${path}`,
  );
}
if ((path === "cookie" || path === "postgres") && workload === "write") {
  throw new TypeError(
    `Cannot start the floor server as the ${path} floor is a read floor only: current value is write`,
  );
}
const handler = await build();

process.on("SIGTERM", async () => {
  await cleanup();
  process.exit(0);
});

listen(handler);
