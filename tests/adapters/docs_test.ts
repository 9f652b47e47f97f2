// Every example in docs/frameworks.md, as written there: extracted, type
// checked, imported and served on loopback, then driven through a visit,
// a refused page, a login, and a logout.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Browser } from "../_browser.ts";
import { serve, type TestServer } from "../_server.ts";
import { listen } from "./_oak_listen.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const doc = readFileSync(join(root, "docs", "frameworks.md"), "utf8");

// The ```ts block under each "## <framework>" heading. The Oak and Elysia
// blocks carry a file name after "ts", which keeps them out of
// tests/docs_test.ts: that one runs each block (Oak's would listen forever)
// and checks them all in one program (Elysia's types bring @types/bun's
// globals into it; see elysia_test.ts). They are checked and run here.
function example(heading: string): string {
  const section = doc.split(/^## /m).find((part) => part.startsWith(`${heading}\n`));
  const code = section === undefined ? undefined : /```ts[^\n]*\n([\s\S]*?)```/.exec(section)?.[1];
  if (code === undefined) {
    throw new Error(`Cannot find the ${heading} example in docs/frameworks.md`);
  }
  return code;
}

// Inside the repository, so that "@tessera/sessions/..." and the
// frameworks resolve as they do for a user's app.
const dir = mkdtempSync(join(root, "tests", "adapters", ".docs-"));
const files = {
  hono: join(dir, "hono_app.ts"),
  oak: join(dir, "oak_app.ts"),
  elysia: join(dir, "elysia_app.ts"),
};
writeFileSync(files.hono, example("Hono"));
writeFileSync(files.oak, example("Oak"));
writeFileSync(files.elysia, example("Elysia"));
after(() => rmSync(dir, { recursive: true, force: true }));

type Start = () => Promise<TestServer>;
const starts: Record<keyof typeof files, Start> = {
  hono: async () => serve((await import(pathToFileURL(files.hono).href)).default.fetch),
  oak: async () => await listen((await import(pathToFileURL(files.oak).href)).app),
  elysia: async () => serve((await import(pathToFileURL(files.elysia).href)).default.fetch),
};

describe("docs/frameworks.md", () => {
  before(() => {
    const deno = join(root, "node_modules", ".bin", "deno");
    // Elysia's example in a program of its own, away from @types/bun's
    // globals' reach.
    for (const group of [[files.hono, files.oak], [files.elysia]]) {
      const check = spawnSync(deno, ["check", ...group], { cwd: root, encoding: "utf8" });
      assert.equal(check.status, 0, `deno check of the examples failed:\n${check.stderr}`);
    }
  });

  for (const [name, start] of Object.entries(starts)) {
    it(`the ${name} example counts visits, refuses /account, logs in with a new key and out`, async () => {
      const server = await start();
      try {
        const browser = new Browser(server.url);
        const first = await browser.text("/");
        assert.equal(first.body, "anonymous: 1");
        const key = browser.cookies.get("sessionid");
        assert.match(key!, /^[a-z0-9]{32}$/);

        const refused = await browser.fetch("/account");
        assert.equal(refused.status, 401);
        assert.match(await refused.text(), /log in first/);
        assert.match(refused.headers.get("vary")!, /\bCookie\b/);

        assert.equal((await browser.text("/login", { method: "POST" })).body, "logged in");
        assert.notEqual(browser.cookies.get("sessionid"), key, "a new key at login");
        assert.equal((await browser.text("/")).body, "ada: 2");
        assert.equal((await browser.text("/account")).body, "account of ada");

        const out = await browser.text("/logout", { method: "POST" });
        assert.equal(out.body, "logged out");
        assert.match(
          out.response.headers.get("set-cookie")!,
          /^sessionid=; Expires=Thu, 01 Jan 1970/,
        );
        assert.equal(browser.cookies.size, 0);
        assert.equal((await browser.text("/")).body, "anonymous: 1");
        await browser.text("/logout", { method: "POST" });
      } finally {
        await server.close();
      }
    });
  }
});
