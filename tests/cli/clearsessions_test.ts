// The clearsessions command: in-process through main(args, io) for every flag
// and error path, and once as a real process.

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { type CommandIo, main, type Summary, USAGE } from "../../src/cli/clearsessions.ts";
import { FileStore, Session } from "../../mod.ts";
import { sessionConfig } from "../_config.ts";
import { run } from "../_spawn.ts";

const dirs: string[] = [];
function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "tessera-cli-"));
  dirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const HOUR = 3_600_000;
const MOD = pathToFileURL(fileURLToPath(new URL("../../mod.ts", import.meta.url))).href;
const CLI = fileURLToPath(new URL("../../src/cli/clearsessions.ts", import.meta.url));

interface Result {
  code: number;
  out: string;
  err: string;
}

async function clearsessions(args: string[], io: Partial<CommandIo> = {}): Promise<Result> {
  let out = "";
  let err = "";
  const code = await main(args, {
    write: (text) => (out += text),
    writeError: (text) => (err += text),
    isTerminal: false,
    ...io,
  });
  return { code, out, err };
}

async function json(args: string[]): Promise<Summary & { code: number }> {
  const result = await clearsessions([...args, "--json"]);
  assert.equal(result.out.split("\n").length, 2, "one JSON line");
  return { ...JSON.parse(result.out), code: result.code };
}

/** A directory with one live and one expired session (and returns their keys). */
async function sessions(prefix?: string): Promise<{ dir: string; live: string; dead: string }> {
  const dir = freshDir();
  const store = new FileStore({ path: dir, ...(prefix !== undefined ? { prefix } : {}) });
  const live = await store.create({ data: "{}", expiresAt: Date.now() + HOUR });
  const dead = await store.create({ data: "{}", expiresAt: Date.now() - HOUR });
  return { dir, live, dead };
}

let configs = 0;
/** Writes a config module importing the package as `sessions`, and returns its path. */
function config(body: string): string {
  const file = join(freshDir(), `config${configs++}.ts`);
  writeFileSync(file, `import * as sessions from "${MOD}";\n${body}\n`);
  return file;
}

describe("clearsessions --help and bad command lines", () => {
  it("--help and -h print the usage, with USAGE: and OPTIONS:, and exit 0", async () => {
    for (const flag of ["--help", "-h"]) {
      const { code, out, err } = await clearsessions([flag]);
      assert.equal(code, 0);
      assert.equal(out, USAGE);
      assert.equal(err, "");
    }
    for (const section of ["USAGE:", "OPTIONS:", "EXIT CODES:"]) assert.ok(USAGE.includes(section));
    for (const flag of ["--config", "--dir", "--prefix", "--cookie-age", "--dry-run", "--json"]) {
      assert.ok(USAGE.includes(flag), flag);
    }
  });

  it("exits 2 for an unknown flag, a stray argument, or a flag without its value", async () => {
    for (const args of [["--bogus"], ["somewhere"], ["--dir"], ["--config"]]) {
      const { code, out, err } = await clearsessions(args);
      assert.equal(code, 2, args.join(" "));
      assert.equal(out, "");
      assert.match(err, /^clearsessions: .+\nRun "clearsessions --help" for usage\.\n$/);
    }
  });

  it("exits 2 for a --cookie-age that is not a whole number of seconds", async () => {
    for (const age of ["abc", "-5", "1.5", "", "99999999999999999999"]) {
      const { code, err } = await clearsessions([`--cookie-age=${age}`]);
      assert.equal(code, 2, age);
      assert.match(err, /--cookie-age must be a whole number of seconds/);
    }
  });

  it("exits 2 for --config together with --dir or --prefix", async () => {
    for (const extra of [["--dir", "."], ["--prefix", "sid"]]) {
      const { code, err } = await clearsessions(["--config", "x.ts", ...extra]);
      assert.equal(code, 2);
      assert.match(err, /--dir and --prefix describe a file store/);
    }
  });
});

