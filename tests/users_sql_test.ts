// The native SQLite and PostgreSQL indexes of UserSessions (a row per
// session in side tables): the "your devices" flow through real servers,
// and the race the generic one-record-per-user index loses: several
// processes logging in many sessions of one user at the same instant, after
// which the list holds every one of them.

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { DatabaseSync } from "node:sqlite";
import { fileURLToPath } from "node:url";
import {
  getSession,
  MemoryStore,
  type PostgresClient,
  PostgresStore,
  SqliteStore,
  UserSessions,
  withSessions,
} from "../mod.ts";
import { RUNTIME, serve } from "./_server.ts";
import { app, devicesFlow } from "./_users_flow.ts";
import { freshTable, POSTGRES_CLIENTS, type PostgresServer, startPostgres } from "./_postgres.ts";
import { SCRATCH } from "./reliability/_engines.ts";

const root = mkdtempSync(join(SCRATCH, "tessera-users-sql-"));
let cluster: Promise<PostgresServer> | undefined;
after(async () => {
  if (cluster !== undefined) await (await cluster).destroy();
  rmSync(root, { recursive: true, force: true });
});

const CHILD = join(dirname(fileURLToPath(import.meta.url)), "_users_sql_child.ts");

// Runs the race children with `args` at once; checks that each answered
// every login and that their logins overlapped in time.
async function race(args: string[], processes: number, count: number): Promise<void> {
  const outputs = await Promise.all(Array.from({ length: processes }, () => child(args)));
  const runs = outputs.map((out) => out.split(" ").map(Number) as [number, number, number]);
  assert.deepEqual(runs.map(([ok]) => ok), runs.map(() => count));
  const lastStart = Math.max(...runs.map(([, began]) => began));
  const firstEnd = Math.min(...runs.map(([, , ended]) => ended));
  assert.ok(lastStart < firstEnd, "the processes wrote at the same time");
}

