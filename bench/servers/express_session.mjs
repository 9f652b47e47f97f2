// express-session on Node: `express_session.mjs <memory|file> <workload>`,
// with its MemoryStore or with session-file-store in a fresh directory.
//
// resave and saveUninitialized are set as in express-session's own README
// example (false, true): its deprecated default resave: true would re-save
// every session on every read, which its README advises against.
import process from "node:process";
import express from "express";
import session from "express-session";
import sessionFileStore from "session-file-store";
import { listen } from "./_listen.mjs";
import { SECRET, visit, workloadOf } from "./_counter.mjs";
import { removeScratch, scratchDirectory } from "./_scratch.mjs";

const [storeName, workloadName] = process.argv.slice(2);
const workload = workloadOf(workloadName);
let store;
if (storeName === "file") {
  const directory = scratchDirectory("express-session-bench-");
  process.on("SIGTERM", () => {
    removeScratch(directory).then(() => process.exit(0), (error) => {
      console.error("Cannot clean up after the benchmark server:", error);
      process.exit(1);
    });
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
