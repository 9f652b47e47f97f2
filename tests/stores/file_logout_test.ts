// No logout of the file engine is ever undone: not by an update racing it
// (its check that the file exists, then its rename over it), nor by the
// sweeper putting back a live file it had set aside. Each race is run once at
// its critical point, paused by a hook, and then thousands of times at random.

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { FileStore, SessionExistsError, SessionInterruptedError } from "../../mod.ts";
import { setFileStoreInternals } from "../../src/stores/file.ts";
import { sweepFiles, type SweepTarget } from "../../src/stores/_file_sweep.ts";
import { RUNTIME } from "../_server.ts";
import { start } from "../_spawn.ts";

const dirs: string[] = [];
// The stress test runs on tmpfs where there is one: thousands of files a
// second on a loaded machine. (Deno asks for --allow-all under /dev, so the
// tests with a child process stay in the temp dir.)
function freshDir(tmpfs = false): string {
  const root = tmpfs && existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
  const dir = mkdtempSync(join(root, "tessera-logout-"));
  dirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const HOUR = 3_600_000;
const PAIRS = 3000;
const BATCH = 100;
const DELETE_CHILD = fileURLToPath(new URL("./_delete_child.ts", import.meta.url));
const LOOP = fileURLToPath(new URL("./_sweep_loop.ts", import.meta.url));

function target(dir: string): SweepTarget {
  // FileStore's defaults.
  return {
    path: dir,
    prefix: "sessionid",
    tempMark: ".tmp-",
    tombstoneMark: ".gone",
    staleTempAfter: 60_000,
    cookieAge: 60,
  };
}

// A save as FileStore makes it, synchronous, to run inside a sweeper's hook.
function saveNow(file: string, data: string, expiresAt: number): void {
  const temp = `${file}.tmp-testsave0001`;
  writeFileSync(temp, `${expiresAt}\n${data}`, { mode: 0o600 });
  utimesSync(temp, new Date(), new Date(expiresAt));
  renameSync(temp, file);
}

// A logout by another process, run to its end before this returns.
function deleteInChild(dir: string, key: string): void {
  const args = RUNTIME === "deno"
    ? ["run", "--allow-read", "--allow-write", DELETE_CHILD, dir, key]
    : [DELETE_CHILD, dir, key];
  const result = spawnSync(process.execPath, args, { encoding: "utf8", timeout: 30_000 });
  assert.equal(result.status, 0, result.stderr);
}

// As many file system round trips as a save makes before its rename.
async function hops(dir: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await stat(dir);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe("FileStore: a logout is final", () => {
  it("an update paused between its check and its rename while a logout runs fails and leaves no file", async () => {
    const dir = freshDir();
    const store = new FileStore({ path: dir });
    const key = await store.create({ data: '{"user":"ada"}', expiresAt: Date.now() + HOUR });
    let paused = 0;
    setFileStoreInternals(store, {
      async beforeRename() {
        paused++;
        await store.delete(key);
      },
    });
    await assert.rejects(
      store.save(key, { data: '{"user":"ada","n":2}', expiresAt: Date.now() + HOUR }),
      SessionInterruptedError,
    );
    assert.equal(paused, 1);
    assert.equal(await store.load(key), null);
    assert.equal(await store.exists(key), false);
    assert.deepEqual(readdirSync(dir), [`sessionid${key}.gone`], "only the tombstone");
  });

  it("a load between a racing update's rename and its own check finds the logout", async () => {
    const dir = freshDir();
    const store = new FileStore({ path: dir });
    const key = await store.create({ data: '{"user":"ada"}', expiresAt: Date.now() + HOUR });
    await store.delete(key);
    // The racing update's file, renamed into place after the logout, before
    // the update saw the tombstone and removed it again: written, its
    // modification time not yet set to its expiry.
    const file = join(dir, `sessionid${key}`);
    writeFileSync(`${file}.tmp-testsave0002`, `${Date.now() + HOUR}\n{"user":"ada","n":2}`, {
      mode: 0o600,
    });
    renameSync(`${file}.tmp-testsave0002`, file);
    assert.equal(await store.load(key), null);
    assert.equal(await store.exists(key), false);
  });

  it("an update that ran before the logout is removed by it", async () => {
    const dir = freshDir();
    const store = new FileStore({ path: dir });
    const key = await store.create({ data: "{}", expiresAt: Date.now() + HOUR });
    await store.save(key, { data: '{"n":2}', expiresAt: Date.now() + HOUR });
    await store.delete(key);
    assert.equal(await store.load(key), null);
    await assert.rejects(
      store.save(key, { data: "{}", expiresAt: Date.now() + HOUR }),
      SessionInterruptedError,
    );
  });

  it("a key that was logged out is not created again while its tombstone lasts", async () => {
    const dir = freshDir();
    const store = new FileStore({ path: dir });
    const key = await store.create({ data: "{}", expiresAt: Date.now() + HOUR });
    await store.delete(key);
    await assert.rejects(
      store.save(key, { data: "{}", expiresAt: Date.now() + HOUR }, true),
      SessionExistsError,
    );
    assert.equal(await store.exists(key), false);
    // create() picks another key.
    const other = await store.create({ data: "{}", expiresAt: Date.now() + HOUR });
    assert.notEqual(other, key);
  });

  it("the sweeper's restore of a live file, paused while a logout runs, does not bring it back", async () => {
    const dir = freshDir();
    const store = new FileStore({ path: dir });
    const key = await store.create({ data: '{"old":1}', expiresAt: Date.now() - HOUR });
    let restores = 0;
    const expiresAt = Date.now() + HOUR;
    let restoredMtime = NaN;
    const report = await sweepFiles(target(dir), {}, {
      // A save makes the expired session live between the sweeper's look and
      // its take; the logout then lands while the file is set aside.
      beforeTake: (file) => saveNow(file, '{"user":"ada"}', expiresAt),
      beforeRestore: () => {
        restores++;
        deleteInChild(dir, key);
      },
      // Linked back, not yet checked against the tombstone: a load now must
      // see a file whose time is not its expiry, which it checks for a logout.
      afterRestore: (file) => void (restoredMtime = statSync(file).mtimeMs),
    });
    assert.equal(restores, 1);
    assert.ok(Math.abs(restoredMtime - expiresAt) >= 1, "restored unpublished");
    assert.equal(report.failed, 0, report.errors.join());
    assert.equal(await store.load(key), null);
    assert.equal(await store.exists(key), false);
    assert.deepEqual(readdirSync(dir), [`sessionid${key}.gone`], "no session, no aside file");
  });

  it("the sweeper removes a tombstone once older than staleTempAfter, and only then", async () => {
    const dir = freshDir();
    const store = new FileStore({ path: dir });
    const key = await store.create({ data: "{}", expiresAt: Date.now() + HOUR });
    await store.delete(key);
    const tombstone = join(dir, `sessionid${key}.gone`);
    assert.equal(statSync(tombstone).mode & 0o777, 0o600);
    assert.deepEqual(await store.sweep(), {
      removed: 0,
      kept: 0,
      tempRemoved: 0,
      failed: 0,
      errors: [],
    });
    assert.deepEqual(readdirSync(dir), [basename(tombstone)]);
    const eager = new FileStore({ path: dir, staleTempAfter: 0 });
    assert.equal((await eager.sweep()).tempRemoved, 1);
    assert.deepEqual(readdirSync(dir), []);
  });

  it("a file an update left beside the tombstone (its process ended before its undo) does not outlive the tombstone", async () => {
    const dir = freshDir();
    const store = new FileStore({ path: dir, staleTempAfter: 0 });
    const key = await store.create({ data: '{"user":"ada"}', expiresAt: Date.now() + HOUR });
    await store.delete(key);
    saveNow(join(dir, `sessionid${key}`), '{"user":"ada","n":2}', Date.now() + HOUR);
    const report = await store.sweep();
    assert.equal(report.removed, 1, "the file put back after the logout");
    assert.equal(report.tempRemoved, 1, "the tombstone, past staleTempAfter");
    assert.deepEqual(readdirSync(dir), []);
    assert.equal(await store.load(key), null);
  });

  it(`${PAIRS} concurrent save-and-delete pairs: 0 resurrections`, async () => {
    const dir = freshDir(true);
    const store = new FileStore({ path: dir });
    let saved = 0;
    let interrupted = 0;
    let resurrected = 0;
    for (let done = 0; done < PAIRS; done += BATCH) {
      const keys = await Promise.all(
        Array.from(
          { length: BATCH },
          () => store.create({ data: '{"n":1}', expiresAt: Date.now() + HOUR }),
        ),
      );
      await Promise.all(keys.map(async (key) => {
        const save = store.save(key, { data: '{"n":2}', expiresAt: Date.now() + HOUR }).then(
          () => void saved++,
          (error) => {
            if (!(error instanceof SessionInterruptedError)) throw error;
            interrupted++;
          },
        );
        // The logout starts a few file system round trips after the save, so
        // that it lands at every point of the save, its critical one included.
        const logout = hops(dir, Math.floor(Math.random() * 10)).then(() => store.delete(key));
        await Promise.all([save, logout]);
        if (await store.exists(key) || await store.load(key) !== null) resurrected++;
      }));
    }
    const sessions = readdirSync(dir).filter((name) => /^sessionid[a-z0-9]{32}$/.test(name));
    console.log(
      `[logout] FileStore on ${RUNTIME}: ${PAIRS} concurrent save-and-delete pairs (${saved} saves before the logout, ${interrupted} interrupted), ${resurrected} resurrections, ${sessions.length} session files left`,
    );
    assert.equal(saved + interrupted, PAIRS);
    assert.equal(resurrected, 0);
    assert.deepEqual(sessions, []);
  });

  it("a sweep racing saves and logouts of the sessions it sets aside undoes no logout", async () => {
    const dir = freshDir();
    const control = freshDir();
    const stopFile = join(control, "stop");
    const store = new FileStore({ path: dir });
    const COUNT = 300;
    const SHIFT_MS = 3000;
    const t0 = Date.now();
    // Expiring one after the other while the sweeper runs from another
    // process: as soon as it says it judged one expired, the session is saved
    // again (made live) and logged out at once.
    const pool = new Set<string>();
    for (let i = 0; i < COUNT; i++) {
      const expiresAt = t0 + SHIFT_MS + 200 + Math.floor((i * 1500) / COUNT);
      pool.add(await store.create({ data: '{"old":1}', expiresAt }));
    }
    const sweeper = start(LOOP, [dir, stopFile, String(SHIFT_MS)]);
    const raced: string[] = [];
    const races: Promise<void>[] = [];
    try {
      while (!sweeper.stdout.startsWith("ready")) {
        assert.equal(sweeper.process.exitCode, null, sweeper.stderr);
        await sleep(10);
      }
      let read = 0;
      sweeper.process.stdout!.on("data", () => {
        const lines = sweeper.stdout.split("\n");
        for (; read < lines.length - 1; read++) {
          if (!lines[read]!.startsWith("judged ")) continue;
          const key = basename(lines[read]!.slice("judged ".length)).slice("sessionid".length);
          if (!pool.delete(key)) continue;
          raced.push(key);
          races.push((async () => {
            const save = store.save(key, { data: '{"live":1}', expiresAt: Date.now() + HOUR })
              .catch((error) => {
                if (!(error instanceof SessionInterruptedError)) throw error;
              });
            await Promise.all([save, sleep(Math.random() * 4).then(() => store.delete(key))]);
          })());
        }
      });
      while (pool.size > 0 && Date.now() < t0 + SHIFT_MS + 6000) await sleep(20);
      writeFileSync(stopFile, "");
      assert.equal(await sweeper.exited, 0, sweeper.stderr);
      await Promise.all(races);
    } finally {
      writeFileSync(stopFile, "");
      if (sweeper.process.exitCode === null) {
        await Promise.race([sweeper.exited, sleep(5000)]);
        sweeper.process.kill();
      }
    }
    const total = JSON.parse(sweeper.stdout.trimEnd().split("\n").at(-1)!);
    let resurrected = 0;
    for (const key of raced) if (await store.exists(key)) resurrected++;
    console.log(
      `[logout] sweeper on ${RUNTIME}: ${raced.length} sessions saved and logged out as it took them, ${total.restored} restores, ${resurrected} resurrections`,
    );
    assert.equal(total.failed, 0, total.errors.join());
    assert.ok(raced.length >= COUNT / 2, "too few races ran");
    assert.equal(resurrected, 0);
  });
});
