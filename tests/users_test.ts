// Sessions by user (UserSessions): the "your devices" list, revoking one
// session or all but the current one, and log out everywhere through the
// generation number, on every server-side engine, through real servers;
// and a revocation issued by one process and seen by another.

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { DatabaseSync } from "node:sqlite";
import { fileURLToPath } from "node:url";
import {
  CookieStore,
  JSON_SERIALIZER,
  MemoryStore,
  type RedisUserIndexOptions,
  Session,
  type SessionStore,
  SqliteStore,
  type StoredSession,
  UserSessions,
} from "../mod.ts";
import { RUNTIME, serve } from "./_server.ts";
import { app, Browser, devicesFlow } from "./_users_flow.ts";
import { REDIS_CLIENTS, type RedisServer, startRedis } from "./_redis.ts";
import { COOKIE_SECRET, ENGINES, releaseEngines, SCRATCH } from "./reliability/_engines.ts";

const root = mkdtempSync(join(SCRATCH, "tessera-users-"));
let redis: Promise<RedisServer> | undefined;
after(async () => {
  await releaseEngines();
  if (redis !== undefined) await (await redis).stop();
  rmSync(root, { recursive: true, force: true });
});

interface OpenIndex {
  target: SessionStore | RedisUserIndexOptions;
  close(): Promise<void>;
}

let prefixes = 0;

// A Redis index, native, through the client library `client`.
async function redisIndex(client: string): Promise<OpenIndex> {
  const server = await (redis ??= startRedis());
  const handle = await REDIS_CLIENTS.find((kind) => kind.name === client)!.connect(server.url);
  return {
    target: { redis: handle.client, prefix: `test:users:${++prefixes}:` },
    close: () => handle.close(),
  };
}

// The index of an engine: for SQLite a side table of the same database file,
// for Redis its native index, elsewhere a second store of the same engine.
async function openIndex(name: string, root: string): Promise<OpenIndex> {
  if (name === "SqliteStore") {
    const store = new SqliteStore({
      path: join(root, "store", "sessions.sqlite3"),
      table: "tessera_user_sessions",
    });
    return { target: store, close: () => Promise.resolve(store.close()) };
  }
  if (name.startsWith("RedisStore")) return await redisIndex("node-redis");
  const opened = await ENGINES.find((engine) => engine.name === name)!.open(join(root, "index"));
  return { target: opened.store, close: () => opened.close() };
}

describe("UserSessions on every server-side engine", () => {
  for (const engine of ENGINES) {
    it(`${engine.name}: lists, revokes one, revokes the others, and logs out everywhere`, async () => {
      const dir = join(root, engine.name.replace(/\W+/g, "-"));
      mkdirSync(dir, { recursive: true });
      const sessions = await engine.open(dir);
      const index = await openIndex(engine.name, dir);
      const users = new UserSessions({
        sessions: sessions.store,
        index: index.target,
        metadataKeys: ["ua"],
      });
      const server = serve(app(users, { store: sessions.store, users, secret: COOKIE_SECRET }));
      try {
        await devicesFlow(users, server.url);
        if (engine.name === "SqliteStore") {
          // Django's table is as Django lays it out; the index is beside it.
          const db = new DatabaseSync(join(dir, "store", "sessions.sqlite3"));
          const columns = db.prepare("PRAGMA table_info(django_session)").all()
            .map((row) => (row as { name: string }).name);
          assert.deepEqual(columns, ["session_key", "session_data", "expire_date"]);
          const indexed = db.prepare("SELECT count(*) AS n FROM tessera_user_sessions").get() as {
            n: number;
          };
          assert.ok(indexed.n >= 1);
          db.close();
        }
      } finally {
        await server.close();
        await index.close();
        await sessions.close();
      }
    });
  }
});

