// The file engine builds, and its sweeper removes, only names of its own
// form: a non-empty prefix, a key, and the engine's temp, aside or tombstone
// suffix, all within a file name's 255 bytes. Options that would break either
// rule are refused when withSessions(...) runs.

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileStore, getSession, withSessions } from "../../mod.ts";
import { sweepFiles } from "../../src/stores/_file_sweep.ts";

const dirs: string[] = [];
function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "tessera-names-"));
  dirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const HOUR = 3_600_000;
const handler = () => new Response("ok");
// prefix + a 40-character key + the longest suffix (".tmp-" and 24) = 255.
const LONGEST_PREFIX = 255 - 40 - 29;

describe("FileStore names", () => {
  it("withSessions refuses a FileStore with an empty prefix", () => {
    const path = freshDir();
    assert.throws(() => withSessions(handler, { store: new FileStore({ path, prefix: "" }) }), {
      name: "TypeError",
      message:
        `Cannot create a FileStore as 'prefix' must not be empty, as the sweeper removes only files named prefix + key: current value is ""`,
    });
  });

  it("configure() refuses a cookie name that gives an empty prefix", () => {
    const store = new FileStore({ path: freshDir() });
    assert.throws(
      () => store.configure({ cookieName: "", cookieAge: 60, secrets: [], logger: console }),
      {
        name: "TypeError",
        message: /'cookieName' as the session file prefix .* must not be empty/,
      },
    );
  });

  it("withSessions refuses a cookie name too long for a file name, with the limit", () => {
    const path = freshDir();
    const cookieName = "c".repeat(LONGEST_PREFIX + 1);
    assert.throws(() => withSessions(handler, { store: new FileStore({ path }), cookieName }), {
      name: "RangeError",
      message:
        `Cannot use 'cookieName' as the session file prefix as it must be at most ${LONGEST_PREFIX} bytes, so that the longest file name the engine builds (the prefix, a 40-character key and a 29-byte suffix) fits in 255 bytes: current value is ${
          LONGEST_PREFIX + 1
        } bytes`,
    });
    // The default store too, in the temp dir.
    assert.throws(() => withSessions(handler, { cookieName }), /fits in 255 bytes/);
    // A prefix of the store's own wins over the cookie name, which may then be long.
    withSessions(handler, { store: new FileStore({ path, prefix: "sid" }), cookieName });
  });

  it("withSessions refuses a prefix too long for a file name, with the limit", () => {
    const path = freshDir();
    assert.throws(
      () =>
        withSessions(handler, {
          store: new FileStore({ path, prefix: "p".repeat(LONGEST_PREFIX + 1) }),
        }),
      { name: "RangeError", message: /'prefix' must be at most 186 bytes.*fits in 255 bytes/ },
    );
  });

  it("a prefix at the limit stores, updates, deletes and sweeps a 40-character key", async () => {
    const dir = freshDir();
    const prefix = "p".repeat(LONGEST_PREFIX);
    const store = new FileStore({ path: dir, prefix, staleTempAfter: 0 });
    const key = "k".repeat(40);
    await store.save(key, { data: "{}", expiresAt: Date.now() - HOUR }, true);
    await store.save(key, { data: "{}", expiresAt: Date.now() - HOUR });
    // The sweep takes the expired file aside under a longer name still.
    assert.equal((await store.sweep()).removed, 1);
    await store.save(key.slice(1) + "j", { data: "{}", expiresAt: Date.now() + HOUR }, true);
    await store.delete(key.slice(1) + "j");
    assert.deepEqual(await store.sweep(), {
      removed: 0,
      kept: 0,
      tempRemoved: 1,
      failed: 0,
      errors: [],
    });
    assert.deepEqual(readdirSync(dir), []);
  });

  it("a cookie name with characters a prefix option may not hold still names files", async () => {
    const dir = freshDir();
    const store = new FileStore({ path: dir });
    const wrapped = withSessions(async (req) => {
      (await getSession(req)).set("n", 1);
      return new Response("ok");
    }, { store, cookieName: "my.app!" });
    const response = await wrapped(new Request("http://localhost/"));
    const key = /^my\.app!=([a-z0-9]{32});/.exec(response.headers.get("set-cookie") ?? "")?.[1];
    assert.ok(key);
    assert.deepEqual(readdirSync(dir), [`my.app!${key}`]);
  });

  it("the sweeper refuses an empty prefix", async () => {
    const dir = freshDir();
    // Another program's file in the temp dir, named like a key.
    writeFileSync(join(dir, "tmpk3j2l1x8"), "theirs", { mode: 0o600 });
    await assert.rejects(
      sweepFiles({
        path: dir,
        prefix: "",
        tempMark: ".tmp-",
        tombstoneMark: ".gone",
        staleTempAfter: 0,
        cookieAge: 0,
      }),
      { name: "TypeError", message: /prefix must not be empty/ },
    );
    assert.deepEqual(readdirSync(dir), ["tmpk3j2l1x8"]);
  });

  it("the sweeper removes no name beyond the engine's own suffixes", async () => {
    const dir = freshDir();
    const key = "abcdefgh12345678abcdefgh12345678";
    const old = new Date(Date.now() - HOUR);
    const others = [
      `sessionid${key}.tmp-`, // no tail
      `sessionid${key}.tmp-short`, // a tail shorter than any the engine writes
      `sessionid${key}.tmp-${"a".repeat(25)}`, // longer
      `sessionid${key}.tmp-ABCDEFGHIJKL`, // not the key alphabet
      `sessionid${key}.tmp-abcdefghijkl.bak`,
      `sessionid${key}.gone.bak`,
      `sessionid${key}.gonex`,
      `sessionidBAD.gone`,
      `sessionid.gone`,
    ];
    for (const name of others) {
      writeFileSync(join(dir, name), "0\n{}", { mode: 0o600 });
      utimesSync(join(dir, name), old, old);
    }
    const ours = [`sessionid${key}.tmp-abcdefghijkl`, `sessionid${key}.gone`];
    for (const name of ours) writeFileSync(join(dir, name), "", { mode: 0o600 });
    const store = new FileStore({ path: dir, staleTempAfter: 0 });
    assert.equal((await store.sweep()).tempRemoved, 2);
    assert.deepEqual(readdirSync(dir).sort(), others.sort());
  });
});
