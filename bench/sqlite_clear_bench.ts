// How long SqliteStore.clearExpired() stalls the event loop while it sweeps
// a table of expired sessions: the longest gap between two turns of a timer
// that asks for a turn every millisecond, during the sweep. "One statement"
// is the single DELETE that clearExpired() ran before it deleted in batches,
// run on the same table; "batches" is clearExpired() as it is. A batch is
// one transaction, so the longest stall also bounds how long the sweep keeps
// other processes from writing.
//
//   deno run --allow-all bench/sqlite_clear_bench.ts
//   bun bench/sqlite_clear_bench.ts
//
// Options: --rows=<expired rows> (default 200000), --live=<live rows>
// (default 10000), --batch=<rows per batch> (default: the store's own).

import { mkdtempSync, rmSync } from "node:fs";
import process from "node:process";
import { loadavg } from "node:os";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { generateKey } from "../src/_key.ts";
import { SqliteStore } from "../mod.ts";

function option(name: string): number | undefined {
  const args = (globalThis as { Deno?: { args: string[] } }).Deno?.args ??
    (globalThis as unknown as { process: { argv: string[] } }).process.argv
      .slice(2);
  const found = args.find((arg) => arg.startsWith(`--${name}=`));
  return found === undefined ? undefined : Number(found.slice(name.length + 3));
}
const ROWS = option("rows") ?? 200_000;
const LIVE = option("live") ?? 10_000;
const BATCH = option("batch");
const RUNTIME = "Bun" in globalThis ? "Bun" : "Deno";

function djangoDate(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").replace("Z", "000");
}

// A fresh database file with ROWS expired and LIVE live sessions, written in
// one transaction beside the store's own table and index.
function prepare(path: string): void {
  new SqliteStore({ path }).close();
  const db = new DatabaseSync(path);
  const insert = db.prepare("INSERT INTO django_session VALUES (?, ?, ?)");
  const data = JSON.stringify({ _auth_user_id: "42", cart: [1, 2, 3] });
  const now = Date.now();
  db.exec("BEGIN");
  for (let i = 0; i < ROWS; i++) {
    insert.run(
      generateKey(),
      data,
      djangoDate(now - 1000 - (i % 86_400) * 1000),
    );
  }
  for (let i = 0; i < LIVE; i++) {
    insert.run(generateKey(), data, djangoDate(now + 3_600_000));
  }
  db.exec("COMMIT");
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  db.close();
}

interface Result {
  removed: number;
  totalMs: number;
  cpuMs: number;
  longestStallMs: number;
  medianStallMs: number;
  turns: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

// Runs `sweep` while a timer asks for a turn every millisecond, and reports
// the longest time the timer waited.
async function measure(sweep: () => Promise<number>): Promise<Result> {
  let running = true;
  const gaps: number[] = [];
  const ticker = (async () => {
    let last = performance.now();
    while (running) {
      await new Promise((resolve) => setTimeout(resolve, 1));
      const now = performance.now();
      gaps.push(now - last);
      last = now;
    }
  })();
  // Let the timer take its first turn before the sweep starts.
  await new Promise((resolve) => setTimeout(resolve, 5));
  gaps.length = 0;
  const cpu = process.cpuUsage();
  const start = performance.now();
  const removed = await sweep();
  const totalMs = performance.now() - start;
  const used = process.cpuUsage(cpu);
  running = false;
  await ticker;
  return {
    removed,
    totalMs,
    cpuMs: (used.user + used.system) / 1000,
    longestStallMs: Math.max(0, ...gaps),
    medianStallMs: median(gaps),
    turns: gaps.length,
  };
}

const dir = mkdtempSync(join(tmpdir(), "tessera-sqlite-clear-bench-"));
try {
  const oneStatement = join(dir, "one-statement.sqlite3");
  prepare(oneStatement);
  const before = await measure(() => {
    const db = new DatabaseSync(oneStatement, { timeout: 5000 });
    try {
      const statement = db.prepare(
        "DELETE FROM django_session WHERE expire_date < ?",
      );
      return Promise.resolve(
        Number(statement.run(djangoDate(Date.now())).changes),
      );
    } finally {
      db.close();
    }
  });

  const batched = join(dir, "batches.sqlite3");
  prepare(batched);
  const store = new SqliteStore({
    path: batched,
    ...(BATCH === undefined ? {} : { sweepBatchSize: BATCH }),
  });
  let batches = 0;
  const after = await measure(() => store.clearExpired({ onProgress: () => batches++ }));
  store.close();

  const row = (name: string, result: Result, extra: string) =>
    [
      name.padEnd(24),
      String(result.removed).padStart(8),
      result.totalMs.toFixed(0).padStart(9),
      result.cpuMs.toFixed(0).padStart(7),
      result.longestStallMs.toFixed(1).padStart(14),
      result.medianStallMs.toFixed(1).padStart(13),
      String(result.turns).padStart(6),
      `  ${extra}`,
    ].join(" ");
  console.log(
    `SqliteStore.clearExpired() on ${RUNTIME}: ${ROWS} expired and ${LIVE} live rows, a file in ${tmpdir()}, load average ${
      loadavg()[0]!.toFixed(1)
    }`,
  );
  console.log(
    [
      "".padEnd(24),
      "removed".padStart(8),
      "total ms".padStart(9),
      "CPU ms".padStart(7),
      "longest stall".padStart(14),
      "median stall".padStart(13),
      "turns".padStart(6),
    ].join(" "),
  );
  console.log(row("one statement (before)", before, "1 transaction"));
  console.log(row("batches (after)", after, `${batches} transactions`));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