describe("the native Redis index, with each client library", () => {
  for (const kind of REDIS_CLIENTS) {
    it(`${kind.name}: the devices flow, and 200 concurrent logins of one user all listed`, async () => {
      const index = await redisIndex(kind.name);
      const store = new MemoryStore();
      const users = new UserSessions({
        sessions: store,
        index: index.target,
        metadataKeys: ["ua"],
      });
      const server = serve(app(users, { store, users }));
      try {
        await devicesFlow(users, server.url);
        // Two UserSessions on one Redis stand for two processes: no queue
        // between them, only Redis's atomic updates.
        const other = new UserSessions({ sessions: store, index: index.target });
        const second = app(other, { store, users: other });
        const first = app(users, { store, users });
        await Promise.all(
          Array.from(
            { length: 200 },
            (_, i) => (i % 2 === 0 ? first : second)(new Request("http://localhost/login?user=9")),
          ),
        );
        const listed = (await users.list("9")).length;
        console.log(`${kind.name}: 200 concurrent logins from two writers, ${listed} listed`);
        assert.equal(listed, 200);
      } finally {
        await server.close();
        await index.close();
      }
    });
  }
});

describe("a store index written by two processes at once", () => {
  it("SqliteStore: two writers on one side table list every session after its next save", async () => {
    const dir = join(root, "two-writers");
    mkdirSync(dir, { recursive: true });
    const path = join(dir, "sessions.sqlite3");
    const store = new SqliteStore({ path });
    // Two connections and two UserSessions: two processes, as far as the
    // index can tell.
    const indexes = [0, 1].map(() => new SqliteStore({ path, table: "tessera_user_sessions" }));
    const apps = indexes.map((index) => {
      const users = new UserSessions({ sessions: store, index });
      return { users, handler: app(users, { store, users }) };
    });
    try {
      const logins = await Promise.all(
        Array.from(
          { length: 100 },
          (_, i) => apps[i % 2]!.handler(new Request("http://localhost/login?user=9")),
        ),
      );
      const after = (await apps[0]!.users.list("9")).length;
      await Promise.all(logins.map((login, i) =>
        apps[i % 2]!.handler(
          new Request("http://localhost/touch", {
            headers: { cookie: login.headers.get("set-cookie")!.split(";")[0]! },
          }),
        )
      ));
      const healed = (await apps[0]!.users.list("9")).length;
      console.log(
        `100 logins from two writers: ${after} listed at once, ${healed} after one save each`,
      );
      assert.ok(healed >= after);
      // Sequential here: the two writers still interleave within a batch.
      for (const [i, login] of logins.entries()) {
        await apps[i % 2]!.handler(
          new Request("http://localhost/touch", {
            headers: { cookie: login.headers.get("set-cookie")!.split(";")[0]! },
          }),
        );
      }
      assert.equal((await apps[0]!.users.list("9")).length, 100);
    } finally {
      store.close();
      for (const index of indexes) index.close();
    }
  });
});

