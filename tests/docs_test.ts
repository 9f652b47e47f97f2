// Every code block of the README and of docs/ runs or type-checks as written,
// and every command in them works on a machine with only Node and npm (deno
// and bun come from this clone's node_modules, through npx and npm scripts).
// Install lines name registries out of reach here: pack_test.ts checks what
// they install, from an `npm pack` tarball.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const BIN = join(ROOT, "node_modules", ".bin");
const DENO = join(BIN, "deno");
const TSC = join(BIN, "tsc");

interface Block {
  file: string;
  line: number;
  lang: string;
  code: string;
}

function blocks(file: string): Block[] {
  const found: Block[] = [];
  const lines = readFileSync(join(ROOT, file), "utf8").split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)$/.exec(lines[i]!);
    if (open === null) continue;
    const start = i;
    const code: string[] = [];
    while (++i < lines.length && lines[i] !== "```") code.push(lines[i]!);
    found.push({ file, line: start + 1, lang: open[1]!, code: `${code.join("\n")}\n` });
  }
  return found;
}

const PAGES = [
  "README.md",
  ...readdirSync(join(ROOT, "docs")).filter((name) => name.endsWith(".md")).map((name) =>
    `docs/${name}`
  ),
];
const ALL = PAGES.flatMap(blocks);
const where = (block: Block) => `${block.file}:${block.line}`;

// A machine with only Node and npm: no deno or bun on the PATH.
const NODE_ONLY_PATH = (process.env.PATH ?? "").split(delimiter).filter((dir) =>
  !existsSync(join(dir, "deno")) && !existsSync(join(dir, "bun"))
).join(delimiter);

