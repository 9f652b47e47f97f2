// SqliteStore.clearExpired() deletes in batches, each its own transaction,
// and lets the event loop run between them. The structure is tested here;
// the wall-clock stall is measured in bench/sqlite_clear_bench.ts.

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { SqliteStore } from "../../mod.ts";
import { generateKey } from "../../src/_key.ts";

const dir = mkdtempSync(join(tmpdir(), "tessera-sqlite-sweep-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
function freshFile(): string {
  return join(dir, `sessions-${++files}.sqlite3`);
}

const HOUR = 3_600_000;

function djangoDate(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").replace("Z", "000");
}

// Rows written in one transaction straight into the file: `expired` rows
// that expired 1, 2, 3... seconds ago (the last one most recently, so that
// the sweep, which follows the expire_date index, reaches it last) and
// `live` rows an hour from now.
function seed(path: string, expired: number, live: number): { expired: string[]; live: string[] } {
  new SqliteStore({ path }).close();
  const db = new DatabaseSync(path);
  const insert = db.prepare("INSERT INTO django_session VALUES (?, ?, ?)");
  const now = Date.now();
  const keys = { expired: [] as string[], live: [] as string[] };
  db.exec("BEGIN");
  for (let i = 0; i < expired; i++) {
    const key = generateKey();
    insert.run(key, "{}", djangoDate(now - (expired - i) * 1000));
    keys.expired.push(key);
  }
  for (let i = 0; i < live; i++) {
    const key = generateKey();
    insert.run(key, "{}", djangoDate(now + HOUR));
    keys.live.push(key);
  }
  db.exec("COMMIT");
  db.close();
  return keys;
}

function rowCount(path: string): number {
  const db = new DatabaseSync(path);
  try {
    return Number(
      (db.prepare("SELECT COUNT(*) AS n FROM django_session").get() as { n: number }).n,
    );
  } finally {
    db.close();
  }
}

describe("SqliteStore.clearExpired() in batches", () => {
  it("deletes 1,000 rows per statement by default, reporting after each batch", async () => {
    const path = freshFile();
    seed(path, 2500, 10);
    const store = new SqliteStore({ path });
    try {
      const progress: number[] = [];
      assert.equal(await store.clearExpired({ onProgress: (n) => progress.push(n) }), 2500);
      assert.deepEqual(progress, [1000, 2000, 2500]);
      assert.equal(rowCount(path), 10);
    } finally {
      store.close();
    }
  });

  it("takes sweepBatchSize rows per statement: only expired rows go, and the count is right", async () => {
    const path = freshFile();
    const keys = seed(path, 1050, 30);
    const store = new SqliteStore({ path, sweepBatchSize: 100 });
    try {
      const progress: number[] = [];
      const removed = await store.clearExpired({ onProgress: (n) => progress.push(n) });
      assert.equal(removed, 1050);
      assert.deepEqual(progress, [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1050]);
      for (const key of keys.live) assert.equal(await store.exists(key), true);
      for (const key of keys.expired) assert.equal(await store.exists(key), false);
      // Nothing left: one statement that deletes nothing.
      progress.length = 0;
      assert.equal(await store.clearExpired({ onProgress: (n) => progress.push(n) }), 0);
      assert.deepEqual(progress, [0]);
    } finally {
      store.close();
    }
  });

  it("lets the event loop run between batches: timers fire during a 20,000-row sweep", async () => {
    const path = freshFile();
    seed(path, 20_000, 0);
    const store = new SqliteStore({ path });
    try {
      let sweeping = true;
      let turns = 0;
      const ticker = (async () => {
        while (sweeping) {
          await new Promise((resolve) => setTimeout(resolve, 0));
          if (sweeping) turns++;
        }
      })();
      let batches = 0;
      const removed = await store.clearExpired({ onProgress: () => batches++ });
      sweeping = false;
      await ticker;
      console.log(
        `SqliteStore: 20000 expired rows swept in ${batches} batches, ${turns} timer turns during the sweep`,
      );
      assert.equal(removed, 20_000);
      assert.equal(batches, 21);
      // A turn between every two batches; the last batch (empty) ends the sweep.
      assert.ok(turns >= batches - 1, `${turns} turns for ${batches} batches`);
    } finally {
      store.close();
    }
  });

  it("a session saved during the sweep, by this process or another connection, stays", async () => {
    const path = freshFile();
    const keys = seed(path, 500, 5);
    const store = new SqliteStore({ path, sweepBatchSize: 100 });
    // Another server on the same file that will not wait for the write lock:
    // its writes succeed only if the sweep does not hold the lock between batches.
    const other = new SqliteStore({ path, busyTimeout: 0 });
    try {
      const refreshed = keys.expired.at(-1)!;
      const renewedElsewhere = keys.expired.at(-2)!;
      let created = "";
      let wroteDuringSweep = false;
      let sweeping = true;
      const writes: Promise<void>[] = [];
      const removed = await store.clearExpired({
        onProgress: (n) => {
          if (n !== 100) return;
          // After the first batch, when the event loop next turns.
          writes.push(
            new Promise<void>((resolve) => setTimeout(resolve, 0)).then(async () => {
              const live = { data: '{"renewed":1}', expiresAt: Date.now() + HOUR };
              await store.save(refreshed, live);
              await other.save(renewedElsewhere, live);
              created = await other.create(live);
              wroteDuringSweep = sweeping;
            }),
          );
        },
      });
      sweeping = false;
      await Promise.all(writes);
      assert.ok(wroteDuringSweep, "the writes waited for the sweep to end");
      assert.equal(removed, 498);
      for (const key of [refreshed, renewedElsewhere, created]) {
        assert.equal((await store.load(key))?.data, '{"renewed":1}');
      }
      for (const key of keys.live) assert.equal(await store.exists(key), true);
      assert.equal(rowCount(path), 5 + 3);
    } finally {
      store.close();
      other.close();
    }
  });

  it("sweep() reports removed and kept, and a dry run deletes nothing", async () => {
    const path = freshFile();
    seed(path, 250, 7);
    const store = new SqliteStore({ path, sweepBatchSize: 100 });
    try {
      const progress: number[] = [];
      const dry = await store.sweep({ dryRun: true, onProgress: (n) => progress.push(n) });
      assert.deepEqual(dry, { removed: 250, kept: 7, tempRemoved: 0, failed: 0, errors: [] });
      assert.deepEqual(progress, [250]);
      assert.equal(rowCount(path), 257);
      // A later instant: the live rows count as expired too.
      assert.equal((await store.sweep({ dryRun: true, now: Date.now() + 2 * HOUR })).removed, 257);
      const report = await store.sweep();
      assert.deepEqual(report, { removed: 250, kept: 7, tempRemoved: 0, failed: 0, errors: [] });
      assert.equal(rowCount(path), 7);
    } finally {
      store.close();
    }
  });

  it("follows the expire_date index in every batch", () => {
    const path = freshFile();
    const store = new SqliteStore({ path });
    const db = new DatabaseSync(path);
    try {
      const plan = db.prepare(
        "EXPLAIN QUERY PLAN DELETE FROM django_session WHERE rowid IN (SELECT rowid FROM django_session WHERE expire_date < ? LIMIT ?)",
      ).all("2030-01-01 00:00:00.000000", 1000).map((row) => (row as { detail: string }).detail);
      assert.match(plan.join("\n"), /USING COVERING INDEX django_session_expire_date_a5c62663/);
    } finally {
      db.close();
      store.close();
    }
  });

  it("sweeps a table made WITHOUT ROWID, naming rows by their key", async () => {
    const path = freshFile();
    const db = new DatabaseSync(path);
    db.exec(
      'CREATE TABLE "django_session" ("session_key" varchar(40) NOT NULL PRIMARY KEY, "session_data" text NOT NULL, "expire_date" datetime NOT NULL) WITHOUT ROWID',
    );
    db.close();
    const store = new SqliteStore({ path, sweepBatchSize: 2 });
    try {
      for (let i = 0; i < 5; i++) await store.create({ data: "{}", expiresAt: Date.now() - 1000 });
      const live = await store.create({ data: "{}", expiresAt: Date.now() + HOUR });
      assert.equal(await store.clearExpired(), 5);
      assert.equal(await store.exists(live), true);
    } finally {
      store.close();
    }
  });

  it("rejects a sweepBatchSize that is not a positive whole number, and bad sweep options", async () => {
    for (const sweepBatchSize of [0, -1, 1.5, Number.NaN, Infinity]) {
      assert.throws(() => new SqliteStore({ path: ":memory:", sweepBatchSize }), {
        name: "RangeError",
        message:
          /^Cannot create a SqliteStore as 'sweepBatchSize' must be a positive whole number of rows: current value is /,
      });
    }
    const store = new SqliteStore({ path: ":memory:" });
    try {
      await assert.rejects(
        store.sweep({ dryRun: "yes" as never }),
        /'dryRun' must be true or false/,
      );
      await assert.rejects(store.clearExpired({ now: Number.NaN }), /'now' must be a number/);
      await assert.rejects(
        store.sweep({ onProgress: 1 as never }),
        /'onProgress' must be a function/,
      );
    } finally {
      store.close();
    }
  });
});
