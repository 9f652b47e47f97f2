// KvStore operations per second on Deno with a local KV file, beside
// SqliteStore on a file in the same directory and MemoryStore, measured in
// the same run. Deno only:
//   deno run --allow-all --unstable-kv bench/kv_bench.ts [directory]
// The directory (default: the OS temp dir) decides the disk; KV commits
// wait for it as SQLite's do.
//
// load   = load(key) of an existing, live session
// save   = save(key, record) of an existing session (an update)
// create = create(record), a new session under a new key
// One operation in flight at a time, so each figure is the cost of one call
// through the store API. Each engine is measured in ROUNDS rounds, in turn,
// so that the machine's drift hits all alike; the median is reported.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  KvStore,
  MemoryStore,
  type SessionStore,
  SqliteStore,
  type StoredSession,
} from "../mod.ts";
import { median } from "./_stats.ts";

const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? 0.4);
const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? 3);
const KEYS = 256;
const OPS = ["load", "save", "create"] as const;
type Op = typeof OPS[number];

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
      cart: [i, i + 1],
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

async function opsPerSecond({ store, keys }: Engine, op: Op): Promise<number> {
  const records = keys.map((_, i) => record(i));
  let i = 0;
  const steps: Record<Op, () => Promise<unknown>> = {
    load: () => store.load(keys[i++ % KEYS]!),
    save: () => {
      const n = i++ % KEYS;
      return store.save(keys[n]!, records[n]!);
    },
    create: () => store.create(records[i++ % KEYS]!),
  };
  const step = steps[op];
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

const dir = mkdtempSync(join(Deno.args[0] ?? tmpdir(), "tessera-kv-bench-"));
const kv = await Deno.openKv(join(dir, "sessions.kv"));
const sqlite = new SqliteStore({ path: join(dir, "sessions.sqlite3") });
try {
  const engines = [
    await prepare("MemoryStore", new MemoryStore({ maxEntries: 1_000_000 })),
    await prepare("SqliteStore (local file)", sqlite),
    await prepare("KvStore (local file)", new KvStore({ kv })),
  ];
  const results = new Map(
    engines.map((e) => [e.name, new Map<Op, number[]>()]),
  );
  for (let round = 0; round < ROUNDS; round++) {
    for (const engine of engines) {
      for (const op of OPS) {
        const figures = results.get(engine.name)!;
        figures.set(op, [
          ...(figures.get(op) ?? []),
          await opsPerSecond(engine, op),
        ]);
      }
    }
  }
  const rows = engines.map(({ name }) => ({
    name,
    ...Object.fromEntries(
      OPS.map((op) => [op, Math.round(median(results.get(name)!.get(op)!))]),
    ),
  })) as ({ name: string } & Record<Op, number>)[];
  const num = (value: number) => value.toLocaleString("en-US").padStart(10);
  console.log(
    `\nOperations per second on deno ${Deno.version.deno}, files in ${dir} (median of ${ROUNDS} rounds of ${SECONDS} s)\n`,
  );
  console.log(`${"engine".padEnd(26)}     load/s     save/s   create/s`);
  for (const { name, load, save, create } of rows) {
    console.log(`${name.padEnd(26)} ${num(load)} ${num(save)} ${num(create)}`);
  }
  console.log(
    `\n${JSON.stringify({ runtime: `deno ${Deno.version.deno}`, rows })}`,
  );
} finally {
  kv.close();
  sqlite.close();
  rmSync(dir, { recursive: true, force: true });
}
