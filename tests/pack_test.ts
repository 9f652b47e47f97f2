// The package as a user gets it: `npm pack` builds the tarball, which is
// installed into a fresh Bun project (bun init's own tsconfig, @types/bun,
// tsc --noEmit) and a fresh Deno project (deno check). JSR is out of reach
// here; its npm layer and `deno add` install these same files.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const BIN = join(ROOT, "node_modules", ".bin");
const root = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
const tmp = mkdtempSync(join(tmpdir(), "tessera-pack-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

function run(command: string, args: string[], cwd: string, timeout = 180_000) {
  const result = spawnSync(command, args, { cwd, encoding: "utf8", timeout });
  return { code: result.status, stdout: result.stdout ?? "", stderr: result.stderr ?? "" };
}

// One program that touches every export a user imports.
const PROGRAM = `import {
  CachedStore,
  CookieStore,
  FileStore,
  getSession,
  MemoryStore,
  type SessionOptions,
  SqliteStore,
  withSessions,
} from "@tessera/sessions";
import { dumps, loads } from "@tessera/sessions/signing";
import { main } from "@tessera/sessions/clearsessions";

const options: SessionOptions = { store: new FileStore({ path: process.argv[2] ?? "." }) };
const handler = withSessions(async (req: Request) => {
  const session = await getSession<{ visits: number }>(req);
  session.set("visits", (session.get("visits") ?? 0) + 1);
  return new Response(String(session.get("visits")));
}, options);
const secret = "a secret of at least thirty-two bytes";
const signed: string = await dumps({ a: 1 }, { secret });
const back: unknown = await loads(signed, { secret });
const stores = [
  new MemoryStore(),
  new CookieStore(),
  new SqliteStore({ path: ":memory:" }),
  new CachedStore(new MemoryStore(), new MemoryStore()),
];
const response = await handler(new Request("http://localhost/"));
const code: number = await main(["--help"], { write() {}, writeError() {}, isTerminal: false });
console.log(JSON.stringify({
  body: await response.text(),
  cookie: response.headers.get("set-cookie"),
  back,
  stores: stores.length,
  code,
}));
`;

let tarball = "";
let files: string[] = [];

before(() => {
  const packed = run("npm", ["pack", "--json", "--pack-destination", tmp], ROOT);
  assert.equal(packed.code, 0, packed.stderr);
  const [info] = JSON.parse(packed.stdout);
  tarball = join(tmp, info.filename);
  files = info.files.map((file: { path: string }) => file.path);
});

describe("npm pack", () => {
  it("holds the module, its sources and docs, and nothing of development", () => {
    for (const file of files) {
      assert.match(file, /^(mod\.ts|package\.json|README\.md|LICENSE|src\/.+\.ts|docs\/.+)$/);
    }
    assert.ok(files.includes("mod.ts") && files.includes("docs/engines.md"));
    assert.equal(files.some((file) => file.includes("_test.ts")), false);
    console.log(`[pack] ${files.length} files`);
  });

  it("publishes the same files as JSR does", () => {
    const published: string[] = JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8"))
      .publish.include;
    // The file list only: `npm run check` runs the dry run with its type check.
    const dry = run(
      join(BIN, "deno"),
      ["publish", "--dry-run", "--allow-dirty", "--no-check"],
      ROOT,
    );
    assert.equal(dry.code, 0, dry.stderr);
    for (const file of files.filter((name) => name !== "package.json")) {
      assert.ok(published.some((entry) => file === entry || file.startsWith(entry)), file);
      assert.ok(`${dry.stdout}${dry.stderr}`.includes(file), `JSR would not publish ${file}`);
    }
    // The one warning: clearsessions imports the user's --config module, a
    // path known only when it runs, and Deno offers no way to mark that
    // intended (denoland/deno#22594).
    const warnings = [...`${dry.stdout}${dry.stderr}`.matchAll(/warning\[([\w-]+)\]/g)];
    assert.deepEqual(warnings.map((match) => match[1]), ["unanalyzable-dynamic-import"]);
  });
});

describe("a Bun project that installs the tarball", () => {
  const project = join(tmp, "bun-app");

  before(() => {
    mkdirSync(project);
    // What `bun init` writes, as of Bun 1.4.5.
    writeFileSync(
      join(project, "package.json"),
      JSON.stringify({ name: "bun-app", module: "index.ts", type: "module", private: true }),
    );
    writeFileSync(
      join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          lib: ["ESNext"],
          target: "ESNext",
          module: "Preserve",
          moduleDetection: "force",
          jsx: "react-jsx",
          allowJs: true,
          types: ["bun"],
          moduleResolution: "bundler",
          allowImportingTsExtensions: true,
          verbatimModuleSyntax: true,
          noEmit: true,
          strict: true,
          skipLibCheck: true,
          noFallthroughCasesInSwitch: true,
          noUncheckedIndexedAccess: true,
          noImplicitOverride: true,
        },
      }),
    );
    writeFileSync(join(project, "index.ts"), PROGRAM);
  });

  it("gets the package alone: no development dependency comes with it", () => {
    const added = run(join(BIN, "bun"), ["add", tarball], project);
    assert.equal(added.code, 0, added.stderr);
    assert.deepEqual(readdirSync(join(project, "node_modules")), ["@tessera"]);
    const size = run("du", ["-sk", join(project, "node_modules")], project);
    const kib = Number(size.stdout.split("\t")[0]);
    assert.ok(kib < 2048, `${kib} KiB`);
    console.log(`[pack] Bun project's node_modules after bun add: ${kib} KiB`);
  });

  it("runs it", () => {
    const sessions = join(tmp, "bun-sessions");
    mkdirSync(sessions);
    const result = run(join(BIN, "bun"), ["index.ts", sessions], project);
    assert.equal(result.stderr, "");
    const out = JSON.parse(result.stdout);
    assert.equal(out.body, "1");
    assert.match(out.cookie, /^sessionid=[a-z0-9]{32}; /);
    assert.deepEqual([out.back, out.stores, out.code], [{ a: 1 }, 4, 0]);
  });

  it("type-checks under tsc --noEmit with @types/bun, strict", () => {
    // The versions this repository pins, from npm's cache when it has them.
    const installed = run("npm", [
      "install",
      "--prefer-offline",
      "--no-audit",
      "--no-fund",
      "--save-dev",
      `typescript@${root.devDependencies.typescript}`,
      `@types/bun@${root.devDependencies["@types/bun"]}`,
    ], project);
    assert.equal(installed.code, 0, installed.stderr);
    const tsc = run(join(project, "node_modules", ".bin", "tsc"), ["--noEmit"], project);
    assert.equal(tsc.stdout, "");
    assert.equal(tsc.code, 0);
  });
});

