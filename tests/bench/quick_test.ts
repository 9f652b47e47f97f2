// `npm run bench -- --quick`: every selected server started, seeded and
// checked, nothing timed; a server that answers wrongly fails the run.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { smoke } from "../../bench/_harness.ts";
import type { ServerSpec } from "../../bench/_plan.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const DENO = join(ROOT, "node_modules", ".bin", "deno");

function quick(only: string): { status: number | null; output: string } {
  const result = spawnSync(
    DENO,
    [
      "run",
      "--allow-all",
      "bench/run.ts",
      "--quick",
      "--no-install",
      "--only",
      only,
    ],
    { cwd: ROOT, encoding: "utf8", timeout: 60_000 },
  );
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe("npm run bench -- --quick", () => {
  it("checks each selected server, its floor and the bare server, timing nothing", () => {
    const { status, output } = quick("tessera-memory-(plain-)?bun read");
    assert.equal(status, 0, output);
    const lines = output.trim().split("\n");
    assert.deepEqual(lines, [
      "ok     bare-bun -",
      "ok     floor-memory-bun read",
      "ok     tessera-memory-bun read",
      "ok     floor-memory-plain-bun read",
      "ok     tessera-memory-plain-bun read",
      "5 of 5 servers answered as their workload says",
    ]);
    assert.doesNotMatch(output, /req\/s|wrk/);
  });

  it("catches a server that does not do its workload, saying what it answered", async () => {
    // The bare server posing as a session server: it answers "ok" to all.
    const impostor: ServerSpec = {
      id: "impostor-bun",
      name: "impostor",
      runtime: "bun",
      kind: "floor",
      file: "bare.ts",
      args: [],
      sessions: true,
      workloads: ["read"],
    };
    const failure = await smoke({ server: impostor, workload: "read" });
    assert.match(
      failure ?? "",
      /^seeding a session got 200 "ok" without a cookie, not 200 "new 1"/,
    );
  });

  it("fails, saying why, when the run cannot start", () => {
    const { status, output } = quick("(");
    assert.equal(status, 2);
    assert.match(
      output,
      /Cannot run the benchmark as '--only' must be a regular expression/,
    );
  });
});
