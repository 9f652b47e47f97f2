// FileStore with format: "django": Django's file names and contents, the
// expiry Django's file engine reads (the file's mtime plus cookieAge, or a
// custom _session_expiry), every hardening guarantee of the engine, and a
// sweeper that reads only the files past their age and never removes a live
// session. Real files in a temp directory; Django itself is in
// tests/django_live_file_test.ts.

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { spawn } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  FileStore,
  getSession,
  SessionInterruptedError,
  type StoredSession,
  withSessions,
} from "../../mod.ts";
import { decodeDjangoSession, encodeDjangoSession } from "../../src/stores/_django_format.ts";
import { sweepFiles } from "../../src/stores/_file_sweep.ts";
import { Browser } from "../_browser.ts";
import { RecordingLogger } from "../_config.ts";
import { serve } from "../_server.ts";

const SECRET = "django-insecure-file-format-test-secret";
const COOKIE_AGE = 3600;
const HOUR = 3_600_000;
const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function freshDir(): string {
  const root = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
  const dir = mkdtempSync(join(root, "tessera-djfile-"));
  dirs.push(dir);
  return dir;
}

function djangoStore(dir: string, logger = new RecordingLogger()): FileStore {
  const store = new FileStore({ path: dir, format: "django" });
  store.configure({ cookieName: "sessionid", cookieAge: COOKIE_AGE, secrets: [SECRET], logger });
  return store;
}

/** Writes a session file as Django's file engine does (temp file, rename), saved `ago` ms ago. */
async function djangoWrite(
  dir: string,
  key: string,
  data: Record<string, unknown>,
  ago = 0,
  secret = SECRET,
): Promise<string> {
  const file = join(dir, `sessionid${key}`);
  const temp = `${file}_out_x1y2z3`;
  writeFileSync(temp, await encodeDjangoSession(JSON.stringify(data), [secret]), { mode: 0o600 });
  renameSync(temp, file);
  setSaved(file, ago);
  return file;
}

function setSaved(file: string, ago: number): void {
  const seconds = (Date.now() - ago) / 1000;
  utimesSync(file, seconds, seconds);
}

function djangoSaveSync(file: string, text: string): void {
  const temp = `${file}_out_sync`;
  writeFileSync(temp, text, { mode: 0o600 });
  renameSync(temp, file);
}