// Runs the race child with `args`; resolves with its stdout.
function child(args: string[]): Promise<string> {
  const command = RUNTIME === "deno" ? ["run", "--allow-all", CHILD, ...args] : [CHILD, ...args];
  const proc = spawn(process.execPath, command, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  proc.stdout!.setEncoding("utf8").on("data", (text: string) => (out += text));
  proc.stderr!.setEncoding("utf8").on("data", (text: string) => (err += text));
  const timer = setTimeout(() => proc.kill(), 60_000);
  return new Promise((resolve, reject) => {
    proc.once("error", reject);
    proc.once("close", (code) => {
      clearTimeout(timer);
      if (code === 0 && err === "") resolve(out.trim());
      else reject(new Error(`the child exited with ${code}: ${err}`));
    });
  });
}

// A handler that logs user 9 in, for the in-process races.
function login(users: UserSessions, store: SqliteStore | MemoryStore) {
  const errors: string[] = [];
  const handler = withSessions(async (req) => {
    const session = await getSession(req);
    session.set("_auth_user_id", "9");
    await session.cycleKey();
    return new Response("ok");
  }, { store, users, logger: { warn: () => {}, error: (message) => errors.push(message) } });
  return { errors, go: () => handler(new Request("http://localhost/login")) };
}

describe("the native SQLite index", () => {
  it("runs the devices flow, beside django_session, which it leaves as Django lays it out", async () => {
    const path = join(root, "flow.sqlite3");
    const store = new SqliteStore({ path });
    const users = new UserSessions({
      sessions: store,
      index: { sqlite: store },
      metadataKeys: ["ua"],
    });
    const server = serve(app(users, { store, users }));
    try {
      await devicesFlow(users, server.url);
      const db = new DatabaseSync(path);
      const columns = (table: string) =>
        db.prepare(`PRAGMA table_info(${table})`).all().map((row) =>
          (row as { name: string }).name
        );
      assert.deepEqual(columns("django_session"), ["session_key", "session_data", "expire_date"]);
      assert.deepEqual(columns("tessera_user_session"), [
        "user_hash",
        "session_id",
        "entry",
        "expires_at",
      ]);
      assert.deepEqual(columns("tessera_user_generation"), [
        "user_hash",
        "generation",
        "bumped_at",
        "expires_at",
      ]);
      // One row per live session: user 42's phone and user 7's.
      const rows = db.prepare("SELECT count(*) AS n FROM tessera_user_session").get() as {
        n: number;
      };
      assert.equal(rows.n, 2);
      db.close();
    } finally {
      await server.close();
      users.close();
      store.close();
    }
  });

  it("lists every session of 2 processes logging in 100 each of one user at the same instant", async () => {
    const path = join(root, "race.sqlite3");
    const started = performance.now();
    const startAt = String(Date.now() + 3000);
    await race(["sqlite", path, "100", startAt], 2, 100);
    const store = new SqliteStore({ path });
    const users = new UserSessions({ sessions: store, index: { sqlite: path } });
    try {
      const listed = await users.list("9");
      console.log(
        `SQLite: 2 processes, 200 concurrent logins of one user, ${listed.length} listed (${
          Math.round(performance.now() - started)
        } ms)`,
      );
      assert.equal(listed.length, 200);
      assert.equal(new Set(listed.map((device) => device.id)).size, 200);
      // Log out everywhere reaches every one of them.
      await users.logoutEverywhere("9");
      assert.deepEqual(await users.list("9"), []);
    } finally {
      users.close();
      store.close();
    }
    // The same race on the generic index (one row per user) for comparison:
    // its losses depend on timing, so they are shown, not asserted.
    const generic = join(root, "race-generic.sqlite3");
    await race(["sqlite-generic", generic, "100", String(Date.now() + 3000)], 2, 100);
    const sessions = new SqliteStore({ path: generic });
    const index = new SqliteStore({ path: generic, table: "tessera_user_sessions" });
    try {
      const listed = (await new UserSessions({ sessions, index }).list("9")).length;
      console.log(`SQLite, generic index: 2 processes, 200 concurrent logins, ${listed} listed`);
      assert.ok(listed <= 200);
    } finally {
      index.close();
      sessions.close();
    }
  });

  it("lists every session of 2 connections each logging in 150 of one user at once", async () => {
    const path = join(root, "connections.sqlite3");
    const store = new SqliteStore({ path });
    const writers = [0, 1].map(() => {
      const users = new UserSessions({ sessions: store, index: { sqlite: path } });
      return { users, ...login(users, store) };
    });
    try {
      await Promise.all(Array.from({ length: 300 }, (_, i) => writers[i % 2]!.go()));
      const listed = (await writers[1]!.users.list("9")).length;
      console.log(`SQLite: 2 connections, 300 concurrent logins of one user, ${listed} listed`);
      assert.equal(listed, 300);
      assert.deepEqual(writers.flatMap((writer) => writer.errors), []);
    } finally {
      for (const writer of writers) writer.users.close();
      store.close();
    }
  });

  it("keeps the generic index's generation rules: a lifetime, and a damaged record is an error", async () => {
    const path = join(root, "generation.sqlite3");
    const users = new UserSessions({ sessions: new MemoryStore(), index: { sqlite: path } });
    const db = new DatabaseSync(path);
    try {
      assert.equal(await users.generation("42"), 0);
      assert.equal(await users.logoutEverywhere("42"), 1);
      assert.equal(await users.logoutEverywhere("42"), 2);
      assert.equal(await users.generation("42"), 2);
      // Past its lifetime a generation reads 0, and the next bump makes 1.
      db.exec("UPDATE tessera_user_generation SET expires_at = 1");
      assert.equal(await users.generation("42"), 0);
      assert.equal(await users.logoutEverywhere("42"), 1);
      // Reading a damaged generation as 0 would bring back every session it ended.
      db.exec("UPDATE tessera_user_generation SET generation = 'x'");
      await assert.rejects(users.generation("42"), { message: /record is damaged/ });
    } finally {
      db.close();
      users.close();
    }
  });

  it("prunes expired rows at writes, its user's all and others' in bounded batches", async () => {
    const path = join(root, "prune.sqlite3");
    const store = new MemoryStore();
    const users = new UserSessions({ sessions: store, index: { sqlite: path } });
    const db = new DatabaseSync(path);
    try {
      const insert = db.prepare(
        "INSERT INTO tessera_user_session (user_hash, session_id, entry, expires_at) VALUES (?, ?, '{}', 1)",
      );
      for (let i = 0; i < 250; i++) insert.run(`other${i}`, `s${i}`);
      const { go } = login(users, store);
      const remaining = () =>
        (db.prepare("SELECT count(*) AS n FROM tessera_user_session WHERE expires_at = 1")
          .get() as {
            n: number;
          }).n;
      // A login writes the index once or twice; each write takes at most 100.
      await go();
      const left = remaining();
      assert.ok(left === 150 || left === 50, `${left} left after one login`);
      await go();
      await go();
      console.log(`SQLite: 250 expired rows of other users, ${left} left after 1 login, 0 after 3`);
      assert.equal(remaining(), 0);
      assert.equal((await users.list("9")).length, 3);
    } finally {
      db.close();
      users.close();
    }
  });

  it("refuses bad options with a clear error", () => {
    const sessions = new MemoryStore();
    const memory = new SqliteStore({ path: ":memory:" });
    try {
      assert.throws(() => new UserSessions({ sessions, index: { sqlite: memory } }), {
        name: "TypeError",
        message: /'sqlite' must be a database file name or a SqliteStore of one/,
      });
      assert.throws(
        () => new UserSessions({ sessions, index: { sqlite: ":memory:", prefix: "x; DROP" } }),
        { name: "TypeError", message: /'prefix' must be a letter/ },
      );
      assert.throws(
        () => new UserSessions({ sessions, index: { postgres: {} as never } }),
        { name: "TypeError", message: /'postgres' must be a PostgreSQL client/ },
      );
    } finally {
      memory.close();
    }
  });
});

async function execute(client: PostgresClient, text: string): Promise<void> {
  if ("unsafe" in client) await client.unsafe(text, []);
  else await client.query(text, []);
}

describe("the native PostgreSQL index", () => {
  for (const kind of POSTGRES_CLIENTS) {
    it(`${kind.name}: the devices flow, its generation rules, and 2 pools' 200 concurrent logins all listed`, async () => {
      const server = await (cluster ??= startPostgres());
      const handle = await kind.connect(server.url);
      const other = await kind.connect(server.url);
      const prefix = `${freshTable()}_`;
      const store = new PostgresStore({ client: handle.client, table: freshTable() });
      const users = new UserSessions({
        sessions: store,
        index: { postgres: handle.client, prefix },
        metadataKeys: ["ua"],
      });
      const http = serve(app(users, { store, users }));
      try {
        await devicesFlow(users, http.url);
        // The generation's lifetime and damage, as in the generic index.
        await execute(handle.client, `UPDATE "${prefix}generation" SET expires_at = 1`);
        assert.equal(await users.generation("42"), 0);
        assert.equal(await users.logoutEverywhere("42"), 1);
        // Two pools stand for two processes: only the database between them.
        const memory = new MemoryStore();
        const writers = [handle, other].map((each) => {
          const writer = new UserSessions({
            sessions: memory,
            index: { postgres: each.client, prefix },
          });
          return { users: writer, ...login(writer, memory) };
        });
        await Promise.all(Array.from({ length: 200 }, (_, i) => writers[i % 2]!.go()));
        const listed = (await users.list("9")).length;
        console.log(
          `PostgreSQL (${kind.name}): 2 pools, 200 concurrent logins of one user, ${listed} listed`,
        );
        assert.equal(listed, 200);
        assert.deepEqual(writers.flatMap((writer) => writer.errors), []);
      } finally {
        await http.close();
        await other.close();
        await handle.close();
      }
    });
  }

  it("lists every session of 2 processes logging in 100 each of one user at the same instant", async () => {
    const server = await (cluster ??= startPostgres());
    const prefix = `${freshTable()}_`;
    const started = performance.now();
    const startAt = String(Date.now() + 3000);
    await race(["postgres", server.url, prefix, "100", startAt], 2, 100);
    const handle = await POSTGRES_CLIENTS[0]!.connect(server.url);
    const users = new UserSessions({
      sessions: new MemoryStore(),
      index: { postgres: handle.client, prefix },
    });
    try {
      const listed = await users.list("9");
      console.log(
        `PostgreSQL: 2 processes, 200 concurrent logins of one user, ${listed.length} listed (${
          Math.round(performance.now() - started)
        } ms)`,
      );
      assert.equal(listed.length, 200);
      await users.logoutEverywhere("9");
      assert.deepEqual(await users.list("9"), []);
    } finally {
      await handle.close();
    }
  });
});