describe("clearsessions on a file store (--dir, --prefix, --cookie-age)", () => {
  it("removes the expired sessions, keeps the live ones and says so", async () => {
    const { dir, live } = await sessions();
    const { code, out, err } = await clearsessions(["--dir", dir]);
    assert.equal(code, 0, err);
    assert.equal(err, "");
    assert.match(
      out,
      /^Swept FileStore sessions in '.+' \(files sessionid<key>\) in \d+ ms:\n {2}removed 1 expired session\n {2}kept 1 live session\n {2}removed 0 temp files left by interrupted writes\n$/,
    );
    assert.deepEqual(readdirSync(dir), [`sessionid${live}`]);
  });

  it("--prefix sweeps only the files with that prefix", async () => {
    const { dir, live } = await sessions("sid");
    const old = Date.now() - HOUR;
    const other = join(dir, "sessionidabcdefgh12345678");
    writeFileSync(other, `${old}\n{}`, { mode: 0o600 });
    const summary = await json(["--dir", dir, "--prefix", "sid"]);
    assert.equal(summary.code, 0);
    assert.equal(summary.prefix, "sid");
    assert.equal(summary.removed, 1);
    assert.deepEqual(readdirSync(dir).sort(), [`sid${live}`, "sessionidabcdefgh12345678"].sort());
  });

  it("--cookie-age is how long a file without a readable expiry lives after its mtime", async () => {
    const dir = freshDir();
    const file = join(dir, "sessionidabcdefgh12345678");
    writeFileSync(file, "not a session file", { mode: 0o600 });
    utimesSync(file, new Date(), new Date(Date.now() - 2 * HOUR));
    assert.equal((await json(["--dir", dir])).kept, 1, "two weeks by default");
    assert.equal((await json(["--dir", dir, "--cookie-age", "10800"])).kept, 1);
    assert.equal((await json(["--dir", dir, "--cookie-age", "3600"])).removed, 1);
    assert.deepEqual(readdirSync(dir), []);
  });

  it("--dry-run counts what it would remove and removes nothing", async () => {
    const { dir } = await sessions();
    const before = readdirSync(dir).sort();
    const { code, out } = await clearsessions(["--dir", dir, "--dry-run"]);
    assert.equal(code, 0);
    assert.match(out, /^Dry run over FileStore sessions .+; nothing was removed:\n/);
    assert.match(out, /\n {2}would remove 1 expired session\n {2}would keep 1 live session\n/);
    assert.deepEqual(readdirSync(dir).sort(), before);
    const summary = await json(["--dir", dir, "--dry-run"]);
    assert.equal(summary.dryRun, true);
    assert.equal(summary.removed, 1);
    assert.deepEqual(readdirSync(dir).sort(), before);
  });

  it("--json prints one object with every key", async () => {
    const { dir } = await sessions();
    const summary = await json(["--dir", dir]);
    const { elapsedMs, code, ...rest } = summary;
    assert.equal(code, 0);
    assert.ok(Number.isInteger(elapsedMs) && elapsedMs >= 0);
    assert.deepEqual(rest, {
      ok: true,
      engine: "FileStore",
      directory: dir,
      prefix: "sessionid",
      dryRun: false,
      expiresOnItsOwn: false,
      removed: 1,
      kept: 1,
      tempRemoved: 0,
      failed: 0,
      errors: [],
      error: null,
    });
  });

  it("exits 1 for a directory that does not exist, with a clear message (and in --json)", async () => {
    const missing = join(freshDir(), "missing");
    const { code, out, err } = await clearsessions(["--dir", missing]);
    assert.equal(code, 1);
    assert.equal(out, "");
    assert.equal(
      err,
      `clearsessions: Cannot sweep '${missing}' as it is not an existing directory\n`,
    );
    const summary = await json(["--dir", missing]);
    assert.equal(summary.code, 1);
    assert.equal(summary.ok, false);
    assert.match(summary.error!, /is not an existing directory/);
  });

  it("exits 1 for a bad prefix", async () => {
    const { code, err } = await clearsessions(["--dir", freshDir(), "--prefix", "../x"]);
    assert.equal(code, 1);
    assert.match(err, /'prefix' must hold only letters, digits/);
  });

  it("exits 1, after sweeping the rest, when a file cannot be removed", async () => {
    const dir = freshDir();
    const prefix = "p";
    const old = Date.now() - HOUR;
    for (const key of ["abcdefgh12345678abcdefgh12345678", "aaaaaaaa"]) {
      writeFileSync(join(dir, prefix + key), `${old}\n{}`, { mode: 0o600 });
    }
    // A file mounted over one of them: a mount point cannot be renamed (EBUSY).
    const mounted = join(dir, `${prefix}abcdefgh12345678abcdefgh12345678`);
    execFileSync("mount", ["--bind", join(dir, `${prefix}aaaaaaaa`), mounted]);
    try {
      const { code, out, err } = await clearsessions(["--dir", dir, "--prefix", prefix]);
      assert.equal(code, 1);
      assert.match(out, /removed 1 expired session\n/);
      assert.match(
        out,
        /\n {2}failed on 1 entry:\n {4}Cannot remove an expired session file in '.+': EBUSY\n$/,
      );
      assert.equal(err, "clearsessions: 1 entry could not be checked or removed\n");
      const summary = await json(["--dir", dir, "--prefix", prefix]);
      assert.equal(summary.ok, false);
      assert.equal(summary.failed, 1);
      assert.equal(summary.errors.length, 1);
    } finally {
      execFileSync("umount", [mounted]);
    }
  });

  it("shows progress on a terminal once a run lasts, and clears it", async () => {
    const { dir } = await sessions();
    const { out } = await clearsessions(["--dir", dir], { isTerminal: true, progressAfter: 0 });
    assert.ok(out.startsWith("\rchecked 2 files...\r\x1b[2KSwept FileStore"), JSON.stringify(out));
    const quiet = await clearsessions(["--dir", dir], { isTerminal: false, progressAfter: 0 });
    assert.ok(!quiet.out.includes("\r"));
    const asJson = await clearsessions(["--dir", dir, "--json"], {
      isTerminal: true,
      progressAfter: 0,
    });
    assert.ok(!asJson.out.includes("\r"));
  });
});

