// The framework adapters next to their bare frameworks, in one process:
// Hono, Hono + Tessera, Hono + hono-sessions; Elysia, Elysia + Tessera; and
// for the target, a bare fetch handler and the same handler inside
// withSessions. Each app is called through its own fetch entry with a Request
// (no sockets, so that a loaded machine's network stack does not drown the
// middleware's cost), on the visit counter of bench/servers/_counter.mjs.
//
// Rounds interleave the apps in a shuffled order; each row is the median of
// its per-round ratios to the bare app of its family (time per request, so
// 1.00 costs nothing and 1.50 costs half as much again), and the median of
// the per-round differences in microseconds per request.
//
//   deno run --allow-all bench/frameworks_bench.ts [rounds] [milliseconds per app and round]
//   bun bench/frameworks_bench.ts [rounds] [milliseconds]
//
// hono-sessions comes from bench/package.json (`cd bench && npm ci`).

import process from "node:process";
import { loadavg } from "node:os";
import { Hono, type MiddlewareHandler } from "hono";
import {
  MemoryStore as HonoSessionsMemoryStore,
  type Session as HonoSession,
  sessionMiddleware,
} from "hono-sessions";
import { Elysia } from "elysia";
import { getSession, MemoryStore, withSessions } from "../mod.ts";
import { sessions as honoSessions, type SessionVariables } from "../src/adapters/hono.ts";
import { sessions as elysiaSessions } from "../src/adapters/elysia.ts";
import { SECRET, visit } from "./servers/_counter.mjs";

// "untouched": a known session cookie, and a handler that never asks for
// the session.
type Workload = "read" | "write" | "untouched";
type Fetch = (req: Request) => Response | Promise<Response>;
type Data = { count: number };

interface App {
  readonly name: string;
  readonly family: "fetch" | "hono" | "elysia";
  readonly bare: boolean;
  readonly fetch: Fetch;
}

const URL_ = "http://localhost/";
const EXPECTED: Record<Workload, string> = {
  read: "read 1",
  write: "write 2",
  untouched: "plain",
};

// What the counter needs of a session, Tessera's or hono-sessions'.
interface Counter {
  get(key: "count"): unknown;
  set(key: "count", value: number): unknown;
}

// The counter the session apps run, or nothing for "untouched".
async function count(
  workload: Workload,
  open: () => Promise<Counter>,
): Promise<string> {
  if (workload === "untouched") return "plain";
  const session = await open();
  const { store, body } = visit(session.get("count"), workload);
  if (store !== undefined) session.set("count", store);
  return body;
}

function apps(workload: Workload): App[] {
  // The bare apps answer what a session app answers on a known session.
  const bareBody = EXPECTED[workload];

  const bareHono = new Hono();
  bareHono.get("/", (c) => c.text(bareBody));

  // bench/node_modules holds a copy of Hono of its own, whose types are
  // not those the adapter names: the middleware is cast to this copy's.
  const tesseraHono = new Hono<{ Variables: SessionVariables<Data> }>();
  tesseraHono.use(
    honoSessions<Data>({
      store: new MemoryStore(),
      secret: SECRET,
    }) as unknown as MiddlewareHandler,
  );
  tesseraHono.get("/", async (c) => c.text(await count(workload, c.var.getSession)));

  const peerHono = new Hono<{ Variables: { session: HonoSession<Data> } }>();
  peerHono.use(
    "*",
    sessionMiddleware({
      store: new HonoSessionsMemoryStore(),
      encryptionKey: SECRET,
      expireAfterSeconds: 900,
      cookieOptions: { sameSite: "Lax", path: "/", httpOnly: true },
    }),
  );
  peerHono.get("/", async (c) => {
    const session = c.get("session");
    return c.text(await count(workload, () => Promise.resolve(session)));
  });

  const bareElysia = new Elysia().get("/", () => bareBody);
  const tesseraElysia = new Elysia()
    .use(elysiaSessions<Data>({ store: new MemoryStore(), secret: SECRET }))
    .get("/", async ({ getSession }) => await count(workload, getSession));

  const bareFetch: Fetch = () => new Response(bareBody);
  const tesseraFetch = withSessions(
    async (req) => new Response(await count(workload, () => getSession<Data>(req))),
    { store: new MemoryStore(), secret: SECRET },
  );

  return [
    { name: "fetch handler", family: "fetch", bare: true, fetch: bareFetch },
    { name: "withSessions", family: "fetch", bare: false, fetch: tesseraFetch },
    { name: "Hono", family: "hono", bare: true, fetch: bareHono.fetch },
    {
      name: "Hono + Tessera",
      family: "hono",
      bare: false,
      fetch: tesseraHono.fetch,
    },
    {
      name: "Hono + hono-sessions",
      family: "hono",
      bare: false,
      fetch: peerHono.fetch,
    },
    { name: "Elysia", family: "elysia", bare: true, fetch: bareElysia.fetch },
    {
      name: "Elysia + Tessera",
      family: "elysia",
      bare: false,
      fetch: tesseraElysia.fetch,
    },
  ];
}

