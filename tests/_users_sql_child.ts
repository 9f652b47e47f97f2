// One server process of the race test of the native SQL indexes: logs in
// `count` sessions of one user at once, through withSessions, into a
// native index shared with other processes. Run with the runtime under test:
//   <runtime> tests/_users_sql_child.ts sqlite <file> <count> <start ms>
//   <runtime> tests/_users_sql_child.ts sqlite-generic <file> <count> <start ms>
//   <runtime> tests/_users_sql_child.ts postgres <url> <prefix> <count> <start ms>
// It starts at <start ms> (epoch), so that the processes write at the same
// instant, and prints how many logins answered 200, and when they began
// and ended (ms since the epoch).

import process from "node:process";
import postgres from "postgres";
import { getSession, MemoryStore, SqliteStore, UserSessions, withSessions } from "../mod.ts";

const [engine, target, ...rest] = process.argv.slice(2);
let users: UserSessions;
let store: SqliteStore | MemoryStore;
let close = (): Promise<void> => Promise.resolve();
let count: number;
let start: number;
if (engine === "sqlite" || engine === "sqlite-generic") {
  store = new SqliteStore({ path: target! });
  // The generic index, one row per user, for the comparison.
  const generic = engine === "sqlite-generic"
    ? new SqliteStore({ path: target!, table: "tessera_user_sessions" })
    : null;
  users = new UserSessions({ sessions: store, index: generic ?? { sqlite: store } });
  [count, start] = rest.map(Number) as [number, number];
  close = () => Promise.resolve((store as SqliteStore).close());
  if (generic !== null) close = () => Promise.resolve(generic.close());
} else {
  const sql = postgres(target!, { max: 10, onnotice: () => {} });
  store = new MemoryStore();
  users = new UserSessions({ sessions: store, index: { postgres: sql, prefix: rest[0]! } });
  [count, start] = rest.slice(1).map(Number) as [number, number];
  close = () => sql.end({ timeout: 1 });
}
const handler = withSessions(async (req) => {
  const session = await getSession(req);
  session.set("_auth_user_id", "9");
  await session.cycleKey();
  return new Response("ok");
}, { store, users });
await new Promise((resolve) => setTimeout(resolve, Math.max(0, start - Date.now())));
const began = Date.now();
const answers = await Promise.all(
  Array.from({ length: count }, () => handler(new Request("http://localhost/login"))),
);
const ok = answers.filter((answer) => answer.status === 200).length;
console.log(`${ok} ${began} ${Date.now()}`);
users.close();
await close();
process.exit(0);
