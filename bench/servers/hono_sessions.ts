// hono-sessions on Deno or Bun: `hono_sessions.ts <memory|cookie> <workload>`,
// set up as its README shows, with an encryption key (required for its
// CookieStore, recommended for the others).
import process from "node:process";
import { Hono } from "hono";
import { CookieStore, MemoryStore, type Session, sessionMiddleware } from "hono-sessions";
import { listen } from "./_listen.ts";
import { SECRET, visit, workloadOf } from "./_counter.mjs";

const [storeName, workloadName] = process.argv.slice(2);
const STORES = {
  memory: () => new MemoryStore(),
  cookie: () => new CookieStore(),
};
if (storeName !== "memory" && storeName !== "cookie") {
  throw new TypeError(
    `Cannot start hono-sessions as the store must be memory or cookie: current value is ${storeName}`,
  );
}
const workload = workloadOf(workloadName);

const app = new Hono<{ Variables: { session: Session<{ count: number }> } }>();
app.use(
  "*",
  sessionMiddleware({
    store: STORES[storeName](),
    encryptionKey: SECRET,
    expireAfterSeconds: 900,
    cookieOptions: { sameSite: "Lax", path: "/", httpOnly: true },
  }),
);
app.get("/", (c) => {
  const session = c.get("session");
  const { store, body } = visit(session.get("count"), workload);
  if (store !== undefined) session.set("count", store);
  return c.text(body);
});
listen(app.fetch);
