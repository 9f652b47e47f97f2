// express-session on Node: `express_session.mjs <memory|file> <workload>`,
// with its MemoryStore or with session-file-store in a fresh directory.
//
// resave and saveUninitialized are set as in express-session's own README
// example (false, true): its deprecated default resave: true would re-save
// every session on every read, which its README advises against.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import express from "express";
import session from "express-session";
import sessionFileStore from "session-file-store";
import { listen } from "./_listen.mjs";
import { SECRET, visit, workloadOf } from "./_counter.mjs";

const [storeName, workloadName] = process.argv.slice(2);
const workload = workloadOf(workloadName);
let store;
if (storeName === "file") {
  const directory = mkdtempSync(join(tmpdir(), "express-session-bench-"));
  process.on("SIGTERM", () => {
    rmSync(directory, { recursive: true, force: true });
    process.exit(0);
  });
  const FileStore = sessionFileStore(session);
  store = new FileStore({ path: directory });
} else if (storeName === "memory") {
  store = new session.MemoryStore();
} else {
  throw new TypeError(
    `Cannot start express-session as the store must be memory or file: current value is ${storeName}`,
  );
}

const app = express();
app.use(
  session({ secret: SECRET, store, resave: false, saveUninitialized: true }),
);
app.get("/", (req, res) => {
  const { store: next, body } = visit(req.session.count, workload);
  if (next !== undefined) req.session.count = next;
  res.type("text").send(body);
});
listen(app);