// Django's FileSessionStore.save() on each key, from a python3 process:
// open the file without O_CREAT (UpdateError when it is gone), then write a
// temp file and rename it over. Resolves to the keys it saved.
function djangoSaver(dir: string, keys: string[], text: string): Promise<string[]> {
  const script = `
import os, sys, tempfile
d, text = sys.argv[1], sys.argv[2]
for key in sys.argv[3:]:
    name = os.path.join(d, "sessionid" + key)
    try:
        os.close(os.open(name, os.O_WRONLY))
    except FileNotFoundError:
        continue
    fd, temp = tempfile.mkstemp(dir=d, prefix="sessionid" + key + "_out_")
    os.write(fd, text.encode())
    os.close(fd)
    os.rename(temp, name)
    print(key, flush=True)
`;
  return new Promise((resolve, reject) => {
    const child = spawn("python3", ["-c", script, dir, text, ...keys], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
    child.once("error", reject);
    child.once("exit", (code) => {
      if (code === 0) resolve(out.split("\n").filter((line) => line !== ""));
      else reject(new Error(`the Django-style saver exited with ${code}`));
    });
  });
}

function key(n: number): string {
  return `k${String(n).padStart(15, "0")}`;
}

describe('FileStore format: "django"', () => {
  it("refuses another format, and a Django-format store without a secret at withSessions", () => {
    assert.throws(
      () => new FileStore({ path: freshDir(), format: "xml" as "django" }),
      { name: "TypeError", message: /Cannot create a FileStore as 'format' must be "django"/ },
    );
    const store = new FileStore({ path: freshDir(), format: "django" });
    assert.equal(store.format, "django");
    assert.equal(store.authenticatesRecords, true);
    assert.equal(new FileStore({ path: freshDir() }).authenticatesRecords, false);
    assert.throws(
      () => withSessions(() => new Response("ok"), { store }),
      { name: "TypeError", message: /FileStore with format "django" needs 'secret'/ },
    );
  });

  it("a session saved through withSessions is Django's file: its name, bare session_data, 0600, mtime the save time", async () => {
    const dir = freshDir();
    const store = new FileStore({ path: dir, format: "django" });
    assert.equal(store.authenticatesRecords, true, "no signing layer over Django's signature");
    const server = serve(withSessions(async (req) => {
      const session = await getSession(req);
      session.set("_auth_user_id", "42");
      session.set("name", "Zoë");
      return new Response("ok");
    }, { store, secret: [SECRET], cookieName: "shared_sid", cookieAge: COOKIE_AGE }));
    try {
      const before = Date.now();
      const browser = new Browser(server.url);
      assert.equal((await browser.fetch("/")).status, 200);
      const key = browser.cookies.get("shared_sid")!;
      assert.deepEqual(readdirSync(dir), [`shared_sid${key}`]);
      const file = join(dir, `shared_sid${key}`);
      const stats = statSync(file);
      assert.equal(stats.mode & 0o777, 0o600);
      // Not the native format's mtime = expiry, an hour ahead.
      assert.ok(Math.abs(stats.mtimeMs - before) < 5000, `mtime ${stats.mtimeMs - before} ms off`);
      const text = readFileSync(file, "ascii");
      assert.doesNotMatch(text, /\n/, "Django's session_data alone, no expiry line");
      const decoded = await decodeDjangoSession(text, {
        secrets: [SECRET],
        logger: new RecordingLogger(),
      });
      assert.deepEqual(JSON.parse(decoded!.json), { _auth_user_id: "42", name: "Zoë" });
    } finally {
      await server.close();
    }
  });

  it("loads a file Django wrote, and expires it at mtime + cookieAge or at its custom expiry", async () => {
    const dir = freshDir();
    const store = djangoStore(dir);
    await djangoWrite(dir, key(1), { a: 1 }, 10 * 60_000);
    await djangoWrite(dir, key(2), { a: 2 }, HOUR + 1000);
    await djangoWrite(dir, key(3), { a: 3, _session_expiry: 3 * 3600 }, 2 * HOUR);
    await djangoWrite(dir, key(4), { a: 4, _session_expiry: 60 }, 2 * 60_000);
    await djangoWrite(dir, key(5), { a: 5, _session_expiry: -1 }, 0);
    await djangoWrite(dir, key(6), { a: 6, _session_expiry: 0 }, 30 * 60_000);

    const one = await store.load(key(1));
    assert.deepEqual(JSON.parse(one!.data), { a: 1 });
    const saved = statSync(join(dir, `sessionid${key(1)}`)).mtimeMs;
    assert.equal(one!.expiresAt, saved + COOKIE_AGE * 1000);
    assert.equal(await store.load(key(2)), null, "past mtime + cookieAge");
    const three = await store.load(key(3));
    assert.equal(three!.expiresAt, statSync(join(dir, `sessionid${key(3)}`)).mtimeMs + 3 * HOUR);
    assert.equal(await store.load(key(4)), null, "a custom expiry shorter than cookieAge passed");
    assert.equal(await store.load(key(5)), null, "a negative expiry");
    assert.ok((await store.load(key(6))) !== null, "0 (browser close) keeps cookieAge");
  });

  it("refuses a Date expiry on save, and keeps the file as it was", async () => {
    const dir = freshDir();
    const store = djangoStore(dir);
    const key = await store.create({ data: '{"a":1}', expiresAt: Date.now() + HOUR });
    const record: StoredSession = {
      data: JSON.stringify({ a: 2, _session_expiry: new Date(Date.now() + HOUR).toISOString() }),
      expiresAt: Date.now() + HOUR,
    };
    await assert.rejects(store.save(key, record), {
      name: "TypeError",
      message: /Cannot save the session as format "django" keeps only a whole number of seconds/,
    });
    assert.deepEqual(JSON.parse((await store.load(key))!.data), { a: 1 });
    assert.deepEqual(readdirSync(dir), [`sessionid${key}`], "no temp file left");
  });

  it("keeps the hardening: a file of another secret or with mode 0644 loads as nothing, Django's empty placeholder quietly", async () => {
    const dir = freshDir();
    const logger = new RecordingLogger();
    const store = djangoStore(dir, logger);
    await djangoWrite(dir, key(1), { a: 1 }, 0, "another-secret-key");
    assert.equal(await store.load(key(1)), null);
    assert.match(logger.warnings.join("\n"), /SuspiciousSession/);
    const loose = await djangoWrite(dir, key(2), { a: 2 });
    chmodSync(loose, 0o644);
    assert.equal(await store.load(key(2)), null);
    assert.match(logger.warnings.at(-1)!, /mode 0600/);
    assert.equal(await store.exists(key(2)), false);
    // Django's placeholder while it creates a session: empty, its umask's mode.
    writeFileSync(join(dir, `sessionid${key(3)}`), "", { mode: 0o644 });
    const warnings = logger.warnings.length;
    assert.equal(await store.load(key(3)), null);
    assert.equal(await store.exists(key(3)), true, "the key is taken");
    assert.equal(logger.warnings.length, warnings, "a placeholder is no security warning");
    console.log("foreign secret, 0644 file, placeholder: 0 loaded");
  });

  it("a Django save racing a Tessera logout does not bring the session back", async () => {
    const dir = freshDir();
    const store = djangoStore(dir);
    const key = await store.create({ data: '{"a":1}', expiresAt: Date.now() + HOUR });
    const resurrected = await djangoWrite(dir, key, { a: 1 });
    const data = readFileSync(resurrected, "ascii");
    await store.delete(key);
    // Django had opened the file before the logout; its rename lands after.
    writeFileSync(resurrected, data, { mode: 0o600 });
    assert.equal(await store.load(key), null);
    assert.equal(existsSync(resurrected), false, "load() removed it, so Django sees no session");
    writeFileSync(resurrected, data, { mode: 0o600 });
    const report = await store.sweep();
    assert.equal(report.removed, 1);
    assert.equal(existsSync(resurrected), false, "the sweeper removed it too");
    await assert.rejects(
      store.save(key, { data: '{"a":2}', expiresAt: Date.now() + HOUR }),
      SessionInterruptedError,
    );
  });
});

describe('The sweeper in format "django"', () => {
  it("reads only the files past mtime + cookieAge and removes exactly the expired ones", async () => {
    const dir = freshDir();
    const logger = new RecordingLogger();
    const store = djangoStore(dir, logger);
    const live: string[] = [];
    const expired: string[] = [];
    const young = async (n: number, data: Record<string, unknown>, ago: number) =>
      live.push(await djangoWrite(dir, key(n), data, ago));
    await young(1, { a: 1 }, 10 * 60_000);
    await young(2, { a: 2, _session_expiry: 3 * 3600 }, 2 * HOUR); // long custom expiry
    await young(3, { a: 3, _session_expiry: 30 }, 60_000); // short expiry passed, left
    expired.push(await djangoWrite(dir, key(4), { a: 4 }, HOUR + 5000));
    expired.push(await djangoWrite(dir, key(5), { a: 5, _session_expiry: 7200 }, 3 * HOUR));
    expired.push(await djangoWrite(dir, key(6), { a: 6, _session_expiry: -5 }, 2 * HOUR));
    expired.push(await djangoWrite(dir, key(7), { a: 7 }, 2 * HOUR, "another-secret"));
    // Django's placeholder of a create that crashed, an hour and more ago.
    const placeholder = join(dir, `sessionid${key(8)}`);
    writeFileSync(placeholder, "", { mode: 0o755 });
    setSaved(placeholder, 2 * HOUR);
    expired.push(placeholder);
    // Not the engine's: left alone.
    const foreign = await djangoWrite(dir, key(9), { a: 9 }, 5 * HOUR);
    chmodSync(foreign, 0o644);
    writeFileSync(join(dir, "sessionid" + key(10) + "_out_abcd1234"), "x", { mode: 0o600 });

    const read: string[] = [];
    const report = await sweepFiles(
      {
        path: dir,
        prefix: "sessionid",
        tempMark: ".tmp-",
        tombstoneMark: ".gone",
        staleTempAfter: 60_000,
        cookieAge: COOKIE_AGE,
        logger,
        django: true,
      },
      {},
      { afterRead: (file) => void read.push(file) },
    );

    assert.deepEqual(report, { removed: 5, kept: 3, tempRemoved: 0, failed: 0, errors: [] });
    for (const file of live) assert.ok(existsSync(file), file);
    for (const file of expired) assert.equal(existsSync(file), false, file);
    assert.ok(existsSync(foreign));
    assert.deepEqual(
      read.sort(),
      [key(2), key(4), key(5), key(6), key(7)].map((k) => join(dir, `sessionid${k}`)),
    );
    assert.match(logger.warnings.join("\n"), /A session file .* was ignored as it is not/);
    assert.equal(await store.load(key(3)), null, "left on disk, but not a session");
    console.log(`9 files: ${read.length} read, ${report.removed} removed, ${report.kept} kept`);
  });

  it("judges a file by the expiry it claims, signed or not, and a corrupt one by its mtime", async () => {
    const dir = freshDir();
    const store = djangoStore(dir);
    // Another secret, a long custom expiry: no session to load(), and kept
    // by the sweeper until the expiry it claims.
    await djangoWrite(dir, key(1), { a: 1, _session_expiry: 3 * 3600 }, 2 * HOUR, "other");
    const corrupt = join(dir, `sessionid${key(2)}`);
    writeFileSync(corrupt, ".eJzLSM3JyVcozy_KSQEAGgQEXQ:1k:not-zlib", { mode: 0o600 });
    setSaved(corrupt, 2 * HOUR);
    // Django's pre-3.1 format: base64(hash:json).
    const legacy = join(dir, `sessionid${key(3)}`);
    const json = JSON.stringify({ a: 3, _session_expiry: 3 * 3600 });
    writeFileSync(legacy, btoa(`${"0".repeat(40)}:${json}`), { mode: 0o600 });
    setSaved(legacy, 2 * HOUR);
    assert.equal(await store.load(key(1)), null);
    const report = await store.sweep();
    assert.deepEqual({ removed: report.removed, kept: report.kept }, { removed: 1, kept: 2 });
    assert.equal(existsSync(corrupt), false);
  });

  it("never removes a session saved while it runs (at its critical points, then 600 racing saves)", async () => {
    const dir = freshDir();
    const store = djangoStore(dir);
    const target = {
      path: dir,
      prefix: "sessionid",
      tempMark: ".tmp-",
      tombstoneMark: ".gone",
      staleTempAfter: 60_000,
      cookieAge: COOKIE_AGE,
      django: true,
    };
    // A save after the read, before the judgement; a save after the
    // judgement, before the rename aside.
    await djangoWrite(dir, key(1), { a: 1 }, 2 * HOUR);
    await djangoWrite(dir, key(2), { a: 2 }, 2 * HOUR);
    const fresh = await encodeDjangoSession('{"a":"saved"}', [SECRET]);
    const report = await sweepFiles(target, {}, {
      // Saves as Django's engine makes them (temp file, rename), run
      // synchronously at the sweeper's own critical points.
      afterRead: (file) => {
        if (file.endsWith(key(1))) djangoSaveSync(file, fresh);
      },
      beforeTake: (file) => {
        if (file.endsWith(key(2))) djangoSaveSync(file, fresh);
      },
    });
    assert.deepEqual(report.removed, 0);
    assert.deepEqual(JSON.parse((await store.load(key(1)))!.data), { a: "saved" });
    assert.deepEqual(JSON.parse((await store.load(key(2)))!.data), { a: "saved" });

    // At random: rounds of sessions past their age, all saved at once by
    // Tessera (the file system calls run on worker threads, beside the
    // sweeper's) while sweeps run, and by Django's way of saving from a
    // python3 process. Every save that was acknowledged must still load.
    const ROUNDS = 6;
    const PER_ROUND = 100;
    let acknowledged = 0;
    let interrupted = 0;
    let removed = 0;
    let lost = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const keys = Array.from({ length: PER_ROUND }, (_, i) => key(1000 + round * PER_ROUND + i));
      for (const k of keys) await djangoWrite(dir, k, { k }, 2 * HOUR);
      const half = keys.length / 2;
      const tesseraSaves = keys.slice(0, half).map(async (k) => {
        try {
          await store.save(k, { data: JSON.stringify({ k, saved: true }), expiresAt: 0 });
          return k;
        } catch (error) {
          assert.ok(error instanceof SessionInterruptedError, String(error));
          return null;
        }
      });
      const djangoSaves = djangoSaver(dir, keys.slice(half), fresh);
      const sweeps = (async () => {
        for (let i = 0; i < 5; i++) removed += (await store.sweep()).removed;
      })();
      const [saved, djangoSaved] = await Promise.all([
        Promise.all(tesseraSaves),
        djangoSaves,
        sweeps,
      ]);
      const ok = [...saved.filter((k) => k !== null), ...djangoSaved] as string[];
      acknowledged += ok.length;
      interrupted += keys.length - ok.length;
      for (const k of ok) if (await store.load(k) === null) lost++;
    }
    console.log(
      `${ROUNDS * PER_ROUND} saves (half Tessera's, half Django's way) racing ${
        ROUNDS * 5
      } sweeps: ${acknowledged} acknowledged, ${interrupted} interrupted (swept first), ${removed} removed, ${lost} lost`,
    );
    assert.equal(lost, 0);
    assert.ok(acknowledged > 0);
  });
});
