// FileStore.sweep() and clearExpired(): how each file's expiry is judged,
// what is and is not touched, the report, and failures.

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileStore } from "../../mod.ts";
import { sweepFiles, type SweepTarget } from "../../src/stores/_file_sweep.ts";

const dirs: string[] = [];
function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "tessera-sweep-"));
  dirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const HOUR = 3_600_000;
const KEY = "abcdefgh12345678abcdefgh12345678";

function target(dir: string): SweepTarget {
  // FileStore's defaults; ".tmp-" is its temp file mark.
  return {
    path: dir,
    prefix: "sessionid",
    tempMark: ".tmp-",
    tombstoneMark: ".gone",
    staleTempAfter: 60_000,
    cookieAge: 60,
  };
}

function names(dir: string): string[] {
  return readdirSync(dir).sort();
}

// A session file as FileStore writes it, then given an mtime by someone else
// (a copy, `touch`, a restore): its ctime is now, later than that mtime.
function touchedFile(dir: string, name: string, content: string, mtimeMs: number): string {
  const file = join(dir, name);
  writeFileSync(file, content, { mode: 0o600 });
  utimesSync(file, new Date(), new Date(mtimeMs));
  return file;
}

describe("FileStore.sweep()", () => {
  it("reports what it removed and kept, and removes only the expired files", async () => {
    const dir = freshDir();
    const store = new FileStore({ path: dir });
    const live = await store.create({ data: "{}", expiresAt: Date.now() + HOUR });
    await store.create({ data: "{}", expiresAt: Date.now() - HOUR });
    await store.create({ data: "{}", expiresAt: Date.now() - 2 * HOUR });
    assert.deepEqual(await store.sweep(), {
      removed: 2,
      kept: 1,
      tempRemoved: 0,
      failed: 0,
      errors: [],
    });
    assert.deepEqual(names(dir), [`sessionid${live}`]);
  });

  it("dryRun counts the same and removes nothing", async () => {
    const dir = freshDir();
    const store = new FileStore({ path: dir, staleTempAfter: 0 });
    await store.create({ data: "{}", expiresAt: Date.now() + HOUR });
    await store.create({ data: "{}", expiresAt: Date.now() - HOUR });
    writeFileSync(join(dir, `sessionid${KEY}.tmp-crashed00001`), "half", { mode: 0o600 });
    const before = names(dir);
    assert.deepEqual(await store.sweep({ dryRun: true }), {
      removed: 1,
      kept: 1,
      tempRemoved: 1,
      failed: 0,
      errors: [],
    });
    assert.deepEqual(names(dir), before);
    assert.equal(await store.clearExpired({ dryRun: true }), 1);
    assert.deepEqual(names(dir), before);
  });

  it("judges from the file's mtime alone, without reading a file FileStore wrote", async () => {
    const dir = freshDir();
    const store = new FileStore({ path: dir });
    const key = await store.create({ data: "{}", expiresAt: Date.now() + HOUR });
    // The first line now disagrees with the mtime; the mtime, set by
    // FileStore's own write, is what the sweep reads.
    const file = store.fileOf(key);
    const { mtime } = statSync(file);
    writeFileSync(file, `${Date.now() - HOUR}\n{}`, { mode: 0o600 });
    utimesSync(file, new Date(), mtime);
    assert.equal((await store.sweep({ dryRun: true })).kept, 1);
  });

  it("now moves the instant expiries are compared with", async () => {
    const dir = freshDir();
    const store = new FileStore({ path: dir });
    await store.create({ data: "{}", expiresAt: Date.now() + HOUR });
    const late = await store.create({ data: "{}", expiresAt: Date.now() + 3 * HOUR });
    assert.equal(await store.clearExpired({ now: Date.now() + 2 * HOUR }), 1);
    assert.deepEqual(names(dir), [`sessionid${late}`]);
  });

  it("reads the expiry from the first line of a file whose mtime was reset, and keeps a live one", async () => {
    const dir = freshDir();
    const store = new FileStore({ path: dir });
    const liveKey = "live0000live0000live0000live0000";
    const deadKey = "dead0000dead0000dead0000dead0000";
    // Both copied an hour ago: their mtime says nothing of their expiry.
    touchedFile(dir, `sessionid${liveKey}`, `${Date.now() + HOUR}\n{"a":1}`, Date.now() - HOUR);
    touchedFile(dir, `sessionid${deadKey}`, `${Date.now() - 1}\n{"a":1}`, Date.now() - HOUR);
    assert.deepEqual(await store.sweep(), {
      removed: 1,
      kept: 1,
      tempRemoved: 0,
      failed: 0,
      errors: [],
    });
    assert.equal((await store.load(liveKey))?.data, '{"a":1}');
  });

  it("gives a file without a readable expiry cookieAge seconds from its mtime, as Django does", async () => {
    const dir = freshDir();
    const twoHoursAgo = Date.now() - 2 * HOUR;
    for (const [key, content] of [["aaaaaaaa", "not a session"], ["bbbbbbbb", ""]]) {
      touchedFile(dir, `sessionid${key}`, content!, twoHoursAgo);
    }
    const store = new FileStore({ path: dir });
    // The default cookieAge, two weeks: kept.
    assert.equal((await store.sweep({ dryRun: true })).kept, 2);
    // configure() passes withSessions' cookieAge.
    store.configure({ cookieName: "sessionid", cookieAge: 3 * 3600, secrets: [], logger: console });
    assert.equal((await store.sweep({ dryRun: true })).kept, 2);
    store.configure({ cookieName: "sessionid", cookieAge: 3600, secrets: [], logger: console });
    assert.equal((await store.sweep({ dryRun: true })).removed, 2);
    // The option wins over the configured age.
    assert.equal((await store.sweep({ dryRun: true, cookieAge: 3 * 3600 })).kept, 2);
    assert.equal(await store.clearExpired({ cookieAge: 60 }), 2);
    assert.deepEqual(names(dir), []);
  });

  it("touches no name outside prefix + key, nor a directory or link named like a session", async () => {
    const dir = freshDir();
    const old = Date.now() - HOUR;
    const others = [
      "notes.txt",
      `other${KEY}`,
      `sessionid${KEY.toUpperCase()}`,
      "sessionidshort",
      `sessionid${KEY}.bak`,
      `sessionid../${KEY}`.replace("/", "_"),
      `sessionidnot-a-key.tmp-000000000000`,
    ];
    for (const name of others) touchedFile(dir, name, `${old}\n{}`, old);
    mkdirSync(join(dir, `sessionid${KEY}`));
    const target = touchedFile(dir, "target", `${old}\n{}`, old);
    symlinkSync(target, join(dir, "sessionidlinked00"));
    const before = names(dir);
    const store = new FileStore({ path: dir, staleTempAfter: 0 });
    assert.deepEqual(await store.sweep(), {
      removed: 0,
      kept: 0,
      tempRemoved: 0,
      failed: 0,
      errors: [],
    });
    assert.deepEqual(names(dir), before);
  });

  it("uses the cookie name given to configure() as the prefix", async () => {
    const dir = freshDir();
    const old = Date.now() - HOUR;
    touchedFile(dir, `sessionid${KEY}`, `${old}\n{}`, old);
    touchedFile(dir, `myapp${KEY}`, `${old}\n{}`, old);
    const store = new FileStore({ path: dir });
    store.configure({ cookieName: "myapp", cookieAge: 60, secrets: [], logger: console });
    assert.equal(await store.clearExpired(), 1);
    assert.deepEqual(names(dir), [`sessionid${KEY}`]);
  });

  it("calls onProgress with how many entries it checked, last with all of them", async () => {
    const dir = freshDir();
    const store = new FileStore({ path: dir });
    for (let i = 0; i < 20; i++) await store.create({ data: "{}", expiresAt: Date.now() + HOUR });
    writeFileSync(join(dir, "unrelated"), "");
    const seen: number[] = [];
    await store.sweep({ onProgress: (checked) => seen.push(checked) });
    assert.ok(seen.length >= 1);
    assert.equal(seen.at(-1), 21);
    assert.deepEqual(seen, [...seen].sort((a, b) => a - b));
  });

  it("goes on past a file it cannot remove, and reports it without the key", async () => {
    const dir = freshDir();
    // The aside name of a file named at the limit of 255 bytes is too long.
    // FileStore refuses such a prefix, so the sweeper is called directly.
    const prefix = "p".repeat(215);
    const old = Date.now() - HOUR;
    touchedFile(dir, `${prefix}${KEY}`, `${old}\n{}`, old);
    for (const key of ["aaaaaaaa", "bbbbbbbb"]) {
      touchedFile(dir, `${prefix}${key}`, `${old}\n{}`, old);
    }
    const report = await sweepFiles({ ...target(dir), prefix }, {});
    assert.equal(report.removed, 2);
    assert.equal(report.failed, 1);
    assert.equal(report.errors.length, 1);
    assert.match(
      report.errors[0]!,
      /^Cannot remove an expired session file in '.*': ENAMETOOLONG$/,
    );
    assert.ok(!report.errors[0]!.includes(KEY));
    assert.equal(names(dir).length, 1);
  });

  it("rejects when the directory is gone, naming it", async () => {
    const dir = freshDir();
    const store = new FileStore({ path: dir });
    rmSync(dir, { recursive: true });
    await assert.rejects(
      store.sweep(),
      /^Error: Cannot list the session directory in '.*': ENOENT$/,
    );
  });

  it("rejects options of the wrong type", async () => {
    const store = new FileStore({ path: freshDir() });
    const bad: unknown[] = [
      { dryRun: "yes" },
      { onProgress: 1 },
      { now: Number.NaN },
      { cookieAge: -1 },
      { cookieAge: 1.5 },
    ];
    for (const options of bad) {
      await assert.rejects(
        store.sweep(options as never),
        /Cannot sweep as '/,
        JSON.stringify(options),
      );
    }
  });

  it("leaves a session's content untouched when it keeps it", async () => {
    const dir = freshDir();
    const store = new FileStore({ path: dir });
    const key = await store.create({ data: '{"kept":true}', expiresAt: Date.now() + HOUR });
    const before = readFileSync(store.fileOf(key), "utf8");
    await store.sweep();
    assert.equal(readFileSync(store.fileOf(key), "utf8"), before);
  });
});