describe("log out everywhere beyond the index", () => {
  const config = (store: SessionStore) => ({
    store,
    cookieAge: 3600,
    expireAtBrowserClose: false,
    serializer: JSON_SERIALIZER,
    logger: console,
  });

  it("ends a session a Django app created (never indexed, never stamped), not one it creates after", async () => {
    const store = new MemoryStore();
    const users = new UserSessions({ sessions: store, index: new MemoryStore() });
    // Written as Django writes it: the user id in the data, nothing else.
    const django = new Session(null, config(store));
    django.set("_auth_user_id", "42");
    await django.save();
    // Django's SESSION_COOKIE_AGE and this cookieAge agree, as they must.
    const handler = app(users, { store, users, cookieAge: 3600 });
    const me = async (key: string) =>
      await (await handler(
        new Request("http://localhost/me", { headers: { cookie: `sessionid=${key}` } }),
      )).text();
    assert.equal(await me(django.sessionKey!), "42");
    assert.deepEqual(await users.list("42"), [], "Django never writes the index");
    await new Promise((resolve) => setTimeout(resolve, 5));
    await users.logoutEverywhere("42");
    assert.equal(await me(django.sessionKey!), "anonymous");
    await new Promise((resolve) => setTimeout(resolve, 5));
    const later = new Session(null, config(store));
    later.set("_auth_user_id", "42");
    await later.save();
    assert.equal(await me(later.sessionKey!), "42", "a Django login after the bump works");
  });

  it("ends signed-cookie sessions, which no store holds", async () => {
    const users = new UserSessions({ sessions: new CookieStore(), index: new MemoryStore() });
    const server = serve(app(users, { store: new CookieStore(), users, secret: COOKIE_SECRET }));
    try {
      const a = new Browser(server.url);
      const b = new Browser(server.url);
      await a.get("/login?user=42");
      await b.get("/login?user=42");
      assert.equal(await a.get("/me"), "42");
      assert.deepEqual(await users.list("42"), [], "a cookie session has no record to list");
      const kept = a.cookie;
      await users.logoutEverywhere("42");
      assert.equal(await a.get("/me"), "anonymous");
      assert.equal(await b.get("/me"), "anonymous");
      // A copy of the cookie kept by an attacker is just as dead.
      a.cookie = kept;
      assert.equal(await a.get("/me"), "anonymous");
    } finally {
      await server.close();
    }
  });
});

describe("UserSessions failures and cost", () => {
  class Failing extends MemoryStore {
    failing = false;
    calls = 0;
    override load(key: string): Promise<StoredSession | null> {
      this.calls++;
      return this.failing ? Promise.reject(new Error("index down")) : super.load(key);
    }
    override save(key: string, record: StoredSession, mustCreate?: boolean): Promise<string> {
      this.calls++;
      return this.failing
        ? Promise.reject(new Error("index down"))
        : super.save(key, record, mustCreate);
    }
  }

  it("fails closed with a logged 500 while the generation cannot be read, and recovers", async () => {
    const store = new MemoryStore();
    const index = new Failing();
    const users = new UserSessions({ sessions: store, index });
    const errors: string[] = [];
    const handler = app(users, {
      store,
      users,
      logger: { warn: () => {}, error: (message) => errors.push(message) },
    });
    const login = await handler(new Request("http://localhost/login?user=42"));
    const cookie = login.headers.get("set-cookie")!.split(";")[0]!;
    const me = () => handler(new Request("http://localhost/me", { headers: { cookie } }));
    // Whether the user was logged out everywhere is unknown: no session.
    index.failing = true;
    const failed = await me();
    assert.equal(failed.status, 500);
    assert.match(errors.at(-1)!, /generation is unreadable/);
    assert.ok(!errors.join("\n").includes(cookie.slice(10)), "no key in the log");
    index.failing = false;
    assert.equal(await (await me()).text(), "42");
  });

  it("logs a failed index write and still answers the login", async () => {
    const store = new MemoryStore();
    const index = new Failing();
    const users = new UserSessions({ sessions: store, index });
    await users.generation("42");
    const errors: string[] = [];
    const handler = app(users, {
      store,
      users,
      logger: { warn: () => {}, error: (message) => errors.push(message) },
    });
    // Fail the index write only: the generation read at login succeeds.
    const originalSave = index.save.bind(index);
    index.save = () => Promise.reject(new Error("index down"));
    const login = await handler(new Request("http://localhost/login?user=42"));
    assert.equal(login.status, 200);
    assert.equal(await login.text(), "42");
    assert.match(errors.join("\n"), /Cannot index the session under its user/);
    index.save = originalSave;
    const cookie = login.headers.get("set-cookie")!.split(";")[0]!;
    assert.equal(
      await (await handler(new Request("http://localhost/me", { headers: { cookie } }))).text(),
      "42",
    );
  });

  it("adds no store call to any request when it is off", async () => {
    const index = new Failing();
    // The UserSessions exists but is not given to withSessions.
    new UserSessions({ sessions: new MemoryStore(), index });
    const store = new MemoryStore();
    const handler = app(undefined as never, { store });
    await handler(new Request("http://localhost/me"));
    assert.equal(index.calls, 0);
  });

  it("refuses an index that is the session store itself", () => {
    const store = new MemoryStore();
    assert.throws(() => new UserSessions({ sessions: store, index: store }), {
      name: "TypeError",
      message: /'index' must be a store of its own/,
    });
  });

  it("drops expired sessions from the list", async () => {
    const store = new MemoryStore();
    const users = new UserSessions({ sessions: store, index: new MemoryStore() });
    const handler = app(users, { store, users, cookieAge: 1 });
    await handler(new Request("http://localhost/login?user=42"));
    assert.equal((await users.list("42")).length, 1);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    assert.deepEqual(await users.list("42"), []);
  });

  it("lists every device of 50 concurrent logins of one user", async () => {
    const store = new MemoryStore();
    const users = new UserSessions({ sessions: store, index: new MemoryStore() });
    const handler = app(users, { store, users });
    const logins = await Promise.all(
      Array.from({ length: 50 }, () => handler(new Request("http://localhost/login?user=42"))),
    );
    const listed = (await users.list("42")).length;
    console.log(`50 concurrent logins of one user: ${listed} listed`);
    assert.equal(listed, 50);
    assert.equal(new Set(logins.map((r) => r.headers.get("set-cookie"))).size, 50);
  });
});

