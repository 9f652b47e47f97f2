// Store operations per second, per engine, against MemoryStore measured in
// the same run. Runs under Deno and Bun:
//   deno run --allow-all bench/stores_bench.ts
//   bun bench/stores_bench.ts
// (`npm run bench:stores` runs both.) Starts its own redis-server and
// PostgreSQL cluster on free 127.0.0.1 ports, like the tests, and stops them.
//
// read  = load(key) of an existing, live session
// write = save(key, record) of an existing session (an update)
// One operation in flight at a time, so each figure is the cost of one call
// through the store API. Each engine is measured in ROUNDS rounds, taken in
// turn with the baseline so that the machine's drift hits all alike; the
// median of the rounds is reported.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CachedStore,
  FileStore,
  MemoryStore,
  PostgresStore,
  RedisStore,
  type SessionStore,
  SqliteStore,
  type StoredSession,
} from "../mod.ts";
import { POSTGRES_CLIENTS, startPostgres } from "../tests/_postgres.ts";
import { REDIS_CLIENTS, startRedis } from "../tests/_redis.ts";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 0.4);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const KEYS = 256;
// Django's SECRET_KEY, for the rows in Django's format.
const SECRET = "stores-bench-secret-0123456789abcdefghijklmnopqrstu";
const RUNTIME = "Bun" in globalThis ? `bun ${process.versions.bun}` : `deno ${Deno.version.deno}`;

interface Engine {
  name: string;
  store: SessionStore;
  keys: string[];
}

function record(i: number): StoredSession {
  // A typical small session: a user id, a CSRF token, a cart.
  return {
    data: JSON.stringify({
      _auth_user_id: String(i),
      csrf: "x".repeat(32),
      cart: [i, i + 1, i + 2],
    }),
    expiresAt: Date.now() + 3_600_000,
  };
}

async function prepare(name: string, store: SessionStore): Promise<Engine> {
  const keys: string[] = [];
  for (let i = 0; i < KEYS; i++) keys.push(await store.create(record(i)));
  // Check each engine's answers before timing it.
  const loaded = await store.load(keys[7]!);
  if (loaded === null || JSON.parse(loaded.data)._auth_user_id !== "7") {
    throw new Error(`Invalid output from ${name}`);
  }
  return { name, store, keys };
}

async function opsPerSecond(engine: Engine, op: "read" | "write"): Promise<number> {
  const { store, keys } = engine;
  const records = keys.map((_, i) => record(i));
  let i = 0;
  const step = op === "read" ? () => store.load(keys[i++ % KEYS]!) : () => {
    const n = i++ % KEYS;
    return store.save(keys[n]!, records[n]!);
  };
  const warmEnd = performance.now() + 50;
  while (performance.now() < warmEnd) await step();
  let count = 0;
  const start = performance.now();
  const end = start + SECONDS * 1000;
  let now = start;
  while (now < end) {
    for (let j = 0; j < 16; j++) await step();
    count += 16;
    now = performance.now();
  }
  return count / ((now - start) / 1000);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const dir = mkdtempSync(join(tmpdir(), "tessera-bench-"));
const redis = await startRedis();
const postgresServer = await startPostgres();
const closers: (() => unknown)[] = [];
try {
  const sqlite = (file: string) => {
    const store = new SqliteStore({ path: join(dir, file) });
    closers.push(() => store.close());
    return store;
  };
  const engines: Engine[] = [await prepare("MemoryStore", new MemoryStore())];
  engines.push(await prepare("FileStore", new FileStore({ path: dir })));
  engines.push(await prepare("SqliteStore", sqlite("bench.sqlite3")));
  const clients = [];
  for (const kind of REDIS_CLIENTS) {
    const handle = await kind.connect(redis.url);
    closers.push(() => handle.close());
    clients.push(handle);
    engines.push(
      await prepare(`RedisStore (${kind.name})`, new RedisStore({ client: handle.client })),
    );
  }
  const pg = await POSTGRES_CLIENTS[0]!.connect(postgresServer.url);
  closers.push(() => pg.close());
  const django = <T extends SessionStore>(store: T): T => {
    store.configure?.({
      cookieName: "sessionid",
      cookieAge: 3600,
      secrets: [SECRET],
      logger: console,
    });
    return store;
  };
  engines.push(
    await prepare(
      `PostgresStore (${POSTGRES_CLIENTS[0]!.name})`,
      new PostgresStore({ client: pg.client, table: "bench_native" }),
    ),
  );
  engines.push(
    await prepare(
      `PostgresStore, format "django" (${POSTGRES_CLIENTS[0]!.name})`,
      django(new PostgresStore({ client: pg.client, table: "bench_django", format: "django" })),
    ),
  );
  engines.push(
    await prepare(
      "CachedStore (Redis over Postgres, django)",
      django(
        new CachedStore(
          new RedisStore({ client: clients[0]!.client, prefix: "tessera.bench.cached:" }),
          new PostgresStore({ client: pg.client, table: "bench_cached", format: "django" }),
        ),
      ),
    ),
  );
  engines.push(
    await prepare(
      "CachedStore (Memory over Sqlite)",
      new CachedStore(new MemoryStore({ maxEntries: KEYS * 2 }), sqlite("cached1.sqlite3")),
    ),
  );
  engines.push(
    await prepare(
      `CachedStore (Redis over Sqlite, ${REDIS_CLIENTS[0]!.name})`,
      new CachedStore(
        new RedisStore({
          client: clients[0]!.client,
          prefix: "django.contrib.sessions.cached_db",
        }),
        sqlite("cached2.sqlite3"),
      ),
    ),
  );

  const results = new Map<string, { read: number[]; write: number[] }>();
  for (const engine of engines) results.set(engine.name, { read: [], write: [] });
  for (let round = 0; round < ROUNDS; round++) {
    for (const engine of engines) {
      for (const op of ["read", "write"] as const) {
        results.get(engine.name)![op].push(await opsPerSecond(engine, op));
      }
    }
  }

  const base = results.get("MemoryStore")!;
  const baseRead = median(base.read);
  const baseWrite = median(base.write);
  const rows = engines.map(({ name }) => {
    const r = results.get(name)!;
    const read = median(r.read);
    const write = median(r.write);
    return { name, read, write, readRatio: read / baseRead, writeRatio: write / baseWrite };
  });
  const pad = (text: string, width: number) => text.padEnd(width);
  const num = (value: number) => Math.round(value).toLocaleString("en-US").padStart(10);
  const ratio = (value: number) => value.toFixed(4).padStart(8);
  console.log(
    `\nStore operations per second on ${RUNTIME} (median of ${ROUNDS} rounds of ${SECONDS} s; ratio = engine / MemoryStore)\n`,
  );
  console.log(`${pad("engine", 46)}     read/s    ratio    write/s    ratio`);
  for (const row of rows) {
    console.log(
      `${pad(row.name, 46)} ${num(row.read)} ${ratio(row.readRatio)} ${num(row.write)} ${
        ratio(row.writeRatio)
      }`,
    );
  }
  console.log(`\n${JSON.stringify({ runtime: RUNTIME, seconds: SECONDS, rounds: ROUNDS, rows })}`);
} finally {
  for (const close of closers) await close();
  await redis.stop();
  await postgresServer.destroy();
  rmSync(dir, { recursive: true, force: true });
}
