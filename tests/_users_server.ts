// A session server with UserSessions in a process of its own, for the test
// of a revocation issued by one process and seen by another. Run with the
// runtime under test:
//   <runtime> tests/_users_server.ts <SQLite database file>
// The sessions are in django_session, the index in a side table of the
// same file. It prints its port on the first line of stdout and stops when
// its stdin closes. Routes: /login?user=…&ua=…, /me.

import process from "node:process";
import { getSession, SqliteStore, UserSessions, withSessions } from "../mod.ts";
import { serve } from "./_server.ts";

const path = process.argv[2];
if (path === undefined) throw new Error("Cannot start: usage is '_users_server.ts <file>'");
const store = new SqliteStore({ path });
const index = new SqliteStore({ path, table: "tessera_user_sessions" });
const users = new UserSessions({ sessions: store, index, metadataKeys: ["ua"] });
const handler = withSessions(async (req) => {
  const url = new URL(req.url);
  const session = await getSession(req);
  if (url.pathname === "/login") {
    session.set("_auth_user_id", url.searchParams.get("user") ?? "");
    session.set("ua", url.searchParams.get("ua") ?? "");
    await session.cycleKey();
  }
  return new Response(String(session.get("_auth_user_id") ?? "anonymous"));
}, { store, users, logger: { warn: () => {}, error: (message) => console.error(message) } });
const server = serve(handler);
console.log(new URL(server.url).port);
process.stdin.on("data", () => {});
process.stdin.once("end", async () => {
  await server.close();
  store.close();
  index.close();
  process.exit(0);
});