// Opens a session on `app` and returns the Cookie header that carries it,
// after checking that the app answers as the workload says.
async function prepare(
  app: App,
  workload: Workload,
  opener: App,
): Promise<string> {
  if (workload === "untouched") {
    const cookie = app.bare ? "" : await prepare(opener, "read", opener);
    const response = await app.fetch(
      new Request(URL_, { headers: { cookie } }),
    );
    const text = await response.text();
    if (text !== "plain") {
      throw new Error(
        `Invalid output from ${app.name}: ${JSON.stringify(text)}`,
      );
    }
    return cookie;
  }
  const first = await app.fetch(new Request(URL_));
  const body = await first.text();
  const cookie = first.headers.getSetCookie().map((line) => line.split(";")[0])
    .join("; ");
  if (app.bare) return "";
  if (body !== "new 1" || cookie === "") {
    throw new Error(
      `Invalid output from ${app.name}: ${JSON.stringify(body)}, cookie ${cookie}`,
    );
  }
  const second = await app.fetch(new Request(URL_, { headers: { cookie } }));
  const expected = EXPECTED[workload];
  const text = await second.text();
  if (text !== expected) {
    throw new Error(`Invalid output from ${app.name}: ${JSON.stringify(text)}`);
  }
  // hono-sessions re-sends its cookie on every response; keep the newest.
  const again = second.headers.getSetCookie().map((line) => line.split(";")[0])
    .join("; ");
  return again === "" ? cookie : again;
}

// Microseconds per request over about `ms` milliseconds.
async function measure(app: App, cookie: string, ms: number): Promise<number> {
  const init = cookie === "" ? {} : { headers: { cookie } };
  let count = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < 200; i++) {
      const response = await app.fetch(new Request(URL_, init));
      await response.arrayBuffer();
    }
    count += 200;
    now = performance.now();
  }
  return ((now - start) * 1000) / count;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function shuffle<T>(items: T[]): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}

const DESCRIPTIONS: Record<Workload, string> = {
  read: "a known session, its counter read",
  write: "a known session, its counter incremented",
  untouched: "a session cookie, a handler that never asks for the session",
};

const rounds = Number(process.argv[2] ?? 7);
const ms = Number(process.argv[3] ?? 150);
const runtime = "Bun" in globalThis ? "Bun" : "Deno";
console.log(
  `${runtime}: ${rounds} rounds, ${ms} ms per app and round; load average ${
    loadavg().map((n) => n.toFixed(2)).join(" ")
  }`,
);

for (const workload of ["read", "write", "untouched"] as const) {
  const list = apps(workload);
  // For "untouched", a session opened by the same library's counting app,
  // on the same store would be ideal; a cookie from another store is an
  // unknown key, which an untouched handler never looks up either.
  const openers = apps("read");
  const cookies = new Map<App, string>();
  for (const [i, app] of list.entries()) {
    cookies.set(app, await prepare(app, workload, openers[i]!));
  }
  for (const app of list) await measure(app, cookies.get(app)!, 50); // warm-up
  const times = new Map<App, number[]>(list.map((app) => [app, []]));
  for (let round = 0; round < rounds; round++) {
    for (const app of shuffle(list)) {
      times.get(app)!.push(await measure(app, cookies.get(app)!, ms));
    }
  }
  console.log(
    `\n${workload} workload: ${DESCRIPTIONS[workload]}`,
  );
  console.log(
    "| app                  | µs/request | ratio to bare | +µs/request |",
  );
  console.log(
    "|----------------------|-----------:|--------------:|------------:|",
  );
  for (const app of list) {
    const own = times.get(app)!;
    const bare = times.get(
      list.find((other) => other.family === app.family && other.bare)!,
    )!;
    const ratio = median(own.map((t, i) => t / bare[i]!));
    const added = median(own.map((t, i) => t - bare[i]!));
    console.log(
      `| ${app.name.padEnd(20)} | ${median(own).toFixed(2).padStart(10)} | ${
        ratio.toFixed(2).padStart(13)
      } | ${added.toFixed(2).padStart(11)} |`,
    );
  }
}
console.log(
  `\nload average after: ${loadavg().map((n) => n.toFixed(2)).join(" ")}`,
);
