import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  FileStore,
  getSession,
  Session,
  SessionInterruptedError,
  withSessions,
} from "../../mod.ts";
import { RecordingLogger, sessionConfig } from "../_config.ts";
import { storeContract } from "./_contract.ts";

const dirs: string[] = [];
function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "tessera-file-"));
  dirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

storeContract("FileStore", () => ({ store: new FileStore({ path: freshDir() }) }));

const HOUR = 3_600_000;

describe("FileStore", () => {
  it("fails at construction for a directory that does not exist, naming it (test_configuration_check)", () => {
    const missing = join(freshDir(), "does-not-exist");
    assert.throws(() => new FileStore({ path: missing }), {
      message: new RegExp(
        `Cannot store sessions in '${
          missing.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
        }' as it is not an existing directory`,
      ),
    });
  });

  it("fails at construction for a path that is a file", () => {
    const file = join(freshDir(), "plain-file");
    writeFileSync(file, "");
    assert.throws(() => new FileStore({ path: file }), /not an existing directory/);
  });

  it("defaults to the OS temp dir and the 'sessionid' prefix (SESSION_FILE_PATH = None)", () => {
    const store = new FileStore();
    assert.equal(store.path, tmpdir());
    assert.equal(store.prefix, "sessionid");
  });

  it("rejects a prefix that could leave the directory", () => {
    assert.throws(() => new FileStore({ path: freshDir(), prefix: "../x" }), TypeError);
  });

  it("names each file prefix + key, with mode 0600, inside the directory", async () => {
    const dir = freshDir();
    const store = new FileStore({ path: dir, prefix: "sid" });
    const key = await store.create({ data: '{"a":1}', expiresAt: Date.now() + HOUR });
    assert.deepEqual(readdirSync(dir), [`sid${key}`]);
    assert.equal(store.fileOf(key), join(dir, `sid${key}`));
    assert.equal(statSync(join(dir, `sid${key}`)).mode & 0o777, 0o600);
  });

  it("builds no path from a key outside the alphabet (test_invalid_key_backslash, _forwardslash)", () => {
    const store = new FileStore({ path: freshDir() });
    for (const key of ["a\\b\\c", "a/b/c", "../../etc/passwd12", "abcdefgh.tmp-1234"]) {
      assert.throws(() => store.fileOf(key), TypeError);
    }
  });

  it("sets each file's modification time to its expiry, so a stat can decide", async () => {
    const dir = freshDir();
    const store = new FileStore({ path: dir });
    const expiresAt = Date.now() + HOUR;
    const key = await store.create({ data: "{}", expiresAt });
    assert.ok(Math.abs(statSync(store.fileOf(key)).mtimeMs - expiresAt) < 1000);
    const later = expiresAt + HOUR;
    await store.save(key, { data: "{}", expiresAt: later });
    assert.ok(Math.abs(statSync(store.fileOf(key)).mtimeMs - later) < 1000);
  });

  it("leaves no temp file behind, after success or failure", async () => {
    const dir = freshDir();
    const store = new FileStore({ path: dir });
    const record = { data: "{}", expiresAt: Date.now() + HOUR };
    const key = await store.create(record);
    await store.save(key, record);
    await assert.rejects(store.save(key, record, true));
    await store.delete(key);
    await assert.rejects(store.save(key, record), SessionInterruptedError);
    // Only the logout's tombstone, which the sweeper removes once it is old.
    assert.deepEqual(readdirSync(dir), [`sessionid${key}.gone`]);
    await new FileStore({ path: dir, staleTempAfter: 0 }).clearExpired();
    assert.deepEqual(readdirSync(dir), []);
  });

  it("reads an empty, truncated, non-JSON or tampered file as no session, logged, never an error", async () => {
    const dir = freshDir();
    const logger = new RecordingLogger();
    const store = new FileStore({ path: dir });
    store.configure({ cookieName: "sessionid", cookieAge: 60, secrets: [], logger });
    const key = "abcdefgh12345678abcdefgh12345678";
    const contents = [
      "",
      "1234",
      "not a number\n{}",
      `${Date.now() + HOUR}\n{"trunc`,
      `${Date.now() + HOUR}\n[]`,
      "\u0000\u0001\u0002",
    ];
    for (const content of contents) {
      writeFileSync(join(dir, `sessionid${key}`), content, { mode: 0o600 });
      const session = new Session(key, sessionConfig(store, { logger }));
      await session.load();
      assert.deepEqual(session.items(), [], JSON.stringify(content));
      assert.equal(session.sessionKey, null);
    }
    assert.equal(logger.warnings.length, contents.length);
    for (const message of logger.warnings) assert.ok(!message.includes(key), message);
  });

  it("enforces expiry on load from the file's own expiry line", async () => {
    const dir = freshDir();
    const store = new FileStore({ path: dir });
    const key = "abcdefgh12345678abcdefgh12345678";
    writeFileSync(join(dir, `sessionid${key}`), `${Date.now() - 1}\n{"a":1}`, { mode: 0o600 });
    assert.equal(await store.load(key), null);
    writeFileSync(join(dir, `sessionid${key}`), `${Date.now() + HOUR}\n{"a":1}`, { mode: 0o600 });
    assert.equal((await store.load(key))?.data, '{"a":1}');
  });

  it("ignores a directory at a session's name with a security warning, without the key", async () => {
    const dir = freshDir();
    const logger = new RecordingLogger();
    const store = new FileStore({ path: dir });
    store.configure({ cookieName: "sessionid", cookieAge: 60, secrets: [], logger });
    const key = "abcdefgh12345678abcdefgh12345678";
    mkdirSync(join(dir, `sessionid${key}`));
    assert.equal(await store.load(key), null);
    assert.equal(await store.exists(key), false);
    assert.equal(logger.warnings.length, 2);
    for (const warning of logger.warnings) {
      assert.match(warning, /was ignored as it is not a regular file owned by this user/);
      assert.ok(!warning.includes(key));
    }
  });

  it("clearExpired() removes expired files only, deciding by stat (test_clearsessions_command)", async () => {
    const dir = freshDir();
    const store = new FileStore({ path: dir });
    const live = await store.create({ data: "{}", expiresAt: Date.now() + HOUR });
    const expired = await store.create({ data: "{}", expiresAt: Date.now() - HOUR });
    const other = join(dir, "not-a-session");
    writeFileSync(other, "keep me");
    assert.equal(await store.clearExpired(), 1);
    assert.deepEqual(readdirSync(dir).sort(), ["not-a-session", `sessionid${live}`].sort());
    assert.equal(await store.exists(expired), false);
    assert.equal(readFileSync(other, "utf8"), "keep me");
  });

  it("clearExpired() leaves alone a directory named like an expired session, naming no key", async () => {
    const dir = freshDir();
    const store = new FileStore({ path: dir });
    const key = "abcdefgh12345678abcdefgh12345678";
    const odd = join(dir, `sessionid${key}`);
    mkdirSync(odd);
    utimesSync(odd, new Date(0), new Date(0));
    const expired = await store.create({ data: "{}", expiresAt: Date.now() - HOUR });
    let removed: number | undefined;
    try {
      removed = await store.clearExpired();
    } catch (error) {
      assert.ok(!String(error).includes(key), "an error of the sweeper names the key");
      throw error;
    }
    assert.equal(removed, 1, "the expired session is removed, the directory is not a session");
    assert.deepEqual(readdirSync(dir), [`sessionid${key}`]);
    assert.equal(await store.exists(expired), false);
  });

  it("clearExpired() keeps a session re-saved after it had expired", async () => {
    const dir = freshDir();
    const store = new FileStore({ path: dir });
    const key = await store.create({ data: "{}", expiresAt: Date.now() - HOUR });
    await store.save(key, { data: '{"back":1}', expiresAt: Date.now() + HOUR });
    assert.equal(await store.clearExpired(), 0);
    assert.equal((await store.load(key))?.data, '{"back":1}');
  });

  it("writes a session that a handler saved with the cookie name as prefix", async () => {
    const dir = freshDir();
    const store = new FileStore({ path: dir });
    const handler = withSessions(async (req) => {
      (await getSession(req)).set("visits", 1);
      return new Response("ok");
    }, { store, cookieName: "myapp" });
    const response = await handler(new Request("http://localhost/"));
    const key = /^myapp=([a-z0-9]{32});/.exec(response.headers.get("set-cookie") ?? "")?.[1];
    assert.ok(key);
    const [expiresLine, data] = readFileSync(join(dir, `myapp${key}`), "utf8").split("\n");
    assert.ok(Number(expiresLine) > Date.now());
    assert.deepEqual(JSON.parse(data!), { visits: 1 });
  });
});

describe("FileStore temp files", () => {
  it("clearExpired() removes temp files older than staleTempAfter and keeps younger ones", async () => {
    const dir = freshDir();
    const key = "abcdefgh12345678abcdefgh12345678";
    writeFileSync(join(dir, `sessionid${key}.tmp-crashed00001`), "half a wri", { mode: 0o600 });
    const patient = new FileStore({ path: dir });
    assert.equal(await patient.clearExpired(), 0);
    assert.equal(readdirSync(dir).length, 1, "a young temp file may belong to a live write");
    const eager = new FileStore({ path: dir, staleTempAfter: 0 });
    assert.equal(await eager.clearExpired(), 0, "temp files are not counted as sessions");
    assert.deepEqual(readdirSync(dir), []);
  });

  it("rejects a negative staleTempAfter", () => {
    assert.throws(() => new FileStore({ path: freshDir(), staleTempAfter: -1 }), RangeError);
  });
});
