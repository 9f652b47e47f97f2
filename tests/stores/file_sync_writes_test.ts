// FileStore's two ways of saving, `syncWrites: true` (synchronous calls, the
// default on Deno) and `false` (promise-based calls, the default on Bun and
// for a durable store), keep the same contract and the same guarantees: an
// atomic write, mtime = expiry, and no logout ever undone.

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileStore, SessionInterruptedError } from "../../mod.ts";
import { setFileStoreInternals } from "../../src/stores/file.ts";
import { storeContract } from "./_contract.ts";

const dirs: string[] = [];
function freshDir(): string {
  const root = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
  const dir = mkdtempSync(join(root, "tessera-syncwrites-"));
  dirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const HOUR = 3_600_000;
const PAIRS = 2000;

for (const syncWrites of [true, false]) {
  storeContract(`FileStore (syncWrites: ${syncWrites})`, () => ({
    store: new FileStore({ path: freshDir(), syncWrites }),
  }));

  describe(`FileStore, syncWrites: ${syncWrites}`, () => {
    it("writes a 0600 file whose mtime is the expiry", async () => {
      const dir = freshDir();
      const store = new FileStore({ path: dir, syncWrites });
      const expiresAt = Date.now() + HOUR;
      const key = await store.create({ data: '{"n":1}', expiresAt });
      const stats = statSync(store.fileOf(key));
      assert.equal(stats.mode & 0o777, 0o600);
      // Seconds as a double: Deno's promise-based utimes may round the last millisecond.
      assert.ok(
        Math.abs(stats.mtimeMs - expiresAt) <= 1,
        `mtime ${stats.mtimeMs}, expiry ${expiresAt}`,
      );
      assert.deepEqual(await store.load(key), { data: '{"n":1}', expiresAt });
      assert.deepEqual(readdirSync(dir), [`sessionid${key}`], "no temp file left");
    });

    it("an update paused between its check and its rename while a logout runs fails", async () => {
      const dir = freshDir();
      const store = new FileStore({ path: dir, syncWrites });
      const key = await store.create({ data: "{}", expiresAt: Date.now() + HOUR });
      setFileStoreInternals(store, { beforeRename: () => store.delete(key) });
      await assert.rejects(
        store.save(key, { data: '{"n":2}', expiresAt: Date.now() + HOUR }),
        SessionInterruptedError,
      );
      assert.equal(await store.load(key), null);
      assert.deepEqual(readdirSync(dir), [`sessionid${key}.gone`], "only the tombstone");
    });

    it(`${PAIRS} concurrent save/delete pairs bring no session back`, async () => {
      const dir = freshDir();
      const store = new FileStore({ path: dir, syncWrites });
      const keys = await Promise.all(
        Array.from(
          { length: PAIRS },
          () => store.create({ data: "{}", expiresAt: Date.now() + HOUR }),
        ),
      );
      let interrupted = 0;
      await Promise.all(keys.flatMap((key) => [
        store.save(key, { data: '{"n":2}', expiresAt: Date.now() + HOUR }).catch((error) => {
          assert.ok(error instanceof SessionInterruptedError);
          interrupted++;
        }),
        store.delete(key),
      ]));
      let resurrected = 0;
      for (const key of keys) {
        if (await store.load(key) !== null || existsSync(store.fileOf(key))) resurrected++;
      }
      console.log(
        `syncWrites ${syncWrites}: ${PAIRS} pairs, ${interrupted} saves interrupted, ${resurrected} resurrections`,
      );
      assert.equal(resurrected, 0);
      assert.equal(readdirSync(dir).filter((name) => name.includes(".tmp-")).length, 0);
    });
  });
}

describe("FileStore's syncWrites option", () => {
  it("refuses a value that is not a boolean, naming it", () => {
    assert.throws(
      () => new FileStore({ path: freshDir(), syncWrites: "yes" as unknown as boolean }),
      { name: "TypeError", message: /'syncWrites' must be true or false: current value is "yes"/ },
    );
  });
});
