// The floor of a workload on Deno or Bun: a bare server doing the I/O a
// session engine cannot avoid, and nothing else. Tessera's row divided by
// its floor says how much of what the engine could reach it reaches.
//
//   floor.ts <memory|file|cookie|sqlite> <read|write|new> [--root <dir>] [--plain]
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
// TODO(issue 14): a PostgreSQL read floor, once PostgresStore is measured
// here (one prepared SELECT by key over one connection).
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

// Django's salted_hmac key, derived once, as signing.ts caches it.
async function hmacKey(salt: string): Promise<CryptoKey> {
  const material = await crypto.subtle.digest(
    "SHA-256",
    encoder.encode(`${salt}signer${SECRET}`),
  );
  return crypto.subtle.importKey(
    "raw",
    material,
    { name: "HMAC", hash: "SHA-256" },
    false,
    [
      "sign",
      "verify",
    ],
  );
}

async function signature(key: CryptoKey, message: string): Promise<string> {
  const bytes = new Uint8Array(
    await crypto.subtle.sign("HMAC", key, encoder.encode(message)),
  );
  return bytes.toBase64({ alphabet: "base64url", omitPadding: true });
}

function verifies(
  key: CryptoKey,
  message: string,
  mac: string,
): Promise<boolean> {
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = Uint8Array.fromBase64(mac, { alphabet: "base64url" });
  } catch {
    return Promise.resolve(false);
  }
  return crypto.subtle.verify("HMAC", key, bytes, encoder.encode(message));
}

const recordKey = await hmacKey(RECORD_SALT);

/** A stored record as the sealed format keeps it: the signature heads the data. */
async function seal(
  key: string,
  expiresAt: number,
  data: string,
): Promise<string> {
  if (!signed) return data;
  return `${MARK}${await signature(
    recordKey,
    `${key}\n${expiresAt}\n${data}`,
  )}:${data}`;
}

/** The data of a stored record, or `null` when its signature does not verify. */
async function open(
  key: string,
  expiresAt: number,
  stored: string,
): Promise<string | null> {
  if (!signed) return stored;
  if (!stored.startsWith(MARK) || stored.charCodeAt(HEADER - 1) !== 58) {
    return null;
  }
  const data = stored.slice(HEADER);
  const ok = await verifies(
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

/** Where a path keeps records: load one by key, store one. */
interface Records {
  load(key: string): { stored: string; expiresAt: number } | null;
  store(key: string, expiresAt: number, stored: string, isNew: boolean): void;
}

let cleanup = (): void => {};

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

type Handler = (req: Request) => Promise<Response>;

function recordsHandler(records: Records): Handler {
  const start = async (): Promise<Response> => {
    const key = newKey();
    const expiresAt = Date.now() + AGE * 1000;
    const { store, body } = visit(undefined, workload);
    records.store(
      key,
      expiresAt,
      await seal(key, expiresAt, JSON.stringify({ count: store })),
      true,
    );
    return answer(body, key);
  };
  return async (req) => {
    const key = cookieValue(req);
    if (key === null || !KEY.test(key)) return await start();
    const record = records.load(key);
    if (record === null || !(record.expiresAt > Date.now())) {
      return await start();
    }
    const data = await open(key, record.expiresAt, record.stored);
    if (data === null) return await start();
    const { store, body } = visit(
      (JSON.parse(data) as { count?: unknown }).count,
      workload,
    );
    if (store === undefined) return answer(body, null);
    const expiresAt = Date.now() + AGE * 1000;
    records.store(
      key,
      expiresAt,
      await seal(key, expiresAt, JSON.stringify({ count: store })),
      false,
    );
    return answer(body, key);
  };
}

// Django's signed_cookies value: base64url JSON, ":" base62 seconds, ":"
// HMAC-SHA256 over both.
const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

function cookieHandler(): Handler {
  const keyPromise = hmacKey(COOKIE_SALT);
  return async (req) => {
    const key = await keyPromise;
    const value = cookieValue(req);
    const last = value === null ? -1 : value.lastIndexOf(":");
    if (value !== null && last > 0) {
      const content = value.slice(0, last);
      const stamp = content.lastIndexOf(":");
      if (stamp > 0 && await verifies(key, content, value.slice(last + 1))) {
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
    return answer(body, `${content}:${await signature(key, content)}`);
  };
}

const PATHS: Record<string, () => Handler> = {
  memory: () => recordsHandler(memoryRecords()),
  file: () => recordsHandler(fileRecords()),
  sqlite: () => recordsHandler(sqliteRecords()),
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
if (path === "cookie" && workload === "write") {
  throw new TypeError(
    "Cannot start the floor server as the signed cookie has a read floor only: current value is write",
  );
}
const handler = build();

process.on("SIGTERM", () => {
  cleanup();
  process.exit(0);
});

listen(handler);
