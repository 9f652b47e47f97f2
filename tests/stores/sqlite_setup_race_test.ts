import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { start } from "../_spawn.ts";

const root = mkdtempSync(join(tmpdir(), "tessera-sqlite-setup-"));
after(() => rmSync(root, { recursive: true, force: true }));

const CHILD = join(import.meta.dirname!, "..", "fixtures", "sqlite_open_child.ts");

describe("SqliteStore set-up", () => {
  it("lets processes that open one new database at the same instant all set it up", async () => {
    const rounds = 4;
    const processes = 8;
    let failures = 0;
    for (let round = 0; round < rounds; round++) {
      const path = join(root, `round${round}.sqlite3`);
      const instant = String(Date.now() + 1500);
      const children = Array.from({ length: processes }, () => start(CHILD, [path, instant]));
      const codes = await Promise.all(children.map((child) => child.exited));
      children.forEach((child, index) => {
        if (codes[index] !== 0 || child.stdout !== "opened\n") {
          failures++;
          console.log(child.stderr);
        }
      });
    }
    console.log(
      `[sqlite] ${rounds * processes} processes set up ${rounds} new databases: ${failures} failed`,
    );
    assert.equal(failures, 0);
  });
});
