// Tessera on Deno or Bun:
//
//   tessera.ts <engine> <workload> [maxEntries] [--root <dir>] [--plain]
//
// with the engine one of ENGINES in engines.ts, its files (if any) in a
// fresh directory in `--root` (default: the OS temp dir), and a secret, so
// that records are signed (the recommended configuration), unless `--plain`.
import process from "node:process";
import { parseArgs } from "node:util";
import { getSession, withSessions } from "../../mod.ts";
import { listen } from "./_listen.ts";
import { SECRET, visit, workloadOf } from "./_counter.mjs";
import { type EngineContext, ENGINES } from "./engines.ts";
import { removeScratch, scratchDirectory } from "./_scratch.mjs";

const { values, positionals } = parseArgs({
  args: process.argv.slice(2),
  options: {
    root: { type: "string" },
    plain: { type: "boolean", default: false },
  },
  allowPositionals: true,
});
const [engineName = "", workloadName, maxEntriesText] = positionals;
const factory = ENGINES[engineName];
if (factory === undefined) {
  throw new TypeError(
    `Cannot start Tessera as the engine must be one of ${
      Object.keys(ENGINES).join(", ")
    }: current value is ${engineName}`,
  );
}
const workload = workloadOf(workloadName);

const context: EngineContext = {
  directory: scratchDirectory("tessera-bench-", values.root),
  maxEntries: maxEntriesText === undefined ? undefined : Number(maxEntriesText),
  cleanups: [],
};
context.cleanups.push(() => removeScratch(context.directory));
const store = await factory(context);

// The harness stops a server with SIGTERM; clean up, then exit.
process.on("SIGTERM", async () => {
  let code = 0;
  for (const cleanup of context.cleanups.reverse()) {
    try {
      await cleanup();
    } catch (error) {
      console.error("Cannot clean up after the benchmark server:", error);
      code = 1;
    }
  }
  process.exit(code);
});

listen(withSessions(async (req) => {
  const session = await getSession<{ count: number }>(req);
  const { store: next, body } = visit(session.get("count"), workload);
  if (next !== undefined) session.set("count", next);
  return new Response(body);
}, values.plain ? { store } : { store, secret: SECRET }));
