// Two server processes on one store: what one writes, the other reads,
// cycles and flushes; and both write at once without losing an update.

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { RUNTIME } from "../_server.ts";
import { startRedis } from "../_redis.ts";
import { startPostgres } from "../_postgres.ts";

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), "_session_server.ts");
const ROOT = join(dirname(SCRIPT), "..", "..");

interface ServerProcess {
  url: string;
  stop(): Promise<void>;
}

const running: ServerProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), "tessera-multi-"));
const redis = await startRedis();
const postgres = await startPostgres();
after(async () => {
  for (const server of running) await server.stop();
  await redis.stop();
  await postgres.destroy();
  rmSync(dir, { recursive: true, force: true });
});

// Starts the session server script with the runtime running the tests.
async function startServer(...args: string[]): Promise<ServerProcess> {
  const runtimeArgs = RUNTIME === "deno" ? ["run", "--allow-all", SCRIPT] : [SCRIPT];
  const child: ChildProcess = spawn(process.execPath, [...runtimeArgs, ...args], {
    cwd: ROOT,
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const port = await new Promise<string>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error("the session server did not start")), 20_000);
    child.stdout!.on("data", (chunk) => {
      out += chunk.toString();
      if (out.includes("\n")) {
        clearTimeout(timer);
        resolve(out.split("\n")[0]!.trim());
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the session server exited with ${code}`));
    });
  });
  const server = {
    url: `http://127.0.0.1:${port}`,
    async stop() {
      // Closing its stdin stops it; a kill by its pid if it does not.
      child.stdin!.end();
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
  running.push(server);
  return server;
}

interface Answer {
  status: number;
  body: string;
  cookie: string | null | undefined; // undefined: no Set-Cookie; null: deleted
}

async function get(base: string, path: string, cookie?: string | null): Promise<Answer> {
  const headers = cookie ? { cookie: `sessionid=${cookie}` } : undefined;
  const response = await fetch(base + path, headers ? { headers } : {});
  const line = response.headers.get("set-cookie");
  const value = line === null ? undefined : /^sessionid=([^;]*)/.exec(line)?.[1] || null;
  return { status: response.status, body: await response.text(), cookie: value };
}

function twoServersOnOneStore(name: string, args: () => string[]): void {
  describe(`two server processes on one ${name}`, () => {
    let servers: ServerProcess[] = [];

    it("a session written through one is read, cycled and flushed through the other", async () => {
      servers = await Promise.all([startServer(...args()), startServer(...args())]);
      const [a, b] = servers;
      const login = await get(a!.url, "/set?user=ada");
      const first = login.cookie!;
      assert.match(first, /^[a-z0-9]{32}$/);

      assert.deepEqual(JSON.parse((await get(b!.url, "/get", first)).body), { user: "ada" });

      const cycled = await get(b!.url, "/cycle", first);
      const second = cycled.cookie!;
      assert.match(second, /^[a-z0-9]{32}$/);
      assert.notEqual(second, first);
      assert.deepEqual(JSON.parse((await get(a!.url, "/get", second)).body), { user: "ada" });
      const old = await get(a!.url, "/get", first);
      assert.deepEqual(JSON.parse(old.body), {});
      assert.equal(old.cookie, null, "the old key is gone, so its cookie is deleted");

      const flushed = await get(a!.url, "/flush", second);
      assert.equal(flushed.cookie, null);
      const after = await get(b!.url, "/get", second);
      assert.deepEqual(JSON.parse(after.body), {});
      assert.equal(after.cookie, null);
    });

    it("both write at once, each to its own sessions, and no update is lost", async () => {
      assert.equal(servers.length, 2, "the servers started");
      const sessions = 16;
      const increments = 12;
      const counts = await Promise.all(
        Array.from({ length: sessions }, async (_, s) => {
          let cookie: string | undefined;
          let ok = 0;
          for (let i = 0; i < increments; i++) {
            const answer = await get(servers[(s + i) % 2]!.url, "/incr", cookie);
            assert.ok(answer.status < 500, `${answer.status} ${answer.body}`);
            if (answer.status === 200) ok++;
            cookie ??= answer.cookie ?? undefined;
          }
          const last = await get(servers[s % 2]!.url, "/get", cookie);
          return { ok, n: JSON.parse(last.body).n };
        }),
      );
      for (const { ok, n } of counts) assert.equal(n, ok);
      assert.equal(counts.reduce((sum, { ok }) => sum + ok, 0), sessions * increments);
    });
  });
}

twoServersOnOneStore("SQLite file", () => ["sqlite", join(dir, "sessions.sqlite3")]);
twoServersOnOneStore("Redis", () => ["redis", redis.url]);
// Both create Django's table on first use, at once, on a fresh database.
twoServersOnOneStore("PostgreSQL database", () => ["postgres", postgres.url]);
