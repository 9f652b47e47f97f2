// A session server in a process of its own, for tests that need two servers
// on one store. Run with the runtime under test:
//   <runtime> tests/stores/_session_server.ts sqlite <database file>
//   <runtime> tests/stores/_session_server.ts redis <redis url>
//   <runtime> tests/stores/_session_server.ts postgres <postgres url>
// It prints its port on the first line of stdout and stops when its stdin
// closes, so it never outlives the test that started it.
//
// Routes: /set?name=value, /get (the items as JSON), /incr (a counter),
// /cycle (cycleKey), /flush.

import {
  getSession,
  PostgresStore,
  RedisStore,
  type SessionStore,
  SqliteStore,
  withSessions,
} from "../../mod.ts";
import { POSTGRES_CLIENTS } from "../_postgres.ts";
import { REDIS_CLIENTS } from "../_redis.ts";
import { serve } from "../_server.ts";

async function openStore(kind: string | undefined, target: string | undefined): Promise<{
  store: SessionStore;
  close: () => Promise<void>;
}> {
  if (kind === "sqlite" && target) {
    const store = new SqliteStore({ path: target });
    return { store, close: () => Promise.resolve(store.close()) };
  }
  if (kind === "redis" && target) {
    const handle = await REDIS_CLIENTS[0]!.connect(target);
    return { store: new RedisStore({ client: handle.client }), close: () => handle.close() };
  }
  if (kind === "postgres" && target) {
    const handle = await POSTGRES_CLIENTS[0]!.connect(target);
    return { store: new PostgresStore({ client: handle.client }), close: () => handle.close() };
  }
  throw new Error(
    `Cannot start: usage is '_session_server.ts sqlite <file>' or '... redis <url>' or '... postgres <url>'`,
  );
}

/**
 * Serves the routes above on `store` until stdin closes, then runs `close`
 * and exits; prints the port first. Other session servers of the tests
 * (the KV one) serve through it too.
 */
export function serveSessions(store: SessionStore, close: () => Promise<void> | void): void {
  const handler = withSessions(async (req) => {
    const url = new URL(req.url);
    const session = await getSession<Record<string, unknown>>(req);
    switch (url.pathname) {
      case "/set":
        for (const [name, value] of url.searchParams) session.set(name, value);
        break;
      case "/incr":
        session.set("n", Number(session.get("n") ?? 0) + 1);
        return new Response(String(session.get("n")));
      case "/cycle":
        await session.cycleKey();
        break;
      case "/flush":
        await session.flush();
        break;
    }
    return Response.json(Object.fromEntries(session.items()));
  }, { store, logger: { warn: () => {}, error: (message) => console.error(message) } });
  const server = serve(handler);
  console.log(new URL(server.url).port);
  process.stdin.on("data", () => {});
  process.stdin.once("end", async () => {
    await server.close();
    await close();
    process.exit(0);
  });
}

async function main(args: string[]): Promise<void> {
  const { store, close } = await openStore(args[0], args[1]);
  serveSessions(store, close);
}

if (import.meta.main) await main(process.argv.slice(2));
