// Storage faults on real file systems: a tmpfs filled to the last page, and a
// read-only bind mount. A save that cannot be written must answer 500 with a
// logged error, never a 2xx with the write lost; the previous version of the
// session stays intact and readable, and service comes back with the space.

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  closeSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { inspect } from "node:util";
import { FileStore, getSession, withSessions } from "../../mod.ts";
import { Browser } from "../_browser.ts";
import { RecordingLogger } from "../_config.ts";
import { RUNTIME, serve, type TestServer } from "../_server.ts";
import { Mount } from "./_mount.ts";

const mounts: Mount[] = [];
const servers: TestServer[] = [];
after(async () => {
  for (const server of servers) await server.close();
  for (const mount of mounts) mount.unmount();
});

const SESSION_FILE = /^sessionid[a-z0-9]{32}$/;

/** A server whose `/set?v=` stores v and whose `/read` answers it. */
function start(store: FileStore): { browser: Browser; logger: RecordingLogger } {
  const logger = new RecordingLogger();
  const server = serve(withSessions(async (req) => {
    const url = new URL(req.url);
    const session = await getSession<{ v: string }>(req);
    if (url.pathname === "/set") session.set("v", url.searchParams.get("v") ?? "");
    if (url.pathname === "/logout") await session.flush();
    return new Response(session.get("v") ?? "");
  }, { store, logger }));
  servers.push(server);
  return { browser: new Browser(server.url), logger };
}

/** Writes to `file` until the file system has not one byte left. */
function fill(file: string): number {
  const fd = openSync(file, "w");
  try {
    for (const size of [65_536, 4096, 1]) {
      const chunk = new Uint8Array(size);
      for (;;) {
        try {
          writeSync(fd, chunk);
        } catch (error) {
          if ((error as { code?: string }).code !== "ENOSPC") throw error;
          break;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return statSync(file).size;
}

function errorCodeOf(logged: { error: unknown }): string | undefined {
  return (logged.error as { code?: string } | undefined)?.code;
}

describe("FileStore on a full file system (a real tmpfs, filled)", () => {
  it("answers 500 with a logged error, keeps the previous version, and recovers with space", async () => {
    const mount = Mount.tmpfs(256 * 1024);
    mounts.push(mount);
    const store = new FileStore({ path: mount.path });
    const { browser, logger } = start(store);
    assert.equal((await browser.text("/set?v=old")).body, "old");
    const key = browser.cookies.get("sessionid")!;
    const file = store.fileOf(key);
    const before = readFileSync(file, "utf8");

    const filler = join(mount.path, "filler");
    const filled = fill(filler);

    const update = await browser.text("/set?v=new");
    assert.equal(update.response.status, 500, "a write lost to a full disk is not a success");
    assert.equal(update.response.headers.get("set-cookie"), null);
    assert.equal(logger.errors.length, 1);
    assert.match(logger.errors[0]!.message, /^Cannot save the session: the session store failed$/);
    assert.equal(errorCodeOf(logger.errors[0]!), "ENOSPC");
    assert.equal(readFileSync(file, "utf8"), before, "the previous version is intact");
    assert.equal((await browser.text("/read")).body, "old", "and still loads");

    const newcomer = await new Browser(browser.base).text("/set?v=other");
    assert.equal(newcomer.response.status, 500, "a new session that cannot be stored is a 500");
    assert.equal(newcomer.response.headers.get("set-cookie"), null);
    assert.equal(logger.errors.length, 2);
    assert.equal(errorCodeOf(logger.errors[1]!), "ENOSPC");
    assert.deepEqual(
      readdirSync(mount.path).sort(),
      ["filler", `sessionid${key}`],
      "no temp file or half-written session is left",
    );

    assert.ok(!inspect(logger.errors).includes(key), "no session key in the log");

    rmSync(filler);
    assert.equal((await browser.text("/set?v=new")).body, "new", "service comes back with space");
    assert.equal((await browser.text("/read")).body, "new");
    console.log(
      `[disk] FileStore on ${RUNTIME}: tmpfs of 256 KiB filled with ${filled} bytes: 2 saves answered 500 (ENOSPC, logged), the previous version kept`,
    );
  });
});

describe("FileStore on a read-only file system (a real read-only bind mount)", () => {
  it("answers 500 with a logged error for saves and deletes, keeps the session readable, and recovers", async () => {
    const mount = Mount.bind();
    mounts.push(mount);
    const store = new FileStore({ path: mount.path });
    const { browser, logger } = start(store);
    assert.equal((await browser.text("/set?v=old")).body, "old");
    const key = browser.cookies.get("sessionid")!;
    const file = store.fileOf(key);
    const before = readFileSync(file, "utf8");
    await store.create({ data: "{}", expiresAt: Date.now() - 1000 });

    mount.setReadOnly(true);
    try {
      const update = await browser.text("/set?v=new");
      assert.equal(update.response.status, 500);
      assert.equal(update.response.headers.get("set-cookie"), null);
      assert.match(
        logger.errors[0]!.message,
        /^Cannot save the session: the session store failed$/,
      );
      assert.equal(errorCodeOf(logger.errors[0]!), "EROFS");
      assert.equal(readFileSync(file, "utf8"), before);
      assert.equal((await browser.text("/read")).body, "old", "reads still work");

      const newcomer = await new Browser(browser.base).text("/set?v=other");
      assert.equal(newcomer.response.status, 500);
      assert.equal(errorCodeOf(logger.errors[1]!), "EROFS");

      const logout = await browser.text("/logout");
      assert.equal(logout.response.status, 500, "a logout that cannot delete is not a success");
      assert.equal(logout.response.headers.get("set-cookie"), null, "the cookie is kept");
      assert.match(logger.errors[2]!.message, /^Cannot delete the session: /);
      assert.equal(errorCodeOf(logger.errors[2]!), "EROFS");

      await assert.rejects(store.clearExpired(), /EROFS/, "the sweeper does not report 0 removed");
      assert.equal(logger.errors.length, 3);
      assert.equal(readdirSync(mount.path).filter((name) => SESSION_FILE.test(name)).length, 2);
      assert.ok(!inspect(logger.errors).includes(key), "no session key in the log");
    } finally {
      mount.setReadOnly(false);
    }

    assert.equal((await browser.text("/set?v=new")).body, "new", "service comes back");
    assert.equal((await browser.text("/read")).body, "new");
    assert.equal(await store.clearExpired(), 1);
    console.log(
      `[disk] FileStore on ${RUNTIME}: read-only bind mount: save, create and delete answered 500 (EROFS, logged), the sweeper failed loudly, the session kept`,
    );
  });
});
