// KvStore: Deno KV sessions. On Deno it runs the shared engine suite and
// its own tests, two processes on one local KV file among them. On Bun,
// where there is no Deno KV, the only test is that it refuses to be built.

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { DatabaseSync } from "node:sqlite";
import {
  type DenoKv,
  getSession,
  KvStore,
  SessionExistsError,
  SessionInterruptedError,
  withSessions,
} from "../../mod.ts";
import { RecordingLogger } from "../_config.ts";
import { storeContract } from "./_contract.ts";

const HOUR = 3_600_000;
const KEY = "abcdefgh12345678abcdefgh12345678";
const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, "..", "..");
const CHILD = join(HERE, "_kv_child.ts");
const deno = (globalThis as { Deno?: typeof Deno }).Deno;

if (deno === undefined) {
  describe("KvStore on Bun", () => {
    it("refuses to be constructed, saying that Deno KV needs Deno", () => {
      assert.throws(() => new KvStore(), {
        name: "Error",
        message:
          /^Cannot create a KvStore as Deno KV needs the Deno runtime: current runtime is Bun \d/,
      });
      const kv = { get() {}, list() {}, delete() {}, atomic() {}, close() {} } as unknown as DenoKv;
      assert.throws(() => new KvStore({ kv }), /needs the Deno runtime/);
    });
  });
} else {
  await onDeno(deno);
}

