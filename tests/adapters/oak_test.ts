// The Oak adapter on a real Oak application, served by Oak's own listen():
// npm's @oakserver/oak 14 takes its Node server path on Deno and its Bun
// server path on Bun.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Application, type Context, type Middleware, Status } from "@oakserver/oak";
import { MemoryStore, type SessionOptions } from "../../mod.ts";
import { sessions, type SessionState } from "../../src/adapters/oak.ts";
import { listen } from "./_oak_listen.ts";
import { adapterContract, type ContractData, type CountingStore } from "./_contract.ts";

type State = SessionState<ContractData>;

function contractApp(store: CountingStore, options: SessionOptions): Application<State> {
  const routes: Record<string, Middleware<State>> = {
    "/count": async (ctx) => {
      const session = await ctx.state.getSession();
      const visits = (session.get("visits") ?? 0) + 1;
      session.set("visits", visits);
      ctx.response.body = String(visits);
    },
    "/read": async (ctx) => {
      ctx.response.body = String((await ctx.state.getSession()).get("visits") ?? 0);
    },
    "/login": async (ctx) => {
      const session = await ctx.state.getSession();
      await session.cycleKey();
      session.set("user", "ada");
      ctx.response.body = "in";
    },
    "/whoami": async (ctx) => {
      ctx.response.body = (await ctx.state.getSession()).get("user") ?? "anonymous";
    },
    "/logout": async (ctx) => {
      await (await ctx.state.getSession()).flush();
      ctx.response.body = "out";
    },
    "/fail": async (ctx) => {
      (await ctx.state.getSession()).set("visits", 99);
      ctx.response.status = 500;
      ctx.response.body = "broken";
    },
    "/plain": (ctx) => {
      ctx.response.body = "plain";
    },
    "/denied": async (ctx) => {
      (await ctx.state.getSession()).set("visits", 5);
      ctx.throw(Status.Unauthorized, "log in first");
    },
    "/crash": async (ctx) => {
      (await ctx.state.getSession()).set("visits", 7);
      ctx.throw(Status.ServiceUnavailable, "down");
    },
    "/interrupted": async (ctx) => {
      const session = await ctx.state.getSession();
      session.set("visits", (session.get("visits") ?? 0) + 1);
      await store.inner.delete(session.sessionKey!);
      ctx.response.body = "ok";
    },
  };
  const app = new Application<State>({ logErrors: false });
  app.use(sessions({ ...options, store }));
  app.use((ctx: Context<State>, next) => {
    const route = routes[ctx.request.url.pathname];
    return route === undefined ? next() : route(ctx, next);
  });
  return app;
}

adapterContract("oak", (store, options) => listen(contractApp(store, options)));

describe("oak: sessions() next to Oak's own behaviour", () => {
  it("keeps the session's headers through an error handler of the application's own", async () => {
    const app = new Application<SessionState<{ tries: number }>>({ logErrors: false });
    app.use(async (ctx, next) => {
      try {
        await next();
      } catch (error) {
        ctx.response.status = (error as { status?: number }).status ?? 500;
        ctx.response.body = "handled";
      }
    });
    app.use(sessions({ store: new MemoryStore() }));
    app.use(async (ctx) => {
      (await ctx.state.getSession()).set("tries", 1);
      ctx.throw(Status.Forbidden);
    });
    const server = await listen(app);
    try {
      const response = await fetch(server.url);
      assert.equal(response.status, 403);
      assert.equal(await response.text(), "handled");
      assert.match(response.headers.get("set-cookie")!, /^sessionid=[a-z0-9]{32}; /);
      assert.equal(response.headers.get("vary"), "Cookie");
    } finally {
      await server.close();
    }
  });

  it("serves the same app through app.handle(Request), Oak's fetch-style entry", async () => {
    const app = new Application<SessionState<{ n: number }>>();
    app.use(sessions({ store: new MemoryStore() }));
    app.use(async (ctx) => {
      const session = await ctx.state.getSession();
      session.set("n", (session.get("n") ?? 0) + 1);
      ctx.response.body = String(session.get("n"));
    });
    // Oak's types name undici's Request; the runtime's is what it gets.
    type OakRequest = Parameters<typeof app.handle>[0];
    const first = (await app.handle(new Request("http://localhost/") as unknown as OakRequest))!;
    const cookie = first.headers.get("set-cookie")!.split(";")[0]!;
    const again = new Request("http://localhost/", { headers: { cookie } });
    const second = (await app.handle(again as unknown as OakRequest))!;
    assert.equal(await second.text(), "2");
  });

  it("throws at sessions() for an invalid option, before any request", () => {
    assert.throws(() => sessions({ cookieSameSite: "Sometimes" as "Lax" }), {
      name: "TypeError",
    });
  });
});
