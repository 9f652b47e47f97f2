import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { getSession, MemoryStore, withSessions } from "../mod.ts";

describe("cookiePartitioned", () => {
  const handler = withSessions(async (req) => {
    const session = await getSession(req);
    if (new URL(req.url).pathname === "/logout") await session.flush();
    else session.set("user", "ada");
    return new Response("ok");
  }, {
    store: new MemoryStore(),
    cookiePartitioned: true,
    cookieSecure: true,
    cookieSameSite: "None",
  });

  it("adds Partitioned to the session cookie and to its deletion cookie", async () => {
    const login = await handler(new Request("https://app.example/login"));
    const set = login.headers.get("set-cookie")!;
    assert.match(set, /; Path=\/; Secure; HttpOnly; SameSite=None; Partitioned$/);
    const cookie = set.split(";")[0]!;
    const logout = await handler(
      new Request("https://app.example/logout", { headers: { cookie } }),
    );
    assert.match(
      logout.headers.get("set-cookie")!,
      /^sessionid=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=\/; Secure; HttpOnly; SameSite=None; Partitioned$/,
    );
  });

  it("is off by default", async () => {
    const plain = withSessions(async (req) => {
      (await getSession(req)).set("n", 1);
      return new Response("ok");
    }, { store: new MemoryStore() });
    const response = await plain(new Request("http://localhost/"));
    assert.doesNotMatch(response.headers.get("set-cookie")!, /Partitioned/);
  });

  it("requires cookieSecure, at withSessions", () => {
    assert.throws(() => withSessions(() => new Response("ok"), { cookiePartitioned: true }), {
      name: "TypeError",
      message: /'cookieSecure' must be true when 'cookiePartitioned' is true/,
    });
    assert.throws(
      () => withSessions(() => new Response("ok"), { cookiePartitioned: "yes" as never }),
      { name: "TypeError", message: /'cookiePartitioned' must be true or false/ },
    );
  });
});
