// The Elysia adapter on a real Elysia app, served by the runtime's own
// server with app.fetch (Deno.serve on Deno, Bun.serve on Bun).

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { MemoryStore, type Session, type SessionOptions } from "../../mod.ts";
import { serve } from "../_server.ts";
import { adapterContract, type ContractData, type CountingStore } from "./_contract.ts";

// Elysia's types import "bun", and with @types/bun installed that puts Bun's
// globals (and its overrides of Node's types) into the type check of every
// file checked in the same program, which `deno test tests/` makes of all of
// them. So Elysia and the adapter are loaded here by specifiers the checker
// does not follow, and typed by hand as far as these tests use them; their
// own types are checked in a program of their own by types_test.ts.
const ELYSIA: string = "elysia";
const ADAPTER: string = "../../src/adapters/elysia.ts";
// deno-lint-ignore no-explicit-any
const { Elysia }: { Elysia: new () => any } = await import(ELYSIA);
const { sessions }: { sessions: (options: SessionOptions) => unknown } = await import(ADAPTER);

// The handler's context, as far as these tests use it.
interface Context<T extends object = ContractData> {
  getSession(): Promise<Session<T>>;
  set: { status?: number; headers: Record<string, string> };
  status(code: number, body?: string): unknown;
  cookie: Record<string, { value: unknown }>;
}

function contractApp(store: CountingStore, options: SessionOptions) {
  return new Elysia()
    .use(sessions({ ...options, store }))
    .get("/count", async ({ getSession }: Context) => {
      const session = await getSession();
      const visits = (session.get("visits") ?? 0) + 1;
      session.set("visits", visits);
      return String(visits);
    })
    .get(
      "/read",
      async ({ getSession }: Context) => String((await getSession()).get("visits") ?? 0),
    )
    .get("/login", async ({ getSession }: Context) => {
      const session = await getSession();
      await session.cycleKey();
      session.set("user", "ada");
      return "in";
    })
    .get(
      "/whoami",
      async ({ getSession }: Context) => (await getSession()).get("user") ?? "anonymous",
    )
    .get("/logout", async ({ getSession }: Context) => {
      await (await getSession()).flush();
      return "out";
    })
    .get("/fail", async ({ getSession, set }: Context) => {
      (await getSession()).set("visits", 99);
      set.status = 500;
      return "broken";
    })
    .get("/plain", () => "plain")
    .get("/denied", async ({ getSession, status }: Context) => {
      (await getSession()).set("visits", 5);
      return status(401, "log in first");
    })
    .get("/crash", async ({ getSession, status }: Context) => {
      (await getSession()).set("visits", 7);
      throw status(503, "down");
    })
    .get("/interrupted", async ({ getSession }: Context) => {
      const session = await getSession();
      session.set("visits", (session.get("visits") ?? 0) + 1);
      await store.inner.delete(session.sessionKey!);
      return "ok";
    });
}

adapterContract(
  "elysia",
  (store, options) => Promise.resolve(serve(contractApp(store, options).fetch)),
);

describe("elysia: sessions() next to Elysia's own behaviour", () => {
  it("keeps a cookie the handler set with Elysia's cookie jar next to the session's", async () => {
    const app = new Elysia()
      .use(sessions({ store: new MemoryStore() }))
      .get("/", async ({ getSession, cookie: { theme } }: Context<{ n: number }>) => {
        (await getSession()).set("n", 1);
        theme!.value = "dark";
        return "ok";
      });
    const response = await app.handle(new Request("http://localhost/"));
    const cookies = response.headers.getSetCookie();
    assert.equal(cookies.length, 2, cookies.join(" | "));
    assert.ok(cookies.some((line: string) => line.startsWith("theme=dark")));
    assert.ok(cookies.some((line: string) => /^sessionid=[a-z0-9]{32}; /.test(line)));
  });

  it("keeps a Vary the handler set and adds Cookie to it", async () => {
    const app = new Elysia()
      .use(sessions({ store: new MemoryStore() }))
      .get("/", async ({ getSession, set }: Context<{ theme: string }>) => {
        (await getSession()).get("theme");
        set.headers["vary"] = "Accept-Encoding";
        return "ok";
      });
    const response = await app.handle(new Request("http://localhost/"));
    assert.equal(response.headers.get("vary"), "Accept-Encoding, Cookie");
  });

  it("sets the cookie on a Response the handler returns", async () => {
    const app = new Elysia()
      .use(sessions({ store: new MemoryStore() }))
      .get("/", async ({ getSession }: Context<{ next: string }>) => {
        (await getSession()).set("next", "/home");
        return Response.redirect("http://localhost/home", 302);
      });
    const response = await app.handle(new Request("http://localhost/"));
    assert.equal(response.status, 302);
    assert.match(response.headers.get("set-cookie")!, /^sessionid=[a-z0-9]{32}; /);
  });

  it("saves on a 4xx status(...) the handler throws, and sends the cookie with Elysia's answer", async () => {
    const store = new MemoryStore();
    const app = new Elysia()
      .use(sessions({ store }))
      .get("/", async ({ getSession, status }: Context<{ tries: number }>) => {
        (await getSession()).set("tries", 1);
        throw status(403, "no");
      });
    const response = await app.handle(new Request("http://localhost/"));
    assert.equal(response.status, 403);
    assert.equal(await response.text(), "no");
    assert.match(response.headers.get("set-cookie")!, /^sessionid=[a-z0-9]{32}; /);
    assert.equal(response.headers.get("vary"), "Cookie");
    assert.equal(store.size, 1);
  });

  it("saves nothing when the handler throws an Error Elysia answers with 500", async () => {
    const store = new MemoryStore();
    const app = new Elysia()
      .use(sessions({ store }))
      .get("/", async ({ getSession }: Context<{ n: number }>) => {
        (await getSession()).set("n", 1);
        throw new Error("boom");
      });
    const response = await app.handle(new Request("http://localhost/"));
    assert.equal(response.status, 500);
    assert.equal(response.headers.get("set-cookie"), null);
    assert.equal(store.size, 0);
  });

  it("throws at sessions() for an invalid option, before any request", () => {
    assert.throws(() => sessions({ cookieAge: -5 }), {
      name: "RangeError",
      message: /'cookieAge'/,
    });
  });
});