// A save as FileStore makes it: a temp file with the expiry as its first line
// and its mtime, renamed over the session's name. Synchronous, to run inside
// the sweeper's hooks, between two of its steps.
function saveNow(file: string, data: string, expiresAt: number): void {
  const temp = `${file}.tmp-testsave0001`;
  writeFileSync(temp, `${expiresAt}\n${data}`, { mode: 0o600 });
  utimesSync(temp, new Date(), new Date(expiresAt));
  renameSync(temp, file);
}

describe("FileStore sweep races", () => {
  it("keeps a session saved between the sweeper's look and its take", async () => {
    const dir = freshDir();
    const store = new FileStore({ path: dir });
    const key = await store.create({ data: '{"old":1}', expiresAt: Date.now() - HOUR });
    const report = await sweepFiles(target(dir), {}, {
      beforeTake: (file) => saveNow(file, '{"new":1}', Date.now() + HOUR),
    });
    assert.deepEqual(report, { removed: 0, kept: 1, tempRemoved: 0, failed: 0, errors: [] });
    assert.equal((await store.load(key))?.data, '{"new":1}');
    assert.deepEqual(names(dir), [`sessionid${key}`]);
  });

  it("keeps the newer of two saves that race its take, and never puts back the older", async () => {
    const dir = freshDir();
    const store = new FileStore({ path: dir });
    const key = await store.create({ data: '{"old":1}', expiresAt: Date.now() - HOUR });
    const report = await sweepFiles(target(dir), {}, {
      beforeTake: (file) => saveNow(file, '{"first":1}', Date.now() + HOUR),
      beforeRestore: (file) => saveNow(file, '{"second":1}', Date.now() + 2 * HOUR),
    });
    assert.deepEqual(report, { removed: 0, kept: 1, tempRemoved: 0, failed: 0, errors: [] });
    assert.equal((await store.load(key))?.data, '{"second":1}');
    assert.deepEqual(names(dir), [`sessionid${key}`]);
  });

  it("removes a file that is still the expired one it judged", async () => {
    const dir = freshDir();
    const store = new FileStore({ path: dir });
    await store.create({ data: "{}", expiresAt: Date.now() - HOUR });
    const taken: string[] = [];
    const report = await sweepFiles(target(dir), {}, {
      beforeTake: (file) => taken.push(file),
      beforeRestore: () => assert.fail("nothing to restore"),
    });
    assert.equal(report.removed, 1);
    assert.equal(taken.length, 1);
    assert.deepEqual(names(dir), []);
  });
});
