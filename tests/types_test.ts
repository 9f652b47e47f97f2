// Session<T> types the data, and withSessions keeps the handler's return
// type. `deno check` (npm run check) fails if a line marked @ts-expect-error
// stops being an error; the runtime asserts hold too.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  getSession,
  MemoryStore,
  type Session,
  sessionCookieHeader,
  withSessions,
} from "../mod.ts";

interface Account {
  userId: string;
  roles: string[];
}

describe("Session<T>", () => {
  it("types get, set, pop and setDefault by key", async () => {
    const handler = withSessions(async (req) => {
      const session: Session<Account> = await getSession<Account>(req);
      session.set("userId", "42");
      session.set("roles", ["admin"]);
      // @ts-expect-error undefined is not a string
      assert.throws(() => session.set("userId", undefined));
      // @ts-expect-error not a key of Account
      session.get("userID");
      const id: string | undefined = session.get("userId");
      const roles: string[] = session.get("roles", []);
      const popped: string[] | undefined = session.pop("roles");
      const kept: string = session.setDefault("userId", "7");
      return Response.json({ id, roles, popped, kept });
    }, { store: new MemoryStore() });
    const body = await (await handler(new Request("http://localhost/"))).json();
    assert.deepEqual(body, { id: "42", roles: ["admin"], popped: ["admin"], kept: "42" });
  });

  it("defaults to string keys with unknown values", async () => {
    const handler = withSessions(async (req) => {
      const session = await getSession(req);
      session.set("anything", { nested: [1] });
      const value: unknown = session.get("anything");
      return Response.json(value);
    }, { store: new MemoryStore() });
    assert.deepEqual(await (await handler(new Request("http://localhost/"))).json(), {
      nested: [1],
    });
  });
});

// What Bun passes a fetch handler as its second argument, as far as these
// tests use it.
interface UpgradingServer {
  upgrade(req: Request, options?: { headers?: HeadersInit }): boolean;
}

describe("withSessions(): the wrapped handler's type", () => {
  it("keeps Promise<Response> for a handler that always returns a Response (Deno.serve)", async () => {
    const wrapped = withSessions(async (req) => {
      (await getSession(req)).set("x", 1);
      return new Response("ok");
    }, { store: new MemoryStore() });
    const forDeno: (req: Request, info: Deno.ServeHandlerInfo) => Response | Promise<Response> =
      wrapped;
    const response: Response = await wrapped(new Request("http://localhost/"));
    assert.equal(response.status, 200);
    assert.equal(typeof forDeno, "function");
  });

  it("allows no Response after an upgrade, and then says so in its type (Bun.serve)", async () => {
    const wrapped = withSessions(async (req: Request, server: UpgradingServer) => {
      const setCookie = await sessionCookieHeader(req);
      if (server.upgrade(req, { headers: setCookie === null ? {} : { "Set-Cookie": setCookie } })) {
        return;
      }
      return new Response("Upgrade failed", { status: 400 });
    }, { store: new MemoryStore() });
    const result: Response | undefined = await wrapped(new Request("http://localhost/"), {
      upgrade: () => true,
    });
    assert.equal(result, undefined);
    // @ts-expect-error a handler that may return nothing does not fit Deno.serve
    const forDeno: (req: Request, server: UpgradingServer) => Promise<Response> = wrapped;
    assert.equal(typeof forDeno, "function");
  });

  it("keeps the handler's extra parameters", () => {
    const wrapped = withSessions(
      (_req: Request, server: UpgradingServer) => new Response(String(server.upgrade)),
      { store: new MemoryStore() },
    );
    // @ts-expect-error the second argument must be the server
    void (() => wrapped(new Request("http://localhost/"), 42));
    assert.equal(wrapped.length, 1);
  });

  it("refuses a handler that returns something other than a Response", () => {
    // @ts-expect-error a string is not a Response
    withSessions(() => "ok", { store: new MemoryStore() });
  });
});
