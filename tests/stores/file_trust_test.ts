// The file engine trusts only its own files: a regular file owned by the
// server's user with no permission bits for group or others. Each attack
// plants something else at a session's name and sends its key through a real
// server: the request answers at once with an empty session, a security
// warning is logged without the key, and the sweeper leaves the thing alone
// without blocking on it.

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { FileStore, getSession, withSessions } from "../../mod.ts";
import { readStartTrusted } from "../../src/stores/_file_trust.ts";
import { RecordingLogger } from "../_config.ts";
import { RUNTIME, serve, type TestServer } from "../_server.ts";

const dirs: string[] = [];
function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "tessera-trust-"));
  dirs.push(dir);
  return dir;
}
const sockets: Server[] = [];
after(() => {
  for (const socket of sockets) socket.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const HOUR = 3_600_000;
const NOBODY = 65534;
const PLANTED = `${Date.now() + HOUR}\n{"user":"admin"}`;
const REQUEST_TIMEOUT_MS = 5000;

function keyOf(n: number): string {
  return `planted${String(n).padStart(25, "0")}`;
}

/** A server whose handler answers who the session says the user is. */
function whoServer(dir: string, logger: RecordingLogger): TestServer {
  const store = new FileStore({ path: dir });
  return serve(withSessions(async (req) => {
    const session = await getSession<{ user: string }>(req);
    if (new URL(req.url).pathname === "/login") {
      await session.cycleKey();
      session.set("user", "ada");
      return new Response("logged in");
    }
    return new Response(session.get("user") ?? "anonymous");
  }, { store, logger }));
}

async function who(server: TestServer, key: string): Promise<string> {
  const response = await fetch(`${server.url}/`, {
    headers: { cookie: `sessionid=${key}` },
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  return await response.text();
}

function mkfifo(path: string): void {
  execFileSync("mkfifo", ["-m", "600", path]);
}

function listen(path: string): Promise<void> {
  const server = createServer();
  sockets.push(server);
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => resolve());
  });
}

describe("FileStore trusts only its own files", () => {
  it("answers a key whose file is a FIFO at once, with an empty session and a warning", async () => {
    const dir = freshDir();
    const logger = new RecordingLogger();
    const server = whoServer(dir, logger);
    try {
      mkfifo(join(dir, `sessionid${keyOf(1)}`));
      const started = performance.now();
      assert.equal(await who(server, keyOf(1)), "anonymous");
      console.log(
        `[trust] a FIFO session file on ${RUNTIME}: answered in ${
          Math.round(performance.now() - started)
        } ms`,
      );
      assert.equal(logger.warnings.length, 1);
      assert.match(
        logger.warnings[0]!,
        /ignored as it is not a regular file owned by this user with mode 0600/,
      );
      assert.ok(!logger.warnings[0]!.includes(keyOf(1)));
    } finally {
      await server.close();
    }
  });

  it("keeps serving logins while many requests carry FIFO keys", async () => {
    const dir = freshDir();
    const logger = new RecordingLogger();
    const server = whoServer(dir, logger);
    const FIFOS = 40;
    const LOGINS = 20;
    try {
      for (let i = 0; i < FIFOS; i++) mkfifo(join(dir, `sessionid${keyOf(i)}`));
      const fifoAnswers = Array.from({ length: FIFOS }, (_, i) => who(server, keyOf(i)));
      const logins = Array.from({ length: LOGINS }, async () => {
        const response = await fetch(`${server.url}/login`, {
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        });
        assert.equal(await response.text(), "logged in");
        const key = /sessionid=([a-z0-9]{32})/.exec(response.headers.get("set-cookie") ?? "")?.[1];
        assert.ok(key);
        return await who(server, key);
      });
      const answers = await Promise.all([...fifoAnswers, ...logins]);
      const anonymous = answers.slice(0, FIFOS).filter((a) => a === "anonymous").length;
      const loggedIn = answers.slice(FIFOS).filter((a) => a === "ada").length;
      console.log(
        `[trust] ${FIFOS} requests with FIFO keys on ${RUNTIME}: ${anonymous} answered anonymous; ${loggedIn} of ${LOGINS} logins alongside went through`,
      );
      assert.equal(anonymous, FIFOS);
      assert.equal(loggedIn, LOGINS);
      assert.equal(logger.warnings.length, FIFOS);
    } finally {
      await server.close();
    }
  });

  it("does not follow a symlink to a file of planted JSON", async () => {
    const dir = freshDir();
    const elsewhere = freshDir();
    const planted = join(elsewhere, "planted");
    writeFileSync(planted, PLANTED, { mode: 0o600 });
    symlinkSync(planted, join(dir, `sessionid${keyOf(2)}`));
    const logger = new RecordingLogger();
    const server = whoServer(dir, logger);
    try {
      assert.equal(await who(server, keyOf(2)), "anonymous");
      assert.equal(logger.warnings.length, 1);
    } finally {
      await server.close();
    }
    assert.equal(readFileSync(planted, "utf8"), PLANTED);
  });

  it("ignores a file others may read or write (0644, 0660, 0606)", async () => {
    const dir = freshDir();
    const logger = new RecordingLogger();
    const server = whoServer(dir, logger);
    try {
      for (const mode of [0o644, 0o660, 0o606]) {
        const file = join(dir, `sessionid${keyOf(mode)}`);
        writeFileSync(file, PLANTED);
        chmodSync(file, mode);
        assert.equal(lstatSync(file).mode & 0o777, mode);
        assert.equal(await who(server, keyOf(mode)), "anonymous", mode.toString(8));
      }
      // The same content at mode 0600 is a session: the rule, not the content, decides.
      writeFileSync(join(dir, `sessionid${keyOf(3)}`), PLANTED, { mode: 0o600 });
      assert.equal(await who(server, keyOf(3)), "admin");
      assert.equal(logger.warnings.length, 3);
    } finally {
      await server.close();
    }
  });

  it("ignores a file another user owns, even at mode 0600 (run as root: chown to nobody)", async () => {
    const dir = freshDir();
    const file = join(dir, `sessionid${keyOf(4)}`);
    writeFileSync(file, PLANTED, { mode: 0o600 });
    chownSync(file, NOBODY, NOBODY);
    const logger = new RecordingLogger();
    const server = whoServer(dir, logger);
    try {
      assert.equal(await who(server, keyOf(4)), "anonymous");
      assert.equal(logger.warnings.length, 1);
    } finally {
      await server.close();
    }
  });

  it("ignores a directory, a unix socket and a device at a session's name", async () => {
    const dir = freshDir();
    mkdirSync(join(dir, `sessionid${keyOf(5)}`));
    await listen(join(dir, `sessionid${keyOf(6)}`));
    execFileSync("mknod", ["-m", "600", join(dir, `sessionid${keyOf(7)}`), "c", "1", "3"]);
    const logger = new RecordingLogger();
    const server = whoServer(dir, logger);
    try {
      for (const n of [5, 6, 7]) assert.equal(await who(server, keyOf(n)), "anonymous", String(n));
      assert.equal(logger.warnings.length, 3);
    } finally {
      await server.close();
    }
  });

  it("exists() is false for anything but the engine's own file", async () => {
    const dir = freshDir();
    const logger = new RecordingLogger();
    const store = new FileStore({ path: dir });
    store.configure({ cookieName: "sessionid", cookieAge: 60, secrets: [], logger });
    mkfifo(join(dir, `sessionid${keyOf(8)}`));
    writeFileSync(join(dir, `sessionid${keyOf(9)}`), PLANTED, { mode: 0o644 });
    symlinkSync(join(dir, `sessionid${keyOf(9)}`), join(dir, `sessionid${keyOf(10)}`));
    for (const n of [8, 9, 10]) assert.equal(await store.exists(keyOf(n)), false, String(n));
    assert.equal(logger.warnings.length, 3);
    const own = await store.create({ data: "{}", expiresAt: Date.now() + HOUR });
    assert.equal(await store.exists(own), true);
  });

  it("the sweeper leaves every planted thing alone, never blocks, and warns once with the count", async () => {
    const dir = freshDir();
    const elsewhere = freshDir();
    const target = join(elsewhere, "target");
    writeFileSync(target, "0\n{}", { mode: 0o600 });
    const old = new Date(Date.now() - 30 * 24 * HOUR);
    const planted: string[] = [];
    const plant = (n: number, make: (path: string) => void | Promise<void>) => {
      const path = join(dir, `sessionid${keyOf(n)}`);
      planted.push(path);
      return make(path);
    };
    await plant(11, (p) => mkfifo(p));
    await plant(12, (p) => symlinkSync(target, p));
    await plant(13, (p) => writeFileSync(p, "0\n{}", { mode: 0o644 }));
    await plant(14, (p) => {
      writeFileSync(p, "0\n{}", { mode: 0o600 });
      chownSync(p, NOBODY, NOBODY);
    });
    await plant(15, (p) => mkdirSync(p));
    await plant(16, (p) => listen(p));
    await plant(17, (p) => {
      execFileSync("mknod", ["-m", "600", p, "c", "1", "3"]);
    });
    // Leftover forms too: a temp file and a tombstone that are not ours.
    const temp = join(dir, `sessionid${keyOf(18)}.tmp-abcdefghijkl`);
    writeFileSync(temp, "half", { mode: 0o644 });
    const tombstone = join(dir, `sessionid${keyOf(19)}.gone`);
    mkfifo(tombstone);
    for (const path of [...planted, temp]) {
      try {
        utimesSync(path, old, old);
      } catch {
        // a socket cannot be given times on every runtime
      }
    }
    const logger = new RecordingLogger();
    const store = new FileStore({ path: dir, staleTempAfter: 0 });
    store.configure({ cookieName: "sessionid", cookieAge: 60, secrets: [], logger });
    const expired = await store.create({ data: "{}", expiresAt: Date.now() - HOUR });
    const report = await store.sweep();
    assert.deepEqual(report, { removed: 1, kept: 0, tempRemoved: 0, failed: 0, errors: [] });
    for (const path of [...planted, temp, tombstone]) {
      assert.ok(existsSync(path) || lstatSync(path), path);
    }
    assert.equal(await store.exists(expired), false);
    assert.equal(readFileSync(target, "utf8"), "0\n{}");
    assert.deepEqual(logger.warnings, [
      `9 session files in '${dir}' were ignored as they are not a regular file owned by this user with mode 0600 (a planted file, a FIFO, socket, device, symlink or directory): remove them, or keep sessions in a directory only the server's user can write`,
    ]);
    assert.equal(readdirSync(dir).length, planted.length + 2);
  });

  it("reads the first line of a FIFO swapped in after the sweeper's look without blocking", () => {
    const dir = freshDir();
    const fifo = join(dir, "fifo");
    mkfifo(fifo);
    assert.equal(readStartTrusted(fifo, dir, process.getuid!(), 32), "untrusted");
  });
});
