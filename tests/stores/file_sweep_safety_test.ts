// The sweeper against a directory a real server is writing to. Browsers'
// sessions are saved again on every request while another process sweeps
// back to back, and sessions that just expired are saved again ("revived",
// as by a request that loaded them just before they expired) at the very
// moment the sweeper has judged them expired and is about to remove them.
// Every live session must survive, every save that succeeded must stay, and
// every expired session not revived must go.

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { FileStore, getSession, SessionInterruptedError, withSessions } from "../../mod.ts";
import { Browser } from "../_browser.ts";
import { serve } from "../_server.ts";
import { start } from "../_spawn.ts";

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const HOUR = 3_600_000;
const BROWSERS = 16;
const EXPIRED = 60;
const POOL = 300;
const POOL_SPREAD_MS = 1500;
// The sweeps judge expiry as of this much later than now, so that a file
// written now and expiring within it counts as written that long before it
// expired: its mtime is one the sweeper trusts (later than its ctime by more
// than 2 s), without the test waiting for that.
const SHIFT_MS = 3000;
const LOOP = fileURLToPath(new URL("./_sweep_loop.ts", import.meta.url));

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

describe("FileStore sweeps under a running server", () => {
  it("never removes a session saved during a sweep, and removes every expired one", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tessera-sweep-load-"));
    const control = mkdtempSync(join(tmpdir(), "tessera-sweep-control-"));
    dirs.push(dir, control);
    const stopFile = join(control, "stop");
    const store = new FileStore({ path: dir });
    const server = serve(withSessions(async (req) => {
      const session = await getSession<{ n: number }>(req);
      const n = (session.get("n") ?? 0) + 1;
      session.set("n", n);
      return new Response(String(n));
    }, { store, cookieAge: 3600 }));
    const sweeper = start(LOOP, [dir, stopFile, String(SHIFT_MS)]);
    try {
      while (!sweeper.stdout.startsWith("ready")) {
        assert.equal(sweeper.process.exitCode, null, sweeper.stderr);
        await sleep(10);
      }
      const browsers = Array.from({ length: BROWSERS }, () => new Browser(server.url));
      for (const browser of browsers) assert.equal((await browser.text("/")).body, "1");

      // Expired sessions nobody saves again: half judged by their mtime, half
      // (expired when written) read from their first line.
      const t0 = Date.now();
      const expired: string[] = [];
      for (let i = 0; i < EXPIRED; i++) {
        const expiresAt = i % 2 === 0 ? t0 + SHIFT_MS - 1000 : t0 - HOUR;
        expired.push(await store.create({ data: '{"gone":1}', expiresAt }));
      }
      // Sessions expiring one after the other during the run, each saved
      // again as soon as the sweeper says it judged it expired: the save
      // either wins (the session must survive) or finds it swept
      // (SessionInterruptedError, and it must stay gone).
      const pool = new Set<string>();
      for (let i = 0; i < POOL; i++) {
        const expiresAt = t0 + SHIFT_MS + 200 + Math.floor((i * POOL_SPREAD_MS) / POOL);
        pool.add(await store.create({ data: '{"old":1}', expiresAt }));
      }
      const stopAt = t0 + 200 + POOL_SPREAD_MS + 300;
      const revived: string[] = [];
      const interrupted: string[] = [];
      const saves: Promise<void>[] = [];
      const failures: string[] = [];

      const saveAgain = async (key: string): Promise<void> => {
        try {
          await store.save(key, { data: `{"revived":"${key}"}`, expiresAt: Date.now() + HOUR });
          revived.push(key);
        } catch (error) {
          if (!(error instanceof SessionInterruptedError)) throw error;
          interrupted.push(key);
        }
      };
      let read = 0;
      sweeper.process.stdout!.on("data", () => {
        const lines = sweeper.stdout.split("\n");
        for (; read < lines.length - 1; read++) {
          const key = basename(lines[read]!.slice("judged ".length)).slice("sessionid".length);
          if (lines[read]!.startsWith("judged ") && pool.delete(key)) saves.push(saveAgain(key));
        }
      });
      const browse = async (browser: Browser): Promise<void> => {
        let expected = 2;
        while (Date.now() < stopAt) {
          const { response, body } = await browser.text("/");
          if (response.status !== 200 || body !== String(expected)) {
            failures.push(`status ${response.status}, count ${body}, expected ${expected}`);
            return;
          }
          expected++;
        }
      };
      await Promise.all(browsers.map(browse));
      // A loaded machine may sweep late: give the last revivals a moment.
      while (pool.size > 0 && Date.now() < stopAt + 3000) await sleep(20);
      writeFileSync(stopFile, "");
      assert.equal(await sweeper.exited, 0, sweeper.stderr);
      await Promise.all(saves);
      const sweeps = JSON.parse(sweeper.stdout.trimEnd().split("\n").at(-1)!);
      const final = await store.sweep({ now: Date.now() + SHIFT_MS });

      assert.deepEqual(failures, []);
      assert.equal(sweeps.failed + final.failed, 0, sweeps.errors.concat(final.errors).join());
      assert.ok(revived.length + interrupted.length >= POOL / 2, "too few revivals ran");
      for (const key of revived) {
        assert.equal((await store.load(key))?.data, `{"revived":"${key}"}`, "a revived session");
      }
      for (const key of [...expired, ...interrupted, ...pool]) {
        assert.equal(await store.exists(key), false, "an expired session");
      }
      // Only the browsers' and the revived sessions are left: no temp file,
      // no file taken aside.
      const left = readdirSync(dir);
      assert.equal(
        left.length,
        BROWSERS + revived.length,
        left.filter((name) => name.includes(".")).join(),
      );
      // Each expired file was removed once; a revival that won the race
      // after the take adds the removal of the expired file it replaced.
      const removed = sweeps.removed + final.removed;
      const gone = expired.length + interrupted.length + pool.size;
      assert.ok(removed >= gone && removed <= gone + revived.length, `${removed} for ${gone}`);
    } finally {
      writeFileSync(stopFile, "");
      if (sweeper.process.exitCode === null) {
        await Promise.race([sweeper.exited, sleep(5000)]);
        sweeper.process.kill();
      }
      await server.close();
    }
  });
});
