// The Hono adapter on a real Hono app, served on loopback by the runtime.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { MemoryStore, type SessionOptions } from "../../mod.ts";
import { sessions, type SessionVariables } from "../../src/adapters/hono.ts";
import { serve } from "../_server.ts";
import { adapterContract, type ContractData, type CountingStore } from "./_contract.ts";

function contractApp(
  store: CountingStore,
  options: SessionOptions,
): Hono<{ Variables: SessionVariables<ContractData> }> {
  const app = new Hono().use(sessions<ContractData>({ ...options, store }));
  app.get("/count", async (c) => {
    const session = await c.var.getSession();
    const visits = (session.get("visits") ?? 0) + 1;
    session.set("visits", visits);
    return c.text(String(visits));
  });
  app.get("/read", async (c) => c.text(String((await c.var.getSession()).get("visits") ?? 0)));
  app.get("/login", async (c) => {
    const session = await c.var.getSession();
    await session.cycleKey();
    session.set("user", "ada");
    return c.text("in");
  });
  app.get("/whoami", async (c) => c.text((await c.var.getSession()).get("user") ?? "anonymous"));
  app.get("/logout", async (c) => {
    await (await c.var.getSession()).flush();
    return c.text("out");
  });
  app.get("/fail", async (c) => {
    (await c.var.getSession()).set("visits", 99);
    return c.text("broken", 500);
  });
  app.get("/plain", (c) => c.text("plain"));
  app.get("/denied", async (c) => {
    (await c.var.getSession()).set("visits", 5);
    throw new HTTPException(401, { message: "log in first" });
  });
  app.get("/crash", async (c) => {
    (await c.var.getSession()).set("visits", 7);
    throw new HTTPException(503, { message: "down" });
  });
  app.get("/interrupted", async (c) => {
    const session = await c.var.getSession();
    session.set("visits", (session.get("visits") ?? 0) + 1);
    await store.inner.delete(session.sessionKey!);
    return c.text("ok");
  });
  return app;
}

adapterContract(
  "hono",
  (store, options) => Promise.resolve(serve(contractApp(store, options).fetch)),
);

describe("hono: sessions() next to Hono's own behaviour", () => {
  it("keeps a Vary the handler set and adds Cookie to it", async () => {
    const app = new Hono().use(sessions({ store: new MemoryStore() }));
    app.get("/", async (c) => {
      (await c.var.getSession()).get("theme");
      c.header("Vary", "Accept-Encoding");
      return c.text("ok");
    });
    const response = await app.request("/");
    assert.equal(response.headers.get("vary"), "Accept-Encoding, Cookie");
  });

  it("sets the cookie on a response with immutable headers (Response.redirect)", async () => {
    const app = new Hono().use(sessions({ store: new MemoryStore() }));
    app.get("/", async (c) => {
      (await c.var.getSession()).set("next", "/home");
      return Response.redirect("http://localhost/home", 302);
    });
    const response = await app.request("/");
    assert.equal(response.status, 302);
    assert.match(response.headers.get("set-cookie")!, /^sessionid=[a-z0-9]{32}; /);
  });

  it("gives the same session to every getSession() of a request, and to a later middleware", async () => {
    const app = new Hono().use(sessions<{ n: number }>({ store: new MemoryStore() }));
    app.use(async (c, next) => {
      (await c.var.getSession()).set("n", 1);
      await next();
    });
    app.get("/", async (c) => {
      const [a, b] = await Promise.all([c.var.getSession(), c.var.getSession()]);
      assert.equal(a, b);
      return c.text(String(a.get("n")));
    });
    assert.equal(await (await app.request("/")).text(), "1");
  });

  it("throws at sessions() for an invalid option, before any request", () => {
    assert.throws(() => sessions({ cookieAge: -5 }), {
      name: "RangeError",
      message: /'cookieAge'/,
    });
  });
});
