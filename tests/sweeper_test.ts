import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  FileStore,
  type Logger,
  MemoryStore,
  type SessionStore,
  SqliteStore,
  startSweeper,
} from "../mod.ts";
import { run } from "./_spawn.ts";

const root = mkdtempSync(join(tmpdir(), "tessera-sweeper-"));
after(() => rmSync(root, { recursive: true, force: true }));
// The sweeper's timers hold no process open; this interval stands in for
// the server that, in real use, keeps the process alive between sweeps.
const keepAlive = setInterval(() => {}, 1000);
after(() => clearInterval(keepAlive));

const HOUR = 3_600_000;

function nextSweep(store: SessionStore, options: { interval: number }) {
  return new Promise<{ removed: number; stop: () => Promise<void> }>((resolve) => {
    const sweeper = startSweeper(store, {
      ...options,
      jitter: 0,
      onSweep: (removed) => resolve({ removed, stop: () => sweeper.stop() }),
    });
  });
}

async function fill(store: SessionStore): Promise<{ live: string[]; expired: string[] }> {
  const live = ["livekey000000001", "livekey000000002"];
  const expired = ["oldkey0000000001", "oldkey0000000002", "oldkey0000000003"];
  for (const key of live) await store.save(key, { data: "{}", expiresAt: Date.now() + HOUR }, true);
  for (const key of expired) {
    await store.save(key, { data: "{}", expiresAt: Date.now() - HOUR }, true);
  }
  return { live, expired };
}

describe("startSweeper()", () => {
  const engines: [string, () => SessionStore][] = [
    ["FileStore", () => new FileStore({ path: mkdtempSync(join(root, "files-")) })],
    ["SqliteStore", () => new SqliteStore({ path: join(mkdtempSync(join(root, "db-")), "s.db") })],
  ];
  for (const [name, open] of engines) {
    it(`removes expired sessions of a ${name} on schedule and keeps the live ones`, async () => {
      const store = open();
      const { live, expired } = await fill(store);
      const { removed, stop } = await nextSweep(store, { interval: 0.05 });
      await stop();
      assert.equal(removed, 3);
      for (const key of expired) assert.equal(await store.exists(key), false);
      for (const key of live) assert.notEqual(await store.load(key), null);
      (store as { close?: () => void }).close?.();
    });
  }

  it("never runs two sweeps of one store at once, even from two sweepers", async () => {
    let running = 0;
    let most = 0;
    let sweeps = 0;
    const store = new MemoryStore();
    const slow: SessionStore = Object.assign(Object.create(store), {
      async clearExpired() {
        running++;
        most = Math.max(most, running);
        await new Promise((resolve) => setTimeout(resolve, 30));
        running--;
        sweeps++;
        return 0;
      },
    });
    const first = startSweeper(slow, { interval: 0.005, jitter: 0 });
    const second = startSweeper(slow, { interval: 0.005, jitter: 0 });
    while (sweeps < 6) await new Promise((resolve) => setTimeout(resolve, 10));
    await Promise.all([first.stop(), second.stop()]);
    assert.equal(most, 1);
    assert.equal(running, 0, "stop() waited for the sweep that was running");
  });

  it("logs a failed sweep, never throws it, and sweeps again next time", async () => {
    const errors: string[] = [];
    const logger: Logger = { warn: () => {}, error: (message) => void errors.push(message) };
    let calls = 0;
    const failing: SessionStore = Object.assign(Object.create(new MemoryStore()), {
      clearExpired() {
        calls++;
        return calls === 1 ? Promise.reject(new Error("disk on fire")) : Promise.resolve(7);
      },
    });
    const removed = await new Promise<number>((resolve) => {
      const sweeper = startSweeper(failing, {
        interval: 0.01,
        jitter: 0,
        logger,
        onSweep: (count) => void sweeper.stop().then(() => resolve(count)),
      });
    });
    assert.equal(removed, 7);
    assert.deepEqual(errors, ["Cannot sweep the expired sessions; the next sweep will try again"]);
  });

  it("starts no sweep after stop()", async () => {
    let calls = 0;
    const counting: SessionStore = Object.assign(Object.create(new MemoryStore()), {
      clearExpired: () => Promise.resolve(calls++),
    });
    const sweeper = startSweeper(counting, { interval: 0.02, jitter: 0 });
    await sweeper.stop();
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(calls, 0);
  });

  it("does not keep the process alive: a script that returns exits after its sweep", async () => {
    const dir = mkdtempSync(join(root, "child-"));
    const result = await run(
      join(import.meta.dirname!, "fixtures", "sweeper_child.ts"),
      [dir],
      20_000,
    );
    assert.equal(result.stderr, "");
    assert.equal(result.stdout, "swept 1\nreturning\n");
    assert.equal(result.code, 0);
  });

  it("refuses an interval or a jitter it cannot use", () => {
    const store = new MemoryStore();
    for (const interval of [0, -1, Infinity, NaN]) {
      assert.throws(() => startSweeper(store, { interval }), {
        name: "RangeError",
        message: /'interval' must be a positive number of seconds/,
      });
    }
    for (const jitter of [-0.1, 1.5]) {
      assert.throws(() => startSweeper(store, { jitter }), {
        name: "RangeError",
        message: /'jitter' must be a number from 0 to 1/,
      });
    }
    assert.throws(() => startSweeper({} as SessionStore), { name: "TypeError" });
  });
});