async function onDeno(deno: typeof Deno): Promise<void> {
  // Memory-backed where there is one: what is tested does not depend on
  // the medium, and a commit there costs a fraction of a shared disk's.
  const scratch = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
  const dir = mkdtempSync(join(scratch, "tessera-kv-"));
  const kv = await deno.openKv(join(dir, "sessions.kv"));
  after(() => {
    kv.close();
    rmSync(dir, { recursive: true, force: true });
  });
  // One database for the suite; a prefix per store keeps them apart.
  let stores = 0;
  function fresh(): KvStore {
    return new KvStore({ kv, prefix: ["tessera-test", ++stores] });
  }
  function request(cookie?: string, path = "/"): Request {
    return new Request(`http://127.0.0.1${path}`, cookie ? { headers: { cookie } } : {});
  }
  function cookieOf(response: Response): string | undefined {
    return /^sessionid=([a-z0-9]*)/.exec(response.headers.get("set-cookie") ?? "")?.[1];
  }

  storeContract("KvStore", () => ({ store: fresh() }));

  describe("KvStore: construction", () => {
    it("rejects a prefix that is not a non-empty KV key, and a kv that is not a database", () => {
      for (const prefix of [[], "sessions", [{}], [null], [Number.NaN], [Symbol("s")]]) {
        assert.throws(() => new KvStore({ kv, prefix: prefix as never }), {
          name: "TypeError",
          message:
            /^Cannot create a KvStore as 'prefix' must be a non-empty KV key .*: current value is /,
        });
      }
      for (const bad of [null, 42, {}, { get() {} }]) {
        assert.throws(() => new KvStore({ kv: bad as never }), {
          name: "TypeError",
          message: /^Cannot create a KvStore as 'kv' must be a Deno KV database/,
        });
      }
      const store = new KvStore({ kv, prefix: ["a", 1, 2n, true, new Uint8Array([1])] });
      assert.equal(store.prefix.length, 5);
    });

    it("says which flag or deno.json setting is missing when Deno KV is not enabled", () => {
      const script = `import { KvStore } from ${JSON.stringify(join(ROOT, "mod.ts"))};
        try { new KvStore(); console.log("constructed"); } catch (e) { console.log(e.message); }
        const kv = { get() {}, list() {}, delete() {}, atomic() {}, close() {} };
        new KvStore({ kv });
        console.log("with a kv given: constructed");`;
      // --no-config: this repository's deno.json turns Deno KV on.
      const result = spawnSync(deno.execPath(), ["eval", "--no-config", script], {
        encoding: "utf8",
      });
      assert.equal(result.status, 0, result.stderr);
      assert.equal(
        result.stdout,
        'Cannot create a KvStore as Deno KV is unstable in Deno 2 and must be enabled with the --unstable-kv flag or "unstable": ["kv"] in deno.json: current value of Deno.openKv is undefined\n' +
          "with a kv given: constructed\n",
      );
    });

    it("opens Deno.openKv() itself on first use when no kv is given, and closes it", () => {
      // A child with a DENO_DIR and a --location of its own: its default
      // database is a file in the test's directory, not the user's.
      const script = `import { KvStore } from ${JSON.stringify(join(ROOT, "mod.ts"))};
        const store = new KvStore();
        const key = await store.create({ data: "{}", expiresAt: Date.now() + 60000 });
        console.log(JSON.stringify(await store.load(key)));
        await store.close();`;
      const result = spawnSync(deno.execPath(), [
        "eval",
        "--unstable-kv",
        "--location=https://tessera.test/kv-default",
        script,
      ], { encoding: "utf8", env: { ...process.env, DENO_DIR: join(dir, "deno-dir") } });
      assert.equal(result.status, 0, result.stderr);
      assert.equal(JSON.parse(result.stdout).data, "{}");
    });
  });

  describe("KvStore: types", () => {
    it("type-checks without Deno's own types, as in a Bun project, and accepts a real Deno.Kv", () => {
      // What a Bun project's TypeScript sees: the web and ES libraries, no
      // Deno namespace. A probe that names Deno.Kv proves the namespace is gone.
      const config = join(dir, "no-deno-types.json");
      writeFileSync(
        config,
        JSON.stringify({
          compilerOptions: {
            lib: ["esnext", "dom"],
            strict: true,
            exactOptionalPropertyTypes: true,
          },
        }),
      );
      const probe = join(dir, "probe.ts");
      writeFileSync(probe, "export const kv: Deno.Kv | null = null;\n");
      const check = (file: string) =>
        spawnSync(deno.execPath(), ["check", "--quiet", `--config=${config}`, file], {
          encoding: "utf8",
        });
      const engine = check(join(ROOT, "src", "stores", "kv.ts"));
      assert.equal(engine.status, 0, engine.stderr);
      const named = check(probe);
      assert.notEqual(named.status, 0);
      assert.match(named.stderr, /Cannot find namespace 'Deno'/);
      // And under Deno's types, Deno.openKv()'s result is a DenoKv.
      const real: DenoKv = kv;
      assert.ok(real);
    });
  });

  describe("KvStore", () => {
    it("keeps each session under [...prefix, key] as its expiry line and its data", async () => {
      const store = new KvStore({ kv, prefix: ["myapp", "sessions"] });
      const expiresAt = Date.now() + HOUR;
      const key = await store.create({ data: '{"user":"ada"}', expiresAt });
      const entry = await kv.get(["myapp", "sessions", key]);
      assert.ok(entry.value instanceof Uint8Array);
      assert.equal(new TextDecoder().decode(entry.value), `${expiresAt}\n{"user":"ada"}`);
      const other = new KvStore({ kv, prefix: ["otherapp", "sessions"] });
      assert.equal(await other.load(key), null, "another prefix sees none of them");
      assert.equal(await other.exists(key), false);
    });

    it("uses the default prefix ['tessera', 'sessions']", async () => {
      const store = new KvStore({ kv });
      const key = await store.create({ data: "{}", expiresAt: Date.now() + HOUR });
      assert.notEqual((await kv.get(["tessera", "sessions", key])).versionstamp, null);
      await store.delete(key);
    });

    it("create() fails over a taken key with SessionExistsError, atomically, even under a race", async () => {
      const store = fresh();
      const results = await Promise.allSettled(
        Array.from(
          { length: 50 },
          (_, i) => store.save(KEY, { data: `{"i":${i}}`, expiresAt: Date.now() + HOUR }, true),
        ),
      );
      const won = results.filter((r) => r.status === "fulfilled").length;
      const lost =
        results.filter((r) => r.status === "rejected" && r.reason instanceof SessionExistsError)
          .length;
      assert.deepEqual({ won, lost }, { won: 1, lost: 49 });
      console.log(`[kv] 50 racing creates of one key: ${won} stored, ${lost} SessionExistsError`);
    });

    it("an update retries when another request saved the session in between, and the last save wins", async () => {
      const store = fresh();
      const key = await store.create({ data: '{"n":0}', expiresAt: Date.now() + HOUR });
      const saves = 200;
      await Promise.all(
        Array.from(
          { length: saves },
          (_, i) => store.save(key, { data: `{"n":${i + 1}}`, expiresAt: Date.now() + HOUR }),
        ),
      );
      const n = JSON.parse((await store.load(key))!.data).n;
      assert.ok(n >= 1 && n <= saves);
      console.log(`[kv] ${saves} concurrent updates of one session: all stored, none failed`);
    });

    it("thousands of concurrent save/delete pairs: no deleted session comes back", async () => {
      const store = fresh();
      const pairs = 1000;
      const keys = await Promise.all(
        Array.from(
          { length: pairs },
          () => store.create({ data: "{}", expiresAt: Date.now() + HOUR }),
        ),
      );
      let saved = 0;
      let interrupted = 0;
      // Half the deletes start at once (before the save's commit), half
      // after one more read (often after it).
      await Promise.all(keys.flatMap((key, i) => [
        store.save(key, { data: '{"again":1}', expiresAt: Date.now() + HOUR }).then(
          () => saved++,
          (error) => {
            assert.ok(error instanceof SessionInterruptedError, String(error));
            interrupted++;
          },
        ),
        i % 2 === 0 ? store.delete(key) : store.exists(key).then(() => store.delete(key)),
      ]));
      let resurrected = 0;
      for (const key of keys) if (await store.exists(key)) resurrected++;
      assert.equal(saved + interrupted, pairs);
      assert.equal(resurrected, 0);
      console.log(
        `[kv] ${pairs} save/delete pairs: ${saved} saved first, ${interrupted} interrupted, ${resurrected} resurrections`,
      );
    });

    it("load() checks the stored expiry: an entry KV still holds is no session once it is over", async () => {
      const store = fresh();
      const key = await store.create({ data: '{"a":1}', expiresAt: Date.now() + 1000 });
      assert.equal((await store.load(key))?.data, '{"a":1}');
      await new Promise((resolve) => setTimeout(resolve, 1100));
      assert.notEqual((await kv.get([...store.prefix, key])).versionstamp, null, "KV holds it");
      assert.equal(await store.load(key), null);
      assert.equal(await store.exists(key), true, "exists() ignores expiry, as in Django");
    });

    it("gives each entry an expireIn from its expiry: KV's file holds the deletion time", async () => {
      // Deno's local KV keeps the earliest deletion time of an entry in its
      // SQLite file (kv.expiration_ms, -1 for none) and deletes expired
      // entries in the background, a minute apart: the test reads the file.
      const store = fresh();
      const soon = Date.now() + 30_000;
      await store.create({ data: '{"mark":"soon"}', expiresAt: soon });
      const before = Date.now();
      await store.create({ data: '{"mark":"over"}', expiresAt: before - 1000 });
      await store.create({ data: '{"mark":"far"}', expiresAt: 8.64e15 });
      const db = new DatabaseSync(join(dir, "sessions.kv"), { readOnly: true });
      const expirations = new Map<string, number>();
      try {
        for (const row of db.prepare("SELECT v, expiration_ms FROM kv").all()) {
          const text = new TextDecoder().decode(row.v as Uint8Array);
          const mark = /"mark":"(\w+)"/.exec(text)?.[1];
          if (mark) expirations.set(mark, Number(row.expiration_ms));
        }
      } finally {
        db.close();
      }
      const at = (mark: string) => expirations.get(mark)!;
      assert.ok(at("soon") >= soon && at("soon") < soon + 1000, `${at("soon")} vs ${soon}`);
      // Over already: kept a minute for a sweep to count, never loaded.
      assert.ok(at("over") >= before + 60_000 && at("over") < Date.now() + 61_000);
      assert.equal(at("far"), -1, "past KV's largest expireIn: no deletion time");
    });

    it("a session over KV's 64 KiB value limit is a clear error, a logged 500, and nothing is stored", async () => {
      const store = fresh();
      const head = `${Date.now() + HOUR}\n`.length;
      const fits = "x".repeat(65_536 - head);
      await store.save(KEY, { data: fits, expiresAt: Date.now() + HOUR }, true);
      assert.equal((await store.load(KEY))?.data.length, fits.length, "65536 bytes fit");
      await assert.rejects(
        store.save(KEY, { data: `${fits}é`, expiresAt: Date.now() + HOUR }),
        {
          name: "RangeError",
          message:
            "Cannot save a session in Deno KV as a value holds at most 65536 bytes: current size is 65538 bytes",
        },
      );
      assert.equal((await store.load(KEY))?.data, fits, "the stored session is untouched");

      const logger = new RecordingLogger();
      const handler = withSessions(async (req) => {
        const session = await getSession(req);
        session.set("blob", "ü".repeat(40_000));
        return new Response("ok");
      }, { store, logger });
      const response = await handler(request());
      assert.equal(response.status, 500);
      assert.equal(response.headers.get("set-cookie"), null);
      assert.equal(logger.errors.length, 1);
      assert.match(String((logger.errors[0]!.error as Error).message), /at most 65536 bytes/);
      let stored = 0;
      for await (const _ of kv.list({ prefix: store.prefix })) stored++;
      assert.equal(stored, 1, "only the session saved before");
    });

    it("a corrupt entry loads as no session, with a warning that names no key", async () => {
      const store = fresh();
      const logger = new RecordingLogger();
      store.configure({ cookieName: "sessionid", cookieAge: 60, secrets: [], logger });
      for (
        const value of ["a string", new Uint8Array([1, 2, 3]), new TextEncoder().encode("x\n{}")]
      ) {
        await kv.set([...store.prefix, KEY], value);
        assert.equal(await store.load(KEY), null);
      }
      assert.equal(logger.warnings.length, 3);
      assert.ok(logger.warnings.every((w) => !w.includes(KEY)));
      assert.match(
        logger.warnings[0]!,
        /corrupt session entry under the KV prefix \["tessera-test",\d+\]/,
      );
    });

    it("clearExpired() deletes expired entries under its prefix only, and leaves what it cannot read", async () => {
      const store = fresh();
      const neighbour = fresh();
      const live = await store.create({ data: "{}", expiresAt: Date.now() + HOUR });
      const over = await Promise.all(
        Array.from({ length: 5 }, () => store.create({ data: "{}", expiresAt: Date.now() - 1 })),
      );
      const theirs = await neighbour.create({ data: "{}", expiresAt: Date.now() - 1 });
      await kv.set([...store.prefix, "notasession"], "some other value");
      const dry = await store.sweep({ dryRun: true });
      assert.deepEqual([dry.removed, dry.kept], [5, 2]);
      assert.equal(await store.exists(over[0]!), true, "a dry run removes nothing");
      let progress = 0;
      const report = await store.sweep({ onProgress: (n) => (progress = n) });
      assert.deepEqual([report.removed, report.kept, report.failed], [5, 2, 0]);
      assert.equal(progress, 7);
      for (const key of over) assert.equal(await store.exists(key), false);
      assert.equal((await store.load(live))?.data, "{}");
      assert.equal(await neighbour.exists(theirs), true, "another prefix is not swept");
      assert.notEqual((await kv.get([...store.prefix, "notasession"])).versionstamp, null);
      assert.equal(await store.clearExpired(), 0);
    });

    it("a sweep never deletes a session saved again while it runs", async () => {
      // The sweep judges at a later instant, so every session looks over to
      // it; each is saved again, at the same time, with an expiry past that.
      const store = fresh();
      const sessions = 500;
      const keys = await Promise.all(
        Array.from(
          { length: sessions },
          () => store.create({ data: "{}", expiresAt: Date.now() + HOUR }),
        ),
      );
      const later = Date.now() + 2 * HOUR;
      const outcomes = new Map<string, "saved" | "interrupted">();
      const [report] = await Promise.all([
        store.sweep({ now: later }),
        ...keys.map((key) =>
          store.save(key, { data: '{"again":1}', expiresAt: later + HOUR }).then(
            () => outcomes.set(key, "saved"),
            (error) => {
              assert.ok(error instanceof SessionInterruptedError, String(error));
              outcomes.set(key, "interrupted");
            },
          )
        ),
      ]);
      let lost = 0;
      for (const key of keys) {
        const present = await store.exists(key);
        if (outcomes.get(key) === "saved" && !present) lost++;
        if (outcomes.get(key) === "interrupted") assert.equal(present, false);
      }
      const saved = [...outcomes.values()].filter((o) => o === "saved").length;
      assert.equal(lost, 0);
      assert.equal(report.removed + report.kept, sessions);
      assert.equal(report.removed, sessions - saved);
      console.log(
        `[kv] a sweep racing ${sessions} saves: ${report.removed} removed first (their saves interrupted), ${saved} saved and kept, ${lost} saved sessions lost`,
      );
    });

    it("with a secret, a value planted under the prefix does not load as a session", async () => {
      // Records are signed by the layer withSessions puts around every
      // server-side store; KV keeps the signed text as it is.
      const store = fresh();
      const logger = new RecordingLogger();
      const secret = "kv-test-secret-0123456789abcdef0123456789";
      const handler = withSessions(async (req) => {
        const session = await getSession(req);
        if (new URL(req.url).pathname === "/login") session.set("user", "ada");
        return Response.json({ user: session.get("user") ?? null });
      }, { store, secret, logger });
      const login = await handler(request(undefined, "/login"));
      const key = cookieOf(login)!;
      const own = await handler(request(`sessionid=${key}`));
      assert.deepEqual(await own.json(), { user: "ada" }, "its own signed session loads");

      const planted = "planted0".padEnd(32, "0");
      const value = new TextEncoder().encode(`${Date.now() + HOUR}\n{"user":"admin"}`);
      await kv.set([...store.prefix, planted], value);
      const forged = await handler(request(`sessionid=${planted}`));
      assert.deepEqual(await forged.json(), { user: null });
      assert.equal(forged.headers.get("set-cookie")?.startsWith("sessionid=;"), true);
    });
  });

  describe("KvStore: two Deno processes on one local KV file", () => {
    const file = join(dir, "shared.kv");
    const running: { stop(): Promise<void> }[] = [];
    after(async () => {
      for (const child of running) await child.stop();
    });

    function childArgs(...args: string[]): string[] {
      return ["run", "--allow-all", "--unstable-kv", CHILD, ...args];
    }

    async function startServer(): Promise<string> {
      const child: ChildProcess = spawn(deno!.execPath(), childArgs("serve", file), {
        cwd: ROOT,
        stdio: ["pipe", "pipe", "inherit"],
      });
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      running.push({
        async stop() {
          child.stdin!.end();
          const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
          await exited;
          clearTimeout(timer);
        },
      });
      const port = await new Promise<string>((resolve, reject) => {
        let out = "";
        const timer = setTimeout(
          () => reject(new Error("the KV session server did not start")),
          20_000,
        );
        child.stdout!.on("data", (chunk) => {
          out += chunk.toString();
          if (out.includes("\n")) {
            clearTimeout(timer);
            resolve(out.split("\n")[0]!.trim());
          }
        });
        child.once("exit", (code) => {
          clearTimeout(timer);
          reject(new Error(`the KV session server exited with ${code}`));
        });
      });
      return `http://127.0.0.1:${port}`;
    }

    async function get(base: string, path: string, cookie?: string | null) {
      const response = await fetch(
        base + path,
        cookie ? { headers: { cookie: `sessionid=${cookie}` } } : {},
      );
      const line = response.headers.get("set-cookie");
      const value = line === null ? undefined : /^sessionid=([^;]*)/.exec(line)?.[1] || null;
      return { status: response.status, body: await response.text(), cookie: value };
    }

    function work(
      role: string,
      keysFile: string,
      start: number,
    ): Promise<{ code: number | null; out: string; err: string }> {
      return new Promise((resolve, reject) => {
        const child = spawn(
          deno!.execPath(),
          childArgs("work", file, role, keysFile, String(start)),
          {
            cwd: ROOT,
          },
        );
        let out = "";
        let err = "";
        child.stdout.on("data", (chunk) => (out += chunk));
        child.stderr.on("data", (chunk) => (err += chunk));
        const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
        child.on("error", reject);
        child.on("close", (code) => {
          clearTimeout(timer);
          resolve({ code, out, err });
        });
      });
    }

    it("share sessions: one writes, the other reads, cycles and flushes; both increment at once", async () => {
      const [a, b] = await Promise.all([startServer(), startServer()]);
      const login = await get(a, "/set?user=ada");
      const first = login.cookie!;
      assert.match(first, /^[a-z0-9]{32}$/);
      assert.deepEqual(JSON.parse((await get(b, "/get", first)).body), { user: "ada" });
      const second = (await get(b, "/cycle", first)).cookie!;
      assert.notEqual(second, first);
      assert.deepEqual(JSON.parse((await get(a, "/get", second)).body), { user: "ada" });
      const old = await get(a, "/get", first);
      assert.deepEqual([JSON.parse(old.body), old.cookie], [{}, null]);
      assert.equal((await get(a, "/flush", second)).cookie, null);
      const gone = await get(b, "/get", second);
      assert.deepEqual([JSON.parse(gone.body), gone.cookie], [{}, null]);

      const sessions = 16;
      const increments = 10;
      const counts = await Promise.all(Array.from({ length: sessions }, async (_, s) => {
        let cookie: string | undefined;
        for (let i = 0; i < increments; i++) {
          const answer = await get([a, b][(s + i) % 2]!, "/incr", cookie);
          assert.equal(answer.status, 200, answer.body);
          cookie ??= answer.cookie ?? undefined;
        }
        return JSON.parse((await get([a, b][s % 2]!, "/get", cookie)).body).n;
      }));
      assert.deepEqual(counts, Array(sessions).fill(increments));
      console.log(
        `[kv] two server processes on one KV file: ${
          sessions * increments
        } alternating increments, none lost`,
      );
    });

    it("save and delete the same sessions at once: every commit lands or is retried, none fails, none comes back", async () => {
      const shared = await deno.openKv(file);
      const store = new KvStore({ kv: shared, prefix: ["tessera", "sessions"] });
      const keys: string[] = [];
      for (let i = 0; i < 500; i++) {
        keys.push(await store.create({ data: "{}", expiresAt: Date.now() + HOUR }));
      }
      const keysFile = join(dir, "keys.txt");
      writeFileSync(keysFile, keys.join("\n"));
      // Both start at one instant, past the time a Deno process takes to start.
      const start = Date.now() + 3000;
      const [saver, deleter] = await Promise.all([
        work("save", keysFile, start),
        work("delete", keysFile, start),
      ]);
      assert.equal(saver.code, 0, saver.err);
      assert.equal(deleter.code, 0, deleter.err);
      const saved = JSON.parse(saver.out).counts;
      const { counts: deleted, created } = JSON.parse(deleter.out);
      assert.equal(saved.failed + deleted.failed, 0, saver.err + deleter.err);
      assert.equal(deleted.deleted, keys.length);
      assert.ok(saved.interrupted <= keys.length);
      let resurrected = 0;
      for (const key of keys) if (await store.exists(key)) resurrected++;
      assert.equal(resurrected, 0);
      let loaded = 0;
      for (const key of created) if ((await store.load(key))?.data === '{"by":"delete"}') loaded++;
      assert.equal(loaded, keys.length);
      console.log(
        `[kv] two processes on one KV file, ${keys.length} sessions: ${saved.saved} saves, ${saved.interrupted} interrupted by ${deleted.deleted} deletes, ${created.length} creates; ${
          saved.locked + deleted.locked
        } "database is locked" commits retried, 0 failures, ${resurrected} resurrections`,
      );
      // A store given its kv leaves it open for its owner.
      await store.close();
      assert.equal(
        (await shared.get(["tessera", "sessions", created[0]!])).versionstamp !== null,
        true,
      );
      shared.close();
    });
  });
}
