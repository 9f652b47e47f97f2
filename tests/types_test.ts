// Session<T> types the data. `deno check` (npm run check) fails if a line
// marked @ts-expect-error stops being an error; the runtime asserts hold too.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { getSession, MemoryStore, type Session, withSessions } from "../mod.ts";

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
