// The session's data type reaches each framework's context: Hono's
// Variables, Oak's state, Elysia's derive. `deno check` (npm run check)
// fails if a line marked @ts-expect-error stops being an error; the
// runtime asserts hold too.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Hono } from "hono";
import { Application, type Context } from "@oakserver/oak";
import { MemoryStore, type Session } from "../../mod.ts";
import { sessions as honoSessions, type SessionVariables } from "../../src/adapters/hono.ts";
import { sessions as oakSessions, type SessionState } from "../../src/adapters/oak.ts";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

interface Account {
  userId: string;
  roles: string[];
}

describe("adapter types: Session<T> in the framework's context", () => {
  it("flows into Hono's Variables, chained or declared", async () => {
    const chained = new Hono().use(honoSessions<Account>({ store: new MemoryStore() }));
    chained.get("/", async (c) => {
      const session: Session<Account> = await c.var.getSession();
      // @ts-expect-error a number is not a string
      session.set("userId", 42);
      session.set("userId", "42");
      // @ts-expect-error not a key of Account
      session.get("userID");
      const roles: string[] = session.get("roles", []);
      return c.json({ id: session.get("userId"), roles });
    });
    const declared = new Hono<{ Variables: SessionVariables<Account> }>();
    declared.use(honoSessions<Account>({ store: new MemoryStore() }));
    declared.get("/", async (c) => {
      const session = await c.get("getSession")();
      // @ts-expect-error userId holds a string, not a number
      const wrong: number | undefined = session.get("userId");
      return c.text(String(wrong ?? "none"));
    });
    assert.deepEqual(await (await chained.request("/")).json(), { id: "42", roles: [] });
    assert.equal(await (await declared.request("/")).text(), "none");
  });

  it("flows into Oak's ctx.state", async () => {
    const app = new Application<SessionState<Account>>();
    app.use(oakSessions({ store: new MemoryStore() }));
    app.use(async (ctx: Context<SessionState<Account>>) => {
      const session: Session<Account> = await ctx.state.getSession();
      // @ts-expect-error not a key of Account
      session.set("userID", "42");
      // @ts-expect-error a string is not a string[]
      session.set("roles", "admin");
      session.set("roles", ["admin"]);
      ctx.response.body = session.get("roles") ?? [];
    });
    type OakRequest = Parameters<typeof app.handle>[0];
    const response = await app.handle(new Request("http://localhost/") as unknown as OakRequest);
    assert.deepEqual(await response!.json(), ["admin"]);
  });

  it("flows into Elysia's derived context (checked in a program of its own)", () => {
    // Elysia's types import "bun", which brings @types/bun's globals into
    // every file of the program that checks them (see elysia_test.ts): this
    // one gets a program of its own.
    const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
    const dir = mkdtempSync(join(root, "tests", "adapters", ".types-"));
    try {
      const file = join(dir, "elysia_types.ts");
      const deno = join(root, "node_modules", ".bin", "deno");
      writeFileSync(file, ELYSIA_TYPES);
      const checked = spawnSync(deno, ["check", "--quiet", file], { cwd: root, encoding: "utf8" });
      assert.equal(checked.status, 0, checked.stderr);
      // Without its marker, a wrong value type is an error deno check reports.
      writeFileSync(
        file,
        ELYSIA_TYPES.replace("// @ts-expect-error a number is not a string\n", ""),
      );
      const wrong = spawnSync(deno, ["check", "--quiet", file], { cwd: root, encoding: "utf8" });
      assert.notEqual(wrong.status, 0);
      assert.match(wrong.stderr, /TS2345/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("types the context of a handler without the plugin as lacking getSession", () => {
    new Hono().get("/", (c) => {
      // @ts-expect-error no sessions() middleware, no getSession variable
      const missing: () => Promise<Session> = c.var.getSession;
      return c.text(typeof missing);
    });
    assert.ok(true);
  });
});

const ELYSIA_TYPES = `import assert from "node:assert/strict";
import { Elysia } from "elysia";
import { MemoryStore, type Session } from "@tessera/sessions";
import { sessions } from "@tessera/sessions/elysia";

interface Account {
  userId: string;
  roles: string[];
}

const app = new Elysia()
  .use(sessions<Account>({ store: new MemoryStore() }))
  .get("/", async ({ getSession }) => {
    const session: Session<Account> = await getSession();
    // @ts-expect-error not a key of Account
    session.get("userID");
    // @ts-expect-error a number is not a string
    session.set("userId", 42);
    session.set("userId", "7");
    const id: string | undefined = session.get("userId");
    return id ?? "none";
  });
assert.equal(await (await app.handle(new Request("http://localhost/"))).text(), "7");

new Elysia().get("/", (context) => {
  // @ts-expect-error no sessions() plugin, no getSession
  return typeof context.getSession;
});
`;
