// The floor servers answer as their workload says (seeded, read back,
// counted up: the harness's --quick check), and keep their records in
// Tessera's own formats, signed as Tessera signs them: Tessera's engines
// load what a floor stored, and a floor refuses what was not signed. No
// timing here; the benchmark times them.
import assert from "node:assert/strict";
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { get, Server, smoke } from "../../bench/_harness.ts";
import { allServers, type Pair, pairLabel, planPairs, type ServerSpec } from "../../bench/_plan.ts";
import { SECRET } from "../../bench/servers/_counter.mjs";
import { CookieStore, FileStore, SqliteStore } from "../../mod.ts";
import type { SessionStore } from "../../src/stores/store.ts";
import { sealStore } from "../../src/stores/_sealed.ts";

const PLACES = [
  { name: "disk", dir: tmpdir() },
  ...(existsSync("/dev/shm") ? [{ name: "shm", dir: "/dev/shm" }] : []),
];
const FLOORS = allServers(["memory", "file", "cookie", "sqlite"], PLACES)
  .filter((server) => server.kind === "floor");
const SILENT = { warn() {}, error() {} };

function floor(id: string): ServerSpec {
  const found = FLOORS.find((spec) => spec.id === id);
  if (found === undefined) throw new Error(`no floor ${id}`);
  return found;
}

/** Runs `task` over `items`, `limit` at a time. */
async function pool<T, R>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index]!);
    }
  }));
  return results;
}

/** A floor started in `root` (its own temp dir inside), with the directory it made. */
async function started(
  spec: ServerSpec,
  workload: "read" | "write",
): Promise<{ server: Server; root: string; directory(): string }> {
  const root = mkdtempSync(join(tmpdir(), "tessera-floor-test-"));
  const args = spec.args.filter((_, index, all) =>
    all[index - 1] !== "--root" && all[index] !== "--root"
  );
  const server = new Server(spec, [...args, "--root", root, workload], false);
  await server.ready();
  return {
    server,
    root,
    directory: () => join(root, readdirSync(root)[0]!),
  };
}

async function stop(run: { server: Server; root: string }): Promise<void> {
  await run.server.stop();
  rmSync(run.root, { recursive: true, force: true });
}

/** A sealed engine reading what a floor stored, as withSessions({ secret }) would. */
function sealed(store: SessionStore): SessionStore {
  return sealStore(store, {
    secrets: [SECRET],
    logger: SILENT,
    acceptUnsigned: false,
  });
}

describe("the floor servers", () => {
  it("answer as their workload says, on Deno and on Bun, with and without a secret", async () => {
    const pairs: Pair[] = planPairs(FLOORS, null);
    const failures = await pool(pairs, 4, async (pair) => {
      const failure = await smoke(pair);
      return failure === null ? null : `${pairLabel(pair)}: ${failure}`;
    });
    const failed = failures.filter((failure) => failure !== null);
    console.log(
      `${pairs.length} floor servers checked, ${failed.length} failed`,
    );
    assert.deepEqual(failed, []);
  });

  for (const runtime of ["deno", "bun"] as const) {
    describe(`on ${runtime}`, () => {
      const runs: { server: Server; root: string }[] = [];
      after(async () => {
        for (const run of runs) await stop(run);
      });

      it("store a file in the native format, signed, 0600, its mtime the expiry, that FileStore loads", async () => {
        const run = await started(floor(`floor-file-disk-${runtime}`), "write");
        runs.push(run);
        const first = await get(run.server.url, null);
        assert.equal(first.body, "new 1");
        const key = first.cookie!.slice("sessionid=".length);
        const second = await get(run.server.url, first.cookie);
        assert.equal(second.body, "write 2");
        const file = join(run.directory(), `sessionid${key}`);
        const text = readFileSync(file, "utf8");
        const expiresAt = Number(text.slice(0, text.indexOf("\n")));
        assert.match(text, /^\d+\ns1:[A-Za-z0-9_-]{43}:\{"count":2\}$/);
        const stat = statSync(file);
        assert.equal(stat.mode & 0o777, 0o600);
        // Seconds as a double, as FileStore sets them: within a millisecond.
        assert.ok(
          Math.abs(stat.mtimeMs - expiresAt) < 1.5,
          `mtime ${stat.mtimeMs}, expiry ${expiresAt}`,
        );
        const store = sealed(new FileStore({ path: run.directory() }));
        assert.deepEqual(await store.load(key), {
          data: '{"count":2}',
          expiresAt,
        });
      });

      it("refuse a file Tessera's signature does not cover: an edited one, an unsigned one", async () => {
        const run = await started(floor(`floor-file-disk-${runtime}`), "read");
        runs.push(run);
        const first = await get(run.server.url, null);
        const key = first.cookie!.slice("sessionid=".length);
        const file = join(run.directory(), `sessionid${key}`);
        const text = readFileSync(file, "utf8");
        writeFileSync(file, text.replace('"count":1', '"count":7'));
        assert.equal((await get(run.server.url, first.cookie)).body, "new 1");
        writeFileSync(
          file,
          `${text.slice(0, text.indexOf("\n"))}\n{"count":7}`,
        );
        assert.equal((await get(run.server.url, first.cookie)).body, "new 1");
        writeFileSync(file, text);
        assert.equal((await get(run.server.url, first.cookie)).body, "read 1");
        console.log(
          `${runtime}: 2 planted records refused, the signed one read`,
        );
      });

      it("without a secret, store the data alone, as an unsealed FileStore reads it", async () => {
        const run = await started(
          floor(`floor-file-disk-plain-${runtime}`),
          "read",
        );
        runs.push(run);
        const first = await get(run.server.url, null);
        const key = first.cookie!.slice("sessionid=".length);
        const loaded = await new FileStore({ path: run.directory() }).load(key);
        assert.equal(loaded?.data, '{"count":1}');
      });

      it("store a signed SQLite row that SqliteStore loads", async () => {
        const run = await started(floor(`floor-sqlite-${runtime}`), "write");
        runs.push(run);
        const first = await get(run.server.url, null);
        const key = first.cookie!.slice("sessionid=".length);
        assert.equal((await get(run.server.url, first.cookie)).body, "write 2");
        const sqlite = new SqliteStore({
          path: join(run.directory(), "sessions.sqlite3"),
        });
        try {
          assert.equal((await sealed(sqlite).load(key))?.data, '{"count":2}');
        } finally {
          sqlite.close();
        }
      });

      it("set a signed cookie that CookieStore loads, and refuse an edited one", async () => {
        const run = await started(floor(`floor-cookie-${runtime}`), "read");
        runs.push(run);
        const first = await get(run.server.url, null);
        const value = first.cookie!.slice("sessionid=".length);
        const store = new CookieStore();
        store.configure({
          cookieName: "sessionid",
          cookieAge: 1_209_600,
          secrets: [SECRET],
          logger: SILENT,
        });
        assert.equal((await store.load(value))?.data, '{"count":1}');
        const payload = value.slice(0, value.indexOf(":"));
        const edited = value.replace(
          payload,
          new TextEncoder().encode('{"count":9}').toBase64({
            alphabet: "base64url",
            omitPadding: true,
          }),
        );
        assert.equal(
          (await get(run.server.url, `sessionid=${edited}`)).body,
          "new 1",
        );
        assert.equal((await get(run.server.url, first.cookie)).body, "read 1");
      });
    });
  }
});