describe("a Deno project that uses the tarball's files", () => {
  const project = join(tmp, "deno-app");

  before(() => {
    mkdirSync(join(project, "tessera"), { recursive: true });
    const unpacked = run("tar", ["-xzf", tarball, "-C", join(project, "tessera")], project);
    assert.equal(unpacked.code, 0, unpacked.stderr);
    // What `deno add jsr:@tessera/sessions` maps, pointed at the tarball.
    writeFileSync(
      join(project, "deno.json"),
      JSON.stringify({
        imports: {
          "@tessera/sessions": "./tessera/package/mod.ts",
          "@tessera/sessions/": "./tessera/package/",
          "@tessera/sessions/signing": "./tessera/package/src/signing.ts",
          "@tessera/sessions/clearsessions": "./tessera/package/src/cli/clearsessions.ts",
        },
      }),
    );
    writeFileSync(
      join(project, "main.ts"),
      `import process from "node:process";\n${PROGRAM}`,
    );
  });

  it("type-checks under deno check", () => {
    const checked = run(join(BIN, "deno"), ["check", "--quiet", "main.ts"], project);
    assert.equal(checked.stderr, "");
    assert.equal(checked.code, 0);
  });

  it("runs with the permissions the README gives", () => {
    const sessions = join(tmp, "deno-sessions");
    mkdirSync(sessions);
    const result = run(join(BIN, "deno"), [
      "run",
      `--allow-read=${sessions},.`,
      `--allow-write=${sessions}`,
      "main.ts",
      sessions,
    ], project);
    assert.equal(result.stderr, "");
    const out = JSON.parse(result.stdout);
    assert.equal(out.body, "1");
    assert.equal(out.code, 0);
  });
});
