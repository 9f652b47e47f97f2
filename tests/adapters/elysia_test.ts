// The Elysia adapter on a real Elysia app, served by the runtime's own
// server with app.fetch (Deno.serve on Deno, Bun.serve on Bun).

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Elysia } from "elysia";
import { MemoryStore, type SessionOptions } from "../../mod.ts";
import { sessions } from "../../src/adapters/elysia.ts";
import { serve } from "../_server.ts";
import { adapterContract, type ContractData, type CountingStore } from "./_contract.ts";

function contractApp(store: CountingStore, options: SessionOptions) {
  return new Elysia()
    .use(sessions<ContractData>({ ...options, store }))
    .get("/count", async ({ getSession }) => {
      const session = await getSession();
      const visits = (session.get("visits") ?? 0) + 1;
      session.set("visits", visits);
      return String(visits);
    })
    .get("/read", async ({ getSession }) => String((await getSession()).get("visits") ?? 0))
    .get("/login", async ({ getSession }) => {
      const session = await getSession();
      await session.cycleKey();
      session.set("user", "ada");
      return "in";
    })
    .get("/whoami", async ({ getSession }) => (await getSession()).get("user") ?? "anonymous")
    .get("/logout", async ({ getSession }) => {
      await (await getSession()).flush();
      return "out";
    })
    .get("/fail", async ({ getSession, set }) => {
      (await getSession()).set("visits", 99);
      set.status = 500;
      return "broken";
    })
    .get("/plain", () => "plain")
    .get("/denied", async ({ getSession, status }) => {
      (await getSession()).set("visits", 5);
      return status(401, "log in first");
    })
    .get("/crash", async ({ getSession, status }) => {
      (await getSession()).set("visits", 7);
      throw status(503, "down");
    })
    .get("/interrupted", async ({ getSession }) => {
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
      .use(sessions<{ n: number }>({ store: new MemoryStore() }))
      .get("/", async ({ getSession, cookie: { theme } }) => {
        (await getSession()).set("n", 1);
        theme!.value = "dark";
        return "ok";
      });
    const response = await app.handle(new Request("http://localhost/"));
    const cookies = response.headers.getSetCookie();
    assert.equal(cookies.length, 2, cookies.join(" | "));
    assert.ok(cookies.some((line) => line.startsWith("theme=dark")));
    assert.ok(cookies.some((line) => /^sessionid=[a-z0-9]{32}; /.test(line)));
  });

  it("keeps a Vary the handler set and adds Cookie to it", async () => {
    const app = new Elysia()
      .use(sessions({ store: new MemoryStore() }))
      .get("/", async ({ getSession, set }) => {
        (await getSession()).get("theme");
        set.headers["vary"] = "Accept-Encoding";
        return "ok";
      });
    const response = await app.handle(new Request("http://localhost/"));
    assert.equal(response.headers.get("vary"), "Accept-Encoding, Cookie");
  });

  it("sets the cookie on a Response the handler returns", async () => {
    const app = new Elysia()
      .use(sessions<{ next: string }>({ store: new MemoryStore() }))
      .get("/", async ({ getSession }) => {
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
      .use(sessions<{ tries: number }>({ store }))
      .get("/", async ({ getSession, status }) => {
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
      .use(sessions<{ n: number }>({ store }))
      .get("/", async ({ getSession }) => {
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