function sh(
  command: string,
  options: { cwd: string; env?: Record<string, string>; path?: string },
): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync("sh", ["-c", command], {
    cwd: options.cwd,
    encoding: "utf8",
    env: { ...process.env, PATH: options.path ?? NODE_ONLY_PATH, ...options.env },
    timeout: 120_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

// Snippets are written beside each other under the repository, so that
// "@tessera/sessions" resolves through deno.json (as `deno add` maps it) and
// a snippet starting with `// name.ts` can be imported by that name.
const scratch = join(ROOT, ".test-results", `docs-${process.pid}`);
const tmp = mkdtempSync(join(tmpdir(), "tessera-docs-"));
before(() => mkdirSync(join(scratch, "sessions"), { recursive: true }));
after(() => {
  rmSync(scratch, { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true });
});

const TS = ALL.filter((block) => block.lang === "ts");
const isBun = (block: Block) => /\bBun\.|from "bun"/.test(block.code);
function fileOf(block: Block, index: number): string {
  const named = /^\/\/ ([\w.]+\.ts)\n/.exec(block.code);
  return named?.[1] ?? `${block.file.replace(/\W/g, "_")}_${block.line}_${index}.ts`;
}

describe("the README's first screen", () => {
  const head = readFileSync(join(ROOT, "README.md"), "utf8").split("\n").slice(0, 30).join("\n");

  it("says what Tessera is, how to install it, an example and the two clone commands", () => {
    assert.match(head, /^# Tessera\n\nDjango's session framework/);
    assert.match(head, /deno add jsr:@tessera\/sessions/);
    assert.match(head, /bunx jsr add @tessera\/sessions/);
    assert.match(head, /```ts\nimport \{ getSession, withSessions \} from "@tessera\/sessions";/);
    assert.match(head, /npm ci && npm start/);
    assert.match(head, /npm ci && npm test/);
    const example = TS[0]!;
    assert.equal(example.file, "README.md");
    assert.equal(example.code.trim().split("\n").length, 8);
  });

  it("names the package JSR publishes", () => {
    const deno = JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8"));
    assert.equal(deno.name, "@tessera/sessions");
    for (const block of ALL) {
      for (const [, name] of block.code.matchAll(/from "(@tessera\/[^"]+)"/g)) {
        const sub = name!.replace("@tessera/sessions", ".");
        assert.ok(sub in deno.exports, `${where(block)} imports ${name}, not exported`);
      }
    }
  });

  it("has no list of missed internal targets", () => {
    assert.doesNotMatch(readFileSync(join(ROOT, "README.md"), "utf8"), /Missed:/);
  });
});

describe("the code blocks", () => {
  it("type-check: Deno's under deno check, Bun's under tsc with @types/bun", () => {
    const deno: string[] = [];
    const bun: string[] = [];
    TS.forEach((block, index) => {
      const name = fileOf(block, index);
      writeFileSync(join(scratch, name), block.code);
      (isBun(block) ? bun : deno).push(name);
    });
    const checked = spawnSync(DENO, ["check", "--quiet", "--unstable-cron", ...deno], {
      cwd: scratch,
      encoding: "utf8",
    });
    assert.equal(checked.stderr, "");
    assert.equal(checked.status, 0);

    writeFileSync(
      join(scratch, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          lib: ["ESNext"],
          target: "ESNext",
          module: "Preserve",
          moduleResolution: "bundler",
          types: ["bun"],
          allowImportingTsExtensions: true,
          noEmit: true,
          strict: true,
          skipLibCheck: true,
          paths: { "@tessera/sessions": ["../../mod.ts"] },
        },
        files: bun,
      }),
    );
    const tsc = spawnSync(TSC, ["-p", "."], { cwd: scratch, encoding: "utf8" });
    assert.equal(tsc.stdout, "");
    assert.equal(tsc.status, 0);
    console.log(`[docs] ${deno.length} Deno and ${bun.length} Bun snippets type-check`);
  });

  it("run, where they neither serve forever nor need a Redis server", () => {
    let ran = 0;
    TS.forEach((block, index) => {
      if (isBun(block) || /serve\(|Deno\.cron|createClient|new Redis\(/.test(block.code)) return;
      const name = fileOf(block, index);
      const result = spawnSync(DENO, ["run", "--allow-all", "--quiet", name], {
        cwd: scratch,
        encoding: "utf8",
        // The Bun command file sweeps the OS temp dir: a private one.
        env: { ...process.env, TMPDIR: tmp },
        timeout: 30_000,
      });
      assert.equal(result.status, 0, `${where(block)}: ${result.stderr}`);
      ran++;
    });
    assert.ok(ran >= 3);
    console.log(`[docs] ${ran} snippets ran`);
  });

  it("the README's handler logs in with a new key and logs out", async () => {
    const index = TS.findIndex((block) => block.code.includes("export default { fetch"));
    const module = await import(join(scratch, fileOf(TS[index]!, index)));
    const fetch = module.default.fetch as (req: Request) => Promise<Response>;
    const login = await fetch(new Request("http://localhost/login"));
    assert.equal(await login.text(), "Hello, ada");
    const cookie = login.headers.get("set-cookie")!;
    assert.match(cookie, /^sessionid=[a-z0-9]{32}; Path=\/; HttpOnly; SameSite=Lax$/);
    const out = await fetch(
      new Request("http://localhost/logout", { headers: { cookie: cookie.split(";")[0]! } }),
    );
    assert.equal(await out.text(), "Hello, stranger");
    assert.match(out.headers.get("set-cookie")!, /^sessionid=; expires=Thu, 01 Jan 1970/i);
  });

  it("JSON blocks parse", () => {
    for (const block of ALL.filter((b) => b.lang === "json")) JSON.parse(block.code);
  });
});

describe("the commands", () => {
  const commands = ALL.filter((block) => block.lang === "sh").flatMap((block) =>
    block.code.trim().split("\n").map((line) => ({
      block,
      line: line.replace(/\s+#.*$/, "").trim(),
    }))
  );

  it("are all known to this test", () => {
    const known = [
      /^deno add jsr:@tessera\/sessions$/, // pack_test.ts
      /^bunx jsr add @tessera\/sessions$/, // pack_test.ts
      /^npm ci && npm (start|test)$/, // below; npm test is this suite, run by .ci/run
      /^npx deno task -q clearsessions --dry-run$/,
      /^npm run clearsessions -- --json$/,
      /^deno run --allow-net --allow-env=TMPDIR,TMP,TEMP --allow-read="\$\{TMPDIR:-\/tmp\}" --allow-write="\$\{TMPDIR:-\/tmp\}" server\.ts$/,
      /^systemctl enable --now myapp-clearsessions\.timer$/, // needs systemd
      /^journalctl -u myapp-clearsessions$/, // needs systemd
    ];
    for (const { block, line } of commands) {
      assert.ok(known.some((pattern) => pattern.test(line)), `${where(block)}: ${line}`);
    }
  });

  it("npm start serves the demo with the permissions it declares", async () => {
    await startDemo("npm", ["start"]);
  });

  it("the deno tasks reach the npm scripts (deno runs `npm run x` itself unless given --)", async () => {
    const tasks: Record<string, string> =
      JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8")).tasks;
    for (const [name, command] of Object.entries(tasks)) {
      if (name === "clearsessions") continue; // run below, through its shebang
      assert.match(command, /^npm (start|test|run [\w:]+) --$/, name);
    }
    await startDemo("npx", ["deno", "task", "start:bun"]);
  });

  it("clearsessions runs from npx and npm on the OS temp dir, with clean JSON", () => {
    const dry = sh("npx deno task -q clearsessions --dry-run", { cwd: ROOT, env: { TMPDIR: tmp } });
    assert.equal(dry.code, 0, dry.stderr);
    assert.equal(dry.stderr, "");
    assert.match(dry.stdout, new RegExp(`^Dry run over FileStore sessions in '${tmp}'`));
    const json = sh("npm run --silent clearsessions -- --json", {
      cwd: ROOT,
      env: { TMPDIR: tmp },
    });
    assert.equal(json.code, 0, json.stderr);
    assert.equal(JSON.parse(json.stdout).directory, tmp);
    // The README's line, verbatim: npm prints its own banner, then the JSON line.
    const verbatim = sh("npm run clearsessions -- --json", { cwd: ROOT, env: { TMPDIR: tmp } });
    assert.equal(verbatim.code, 0);
    assert.equal(JSON.parse(verbatim.stdout.trim().split("\n").at(-1)!).ok, true);
  });

  it("the Deno permission line is enough for the default engine", () => {
    const server = join(scratch, "server.ts");
    writeFileSync(
      server,
      `import { withSessions } from "@tessera/sessions";
const handler = withSessions((req: Request) => import("@tessera/sessions").then(async (m) => {
  (await m.getSession(req)).set("n", 1);
  return new Response("ok");
}));
const response = await handler(new Request("http://localhost/"));
console.log(response.headers.get("set-cookie"));
`,
    );
    const line = commands.find(({ line }) => line.startsWith("deno run --allow-net"))!.line;
    const result = sh(line, {
      cwd: scratch,
      env: { TMPDIR: tmp },
      path: `${BIN}${delimiter}${NODE_ONLY_PATH}`,
    });
    assert.equal(result.stderr, "");
    const key = /^sessionid=([a-z0-9]{32});/.exec(result.stdout)![1];
    assert.ok(existsSync(join(tmp, `sessionid${key}`)));
  });
});

// Runs a command that starts the demo on a port the OS picks, fetches its
// first page, and stops it.
async function startDemo(command: string, args: string[]): Promise<void> {
  const child = spawn(command, args, {
    cwd: ROOT,
    env: { ...process.env, PATH: NODE_ONLY_PATH, PORT: "0", TMPDIR: tmp },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout!.setEncoding("utf8").on("data", (text: string) => {
        out += text;
        const found = /Tessera demo on (http:\S+)/.exec(out);
        if (found) resolve(found[1]!);
      });
      child.on("exit", (code) => reject(new Error(`${command} exited with ${code}: ${out}`)));
    });
    const response = await fetch(url);
    assert.equal(response.status, 200);
    assert.match(await response.text(), /visited this page <strong>1<\/strong> time/);
    const key = /^sessionid=([a-z0-9]{32})/.exec(response.headers.get("set-cookie")!)![1];
    assert.ok(existsSync(join(tmp, `sessionid${key}`)));
  } finally {
    process.kill(-child.pid!, "SIGTERM");
  }
}

describe("clearsessions in a project of one's own, as docs/clearsessions.md sets it up", () => {
  const project = join(tmp, "myapp");
  const page = ALL.filter((block) => block.file === "docs/clearsessions.md");
  const config = page.find((block) => block.code.startsWith("// sessions.config.ts"))!;
  const task = page.find((block) => block.code.includes('"tasks"'))!;
  const cron = page.find((block) => block.lang === "cron")!;
  const unit = page.find((block) => block.code.includes("ExecStart="))!;

  before(() => {
    mkdirSync(join(project, "sessions"), { recursive: true });
    writeFileSync(join(project, "sessions.config.ts"), config.code);
    // JSR is out of reach here: the task runs the same modules, copied into
    // the project (a remote module, like JSR's, needs no read permission).
    cpSync(join(ROOT, "mod.ts"), join(project, "vendor", "mod.ts"));
    cpSync(join(ROOT, "src"), join(project, "vendor", "src"), { recursive: true });
    const tasks = JSON.parse(task.code).tasks;
    tasks.clearsessions = tasks.clearsessions.replace(
      "jsr:@tessera/sessions/clearsessions",
      "./vendor/src/cli/clearsessions.ts",
    );
    writeFileSync(
      join(project, "deno.json"),
      JSON.stringify({ tasks, imports: { "@tessera/sessions": "./vendor/mod.ts" } }),
    );
    // An expired session, and a live one.
    const write = (key: string, expiresAt: number) =>
      writeFileSync(join(project, "sessions", `myapp${key}`), `${expiresAt}\n{}`, { mode: 0o600 });
    write("a".repeat(32), Date.now() - 60_000);
    write("b".repeat(32), Date.now() + 3_600_000);
  });

  it("the cron line appends one clean JSON line per run", () => {
    const command = cron.code.trim().split(/\s+/).slice(5).join(" ")
      .replace("/srv/myapp", project)
      .replace("/var/log/myapp/clearsessions.log", join(project, "clearsessions.log"));
    for (let run = 0; run < 2; run++) {
      const result = sh(command, { cwd: tmp, path: `${BIN}${delimiter}${NODE_ONLY_PATH}` });
      assert.equal(result.stderr, "");
      assert.equal(result.code, 0);
    }
    const lines = readFileSync(join(project, "clearsessions.log"), "utf8").trim().split("\n");
    assert.equal(lines.length, 2);
    const [first, second] = lines.map((text) => JSON.parse(text));
    assert.deepEqual([first.ok, first.removed, first.kept], [true, 1, 1]);
    assert.deepEqual([second.ok, second.removed, second.kept], [true, 0, 1]);
    assert.equal(first.prefix, "myapp");
  });

  it("the systemd unit's command prints JSON only", () => {
    const exec = /^ExecStart=\S+\/deno (.+)$/m.exec(unit.code)![1]!;
    const result = spawnSync(DENO, exec.split(" "), { cwd: project, encoding: "utf8" });
    assert.equal(result.stderr, "");
    assert.equal(JSON.parse(result.stdout).ok, true);
  });
});

describe("links", () => {
  // Written by the security work, merged beside this page.
  const PENDING = ["docs/security.md"];

  it("point to files that are published, or to the web", () => {
    const published: string[] = JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8"))
      .publish.include;
    let checked = 0;
    for (const page of PAGES) {
      const text = readFileSync(join(ROOT, page), "utf8");
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^https?:/.test(target!) || target!.startsWith("#")) continue;
        const path = join(dirname(page), target!.split("#")[0]!).replace(/\\/g, "/");
        assert.ok(
          published.some((entry) => path === entry || path.startsWith(entry)),
          `${page} links to ${target}, which JSR does not publish`,
        );
        if (!PENDING.includes(path)) {
          assert.ok(existsSync(join(ROOT, path)), `${page} links to ${target}: missing`);
        }
        checked++;
      }
    }
    console.log(`[docs] ${checked} relative links, all published`);
  });
});
