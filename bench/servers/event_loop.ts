// The server of event_loop_bench.ts: FileStore saves on POST /write, and a
// cheap endpoint, GET /cheap, that touches no session.
//
//   event_loop.ts <sync|async> --root <dir>
//
// "sync" and "async" are FileStore's `syncWrites: true` and `false`.
import process from "node:process";
import { parseArgs } from "node:util";
import { FileStore } from "../../mod.ts";
import { listen } from "./_listen.ts";
import { removeScratch, scratchDirectory } from "./_scratch.mjs";

const { values, positionals } = parseArgs({
  args: process.argv.slice(2),
  options: { root: { type: "string" } },
  allowPositionals: true,
});
const mode = positionals[0];
if (mode !== "sync" && mode !== "async") {
  throw new TypeError(
    `Cannot start as the mode must be sync or async: current value is ${mode}`,
  );
}
const directory = scratchDirectory("tessera-event-loop-", values.root);
const store = new FileStore({ path: directory, syncWrites: mode === "sync" });
store.configure({
  cookieName: "sessionid",
  cookieAge: 1_209_600,
  secrets: [],
  logger: console,
});

const KEYS = 256;
const keys: string[] = [];
const data = JSON.stringify({
  count: 1,
  user: "someone@example.com",
  cart: [1, 2, 3],
});
for (let i = 0; i < KEYS; i++) {
  keys.push(await store.create({ data, expiresAt: Date.now() + 3_600_000 }));
}
let next = 0;

process.on("SIGTERM", async () => {
  await removeScratch(directory);
  process.exit(0);
});

listen(async (req) => {
  if (req.method === "POST") {
    const key = keys[next++ % KEYS]!;
    await store.save(key, { data, expiresAt: Date.now() + 3_600_000 });
    return new Response("saved");
  }
  return new Response("ok");
});
