// Store writes of renewal (renewAfter) against saveEveryRequest under a
// read workload: logged-in users whose requests read the session and
// change nothing. Time is simulated (an injected clock), so a day of
// traffic runs in a second; the count of writes does not depend on the
// engine, so the store is a MemoryStore behind a counter.
//
//   deno run bench/renewal_bench.ts      bun bench/renewal_bench.ts
//   npm run bench:renewal                (both)
//
// Options: --users=<n> (default 200), --requests=<per user> (default 500),
// --age=<cookieAge seconds> (default 3600), --gap=<mean seconds between a
// user's requests> (default 30).

import {
  getSession,
  MemoryStore,
  type SessionOptions,
  type SessionStore,
  type StoredSession,
  withSessions,
} from "../mod.ts";

function option(name: string, fallback: number): number {
  const args = (globalThis as { Deno?: { args: string[] } }).Deno?.args ??
    (globalThis as unknown as { process: { argv: string[] } }).process.argv
      .slice(2);
  const found = args.find((arg) => arg.startsWith(`--${name}=`));
  return found === undefined ? fallback : Number(found.slice(name.length + 3));
}
const USERS = option("users", 200);
const REQUESTS = option("requests", 500);
const AGE = option("age", 3600);
const GAP = option("gap", 30);

class Counting implements SessionStore {
  reads = 0;
  writes = 0;
  constructor(readonly inner: SessionStore) {}
  load(key: string): Promise<StoredSession | null> {
    this.reads++;
    return this.inner.load(key);
  }
  exists(key: string): Promise<boolean> {
    return this.inner.exists(key);
  }
  create(record: StoredSession): Promise<string> {
    this.writes++;
    return this.inner.create(record);
  }
  save(
    key: string,
    record: StoredSession,
    mustCreate?: boolean,
  ): Promise<string> {
    this.writes++;
    return this.inner.save(key, record, mustCreate);
  }
  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }
  clearExpired(): Promise<number> {
    return this.inner.clearExpired();
  }
}

// A seeded generator, so that every mode sees the same traffic.
function random(seed: number): () => number {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x80000000;
  };
}

interface Result {
  mode: string;
  writes: number;
  reads: number;
  expired: number;
}

async function run(
  mode: string,
  extra: Partial<SessionOptions>,
): Promise<Result> {
  const real = Date.now;
  let now = real();
  Date.now = () => now;
  try {
    const store = new Counting(new MemoryStore({ maxEntries: USERS * 2 }));
    const handler = withSessions(async (req) => {
      const session = await getSession(req);
      if (new URL(req.url).pathname === "/login") {
        session.set("_auth_user_id", "1");
      }
      return new Response(String(session.get("_auth_user_id") ?? ""));
    }, { store, cookieAge: AGE, ...extra });
    const cookies: string[] = [];
    for (let user = 0; user < USERS; user++) {
      const response = await handler(new Request("http://localhost/login"));
      cookies.push(response.headers.get("set-cookie")!.split(";")[0]!);
    }
    store.reads = store.writes = 0;
    // Each user's next request time; the gaps are exponential, mean GAP.
    const next = random(42);
    const due = cookies.map(() => now + -Math.log(1 - next()) * GAP * 1000);
    let expired = 0;
    for (let step = 0; step < USERS * REQUESTS; step++) {
      let user = 0;
      for (let i = 1; i < USERS; i++) if (due[i]! < due[user]!) user = i;
      now = due[user]!;
      const response = await handler(
        new Request("http://localhost/", {
          headers: { cookie: cookies[user]! },
        }),
      );
      if ((await response.text()) === "") expired++;
      const set = response.headers.get("set-cookie");
      if (set !== null) cookies[user] = set.split(";")[0]!;
      due[user] = now + -Math.log(1 - next()) * GAP * 1000;
    }
    return { mode, writes: store.writes, reads: store.reads, expired };
  } finally {
    Date.now = real;
  }
}

const runtime = "Bun" in globalThis ? "bun" : "deno";
const requests = USERS * REQUESTS;
console.log(
  `${runtime}: ${USERS} logged-in users, ${requests} read requests, a mean gap of ${GAP} s, cookieAge ${AGE} s`,
);
const results = [
  await run("saveEveryRequest", { saveEveryRequest: true }),
  await run("renewAfter: 0.5", { renewAfter: 0.5 }),
  await run("renewAfter: 0.25", { renewAfter: 0.25 }),
  await run("renewAfter: 0.1", { renewAfter: 0.1 }),
  await run("neither (no sliding expiry)", {}),
];
const base = results[0]!.writes;
for (const result of results) {
  const share = ((result.writes / base) * 100).toFixed(2);
  console.log(
    `${result.mode.padEnd(28)} writes ${String(result.writes).padStart(7)} (${
      share.padStart(6)
    }% of saveEveryRequest)  reads ${result.reads}  requests that found no session ${result.expired}`,
  );
}
