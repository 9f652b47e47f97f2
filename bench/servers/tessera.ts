// Tessera on Deno or Bun: `tessera.ts <engine> <workload> [maxEntries]`,
// with the engine one of ENGINES in engines.ts.
import process from "node:process";
import { getSession, withSessions } from "../../mod.ts";
import { listen } from "./_listen.ts";
import { SECRET, visit, workloadOf } from "./_counter.mjs";
import { type EngineContext, ENGINES } from "./engines.ts";
import { removeScratch, scratchDirectory } from "./_scratch.mjs";

const [engineName = "", workloadName, maxEntriesText] = process.argv.slice(2);
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
  directory: scratchDirectory("tessera-bench-"),
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
}, { store, secret: SECRET }));