describe("a revocation issued by one process, seen by another", () => {
  const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), "_users_server.ts");
  const children: ChildProcess[] = [];
  after(() => {
    for (const child of children) child.stdin!.end();
  });

  async function startServer(database: string): Promise<string> {
    const args = RUNTIME === "deno" ? ["run", "--allow-all", SCRIPT, database] : [SCRIPT, database];
    const child = spawn(process.execPath, args, { stdio: ["pipe", "pipe", "inherit"] });
    children.push(child);
    const port = await new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout!.on("data", (chunk) => {
        out += chunk.toString();
        if (out.includes("\n")) resolve(out.split("\n")[0]!.trim());
      });
      child.once("exit", (code) => reject(new Error(`the server exited with ${code}`)));
    });
    return `http://127.0.0.1:${port}`;
  }

  it("ends the session on both SQLite server processes, for revoke() and logoutEverywhere()", async () => {
    const database = join(root, "shared.sqlite3");
    const [one, two] = await Promise.all([startServer(database), startServer(database)]);
    // The "your devices" page runs in this third process.
    const store = new SqliteStore({ path: database });
    const index = new SqliteStore({ path: database, table: "tessera_user_sessions" });
    const users = new UserSessions({ sessions: store, index, metadataKeys: ["ua"] });
    try {
      const phone = new Browser(one);
      await phone.get("/login?user=42&ua=Phone");
      const laptop = new Browser(two);
      await laptop.get("/login?user=42&ua=Laptop");
      // Either process serves either session.
      assert.equal(await new Browser(two).get("/me"), "anonymous");
      const onTwo = Object.assign(new Browser(two), { cookie: phone.cookie });
      assert.equal(await onTwo.get("/me"), "42");
      const devices = await users.list("42");
      assert.deepEqual(devices.map((d) => d.metadata.ua).sort(), ["Laptop", "Phone"]);
      await users.revoke("42", devices.find((d) => d.metadata.ua === "Phone")!.id);
      assert.equal(await phone.get("/me"), "anonymous");
      assert.equal(
        await Object.assign(new Browser(two), { cookie: onTwo.cookie }).get("/me"),
        "anonymous",
      );
      assert.equal(await laptop.get("/me"), "42");
      const copy = Object.assign(new Browser(one), { cookie: laptop.cookie });
      await users.logoutEverywhere("42");
      assert.equal(await laptop.get("/me"), "anonymous");
      assert.equal(await copy.get("/me"), "anonymous");
      console.log("2 server processes: revoke() and logoutEverywhere() seen by both");
    } finally {
      store.close();
      index.close();
    }
  });
});