describe("clearsessions --config", () => {
  it("sweeps the store of the module's options, with the cookie name as the prefix", async () => {
    const { dir, live } = await sessions("myapp");
    const other = await sessions();
    const file = config(
      `export const options = { store: new sessions.FileStore({ path: ${
        JSON.stringify(dir)
      } }), cookieName: "myapp" };`,
    );
    const summary = await json(["--config", file]);
    assert.equal(summary.code, 0);
    assert.equal(summary.prefix, "myapp");
    assert.equal(summary.removed, 1);
    assert.deepEqual(readdirSync(dir), [`myapp${live}`]);
    assert.equal(readdirSync(other.dir).length, 2);
  });

  it("removes what expired with cookieAge 0 and keeps a custom future expiry (Django's test_clearsessions_command)", async () => {
    const dir = freshDir();
    const store = new FileStore({ path: dir });
    const keys: Record<string, string> = {};
    for (const [name, expiry] of [["future", 3600], ["past", -3600], ["none", null]] as const) {
      const session = new Session(null, sessionConfig(store, { cookieAge: 0 }));
      session.set("name", name);
      if (expiry !== null) session.setExpiry(expiry);
      await session.save();
      keys[name] = session.sessionKey!;
    }
    const module = config(
      `export default { store: new sessions.FileStore({ path: ${
        JSON.stringify(dir)
      } }), cookieAge: 0 };`,
    );
    const summary = await json(["--config", module]);
    assert.deepEqual([summary.code, summary.removed, summary.kept], [0, 2, 1]);
    assert.deepEqual(readdirSync(dir), [`sessionid${keys.future}`]);
  });

  it("takes the default export, and prefers 'options' when there are both", async () => {
    const a = await sessions();
    const b = await sessions();
    const store = (dir: string) => `new sessions.FileStore({ path: ${JSON.stringify(dir)} })`;
    assert.equal(
      (await json(["--config", config(`export default { store: ${store(a.dir)} };`)])).removed,
      1,
    );
    assert.equal(readdirSync(a.dir).length, 1);
    const both = config(
      `export default { store: ${store(a.dir)} };\nexport const options = { store: ${
        store(b.dir)
      } };`,
    );
    assert.equal((await json(["--config", both])).directory, b.dir);
    assert.equal(readdirSync(b.dir).length, 1);
  });

  it("accepts a file: URL", async () => {
    const { dir } = await sessions();
    const file = config(
      `export default { store: new sessions.FileStore({ path: ${JSON.stringify(dir)} }) };`,
    );
    assert.equal((await json(["--config", pathToFileURL(file).href])).removed, 1);
  });

  it("uses the options' cookieAge for files without a readable expiry, unless --cookie-age", async () => {
    const dir = freshDir();
    const file = join(dir, "sessionidabcdefgh12345678");
    writeFileSync(file, "garbage", { mode: 0o600 });
    utimesSync(file, new Date(), new Date(Date.now() - 2 * HOUR));
    const module = config(
      `export default { store: new sessions.FileStore({ path: ${
        JSON.stringify(dir)
      } }), cookieAge: 10800 };`,
    );
    assert.equal((await json(["--config", module])).kept, 1);
    assert.equal((await json(["--config", module, "--cookie-age", "60"])).removed, 1);
  });

  it("counts and removes stale temp files with the store's staleTempAfter", async () => {
    const dir = freshDir();
    writeFileSync(join(dir, "sessionidabcdefgh12345678.tmp-crashed00001"), "half a wri", {
      mode: 0o600,
    });
    const module = config(
      `export default { store: new sessions.FileStore({ path: ${
        JSON.stringify(dir)
      }, staleTempAfter: 0 }) };`,
    );
    const { code, out } = await clearsessions(["--config", module]);
    assert.equal(code, 0);
    assert.match(out, /removed 1 temp file left by interrupted writes\n/);
    assert.deepEqual(readdirSync(dir), []);
  });

  it("exits 1 for a module that cannot be loaded", async () => {
    const missing = join(freshDir(), "nope.ts");
    const { code, err } = await clearsessions(["--config", missing]);
    assert.equal(code, 1);
    assert.ok(err.startsWith(`clearsessions: Cannot load the config module '${missing}': `), err);
  });

  it("exits 1 for a module without options", async () => {
    const module = config("export const somethingElse = 1;");
    const summary = await json(["--config", module]);
    assert.equal(summary.code, 1);
    assert.equal(
      summary.error,
      `Cannot sweep as '${module}' exports no options: export the options object given to withSessions as 'options' or as the default export`,
    );
  });

  it("exits 1 for options withSessions would reject, saying why", async () => {
    const module = config("export default { cookieAge: -1 };");
    const { code, err } = await clearsessions(["--config", module]);
    assert.equal(code, 1);
    assert.match(
      err,
      /Cannot use the options of '.+': Cannot create sessions as 'cookieAge' must be/,
    );
    const noObject = config("export default 42;");
    assert.match(
      (await clearsessions(["--config", noObject])).err,
      /the options must be an object/,
    );
  });

  it("exits 1 for a store that cannot remove expired sessions", async () => {
    const module = config(`
      class ReadOnlyStore {
        load() { return Promise.resolve(null); }
        exists() { return Promise.resolve(false); }
        create() { return Promise.reject(new Error("read-only")); }
        save() { return Promise.reject(new Error("read-only")); }
        delete() { return Promise.resolve(); }
      }
      export default { store: new ReadOnlyStore() };`);
    const summary = await json(["--config", module]);
    assert.equal(summary.code, 1);
    assert.equal(
      summary.error,
      `Cannot sweep the store of '${module}' (ReadOnlyStore) as it has no clearExpired() method: this engine cannot remove expired sessions`,
    );
  });

  it("says a store whose sessions expire on their own has nothing to sweep, and exits 0", async () => {
    const module = config(`
      class SelfExpiringStore extends sessions.MemoryStore {
        readonly expiresOnItsOwn = true;
        clearExpired(): Promise<number> { throw new Error("never called"); }
      }
      export default { store: new SelfExpiringStore() };`);
    const { code, out, err } = await clearsessions(["--config", module]);
    assert.equal(code, 0, err);
    assert.equal(out, "SelfExpiringStore: sessions expire on their own, nothing to sweep.\n");
    const summary = await json(["--config", module]);
    assert.equal(summary.expiresOnItsOwn, true);
    assert.equal(summary.removed, 0);
    assert.equal(summary.ok, true);
  });

  it("sweeps a store that only has clearExpired(), without kept or temp counts", async () => {
    const module = config(`
      const store = new sessions.MemoryStore();
      await store.create({ data: "{}", expiresAt: Date.now() - 1000 });
      await store.create({ data: "{}", expiresAt: Date.now() + 60_000 });
      export default { store };`);
    const { code, out } = await clearsessions(["--config", module]);
    assert.equal(code, 0);
    assert.match(out, /^Swept MemoryStore sessions in \d+ ms:\n {2}removed 1 expired session\n$/);
    // The module is loaded once: the same store, already swept.
    const summary = await json(["--config", module]);
    assert.deepEqual([summary.removed, summary.kept, summary.tempRemoved], [0, null, null]);
  });

  it("exits 1 for --dry-run on a store that cannot count without removing", async () => {
    const module = config("export default { store: new sessions.MemoryStore() };");
    const { code, err } = await clearsessions(["--config", module, "--dry-run"]);
    assert.equal(code, 1);
    assert.match(
      err,
      /Cannot do a dry run with MemoryStore: it can remove expired sessions but not count them/,
    );
  });

  it("exits 1 when the store fails, with its message", async () => {
    const module = config(`
      class BrokenStore extends sessions.MemoryStore {
        clearExpired(): Promise<number> { return Promise.reject(new Error("disk on fire")); }
      }
      export default { store: new BrokenStore() };`);
    const summary = await json(["--config", module]);
    assert.equal(summary.code, 1);
    assert.equal(summary.error, "disk on fire");
    assert.equal(summary.removed, null);
  });
});

describe("clearsessions as a process", () => {
  it("sweeps, prints JSON and exits 0; exits 1 with a message for a missing directory", async () => {
    const { dir, live } = await sessions();
    // Deno runs the module with its shebang's permissions; Bun runs it as it is.
    const script = CLI;
    const ok = await run(script, ["--dir", dir, "--json"]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(JSON.parse(ok.stdout).removed, 1);
    assert.deepEqual(readdirSync(dir), [`sessionid${live}`]);
    const missing = await run(script, ["--dir", join(dir, "missing")]);
    assert.equal(missing.code, 1);
    assert.equal(missing.stdout, "");
    assert.match(
      missing.stderr,
      /^clearsessions: Cannot sweep '.+' as it is not an existing directory\n$/,
    );
    const bad = await run(script, ["--nope"]);
    assert.equal(bad.code, 2);
  });
});
