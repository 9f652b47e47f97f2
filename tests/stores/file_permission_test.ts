// A Deno process without the permission the file engine needs is told which
// flag to give, for which path: not that the directory is missing, nor a bare
// "NotCapable". Runs the Deno of node_modules as a child on both runtimes
// (Deno's node:child_process passes its own permissions on to a child that
// is started as its own execPath).

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const CHILD = fileURLToPath(new URL("./_permission_child.ts", import.meta.url));
const DENO = fileURLToPath(new URL("../../node_modules/.bin/deno", import.meta.url));

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function runChild(permissions: string[], dir: string): string[] {
  const result = spawnSync(DENO, ["run", "--no-prompt", ...permissions, CHILD, dir], {
    encoding: "utf8",
    timeout: 60_000,
  });
  assert.equal(result.status, 0, result.stderr);
  return result.stdout.trim().split("\n");
}

describe("FileStore under Deno's permissions", () => {
  it("without --allow-read, names the flag and the path instead of calling the directory missing", () => {
    const dir = mkdtempSync(join(tmpdir(), "tessera-perm-"));
    dirs.push(dir);
    assert.deepEqual(runChild([], dir), [
      `construct: Cannot store sessions in '${dir}' as Deno has no read permission for it: run again with --allow-read=${dir}`,
    ]);
  });

  it("without --allow-write, names the flag and the path for a write, and what a load or a sweep needs", () => {
    const dir = mkdtempSync(join(tmpdir(), "tessera-perm-"));
    dirs.push(dir);
    const lines = runChild([`--allow-read=${dir}`], dir);
    assert.deepEqual(lines, [
      "construct: ok",
      `create: Cannot write a session file in '${dir}' as Deno has no write permission for it: run again with --allow-write=${dir}`,
      // Telling this process's uid needs --allow-sys=uid, or a probe file,
      // which needs --allow-write: the message offers both.
      `load: Cannot check who owns the session files in '${dir}' as Deno may neither tell this process's uid nor write there: run again with --allow-sys=uid or --allow-write=${dir}`,
      `sweep: Cannot check who owns the session files in '${dir}' as Deno may neither tell this process's uid nor write there: run again with --allow-sys=uid or --allow-write=${dir}`,
    ]);
    assert.deepEqual(readdirSync(dir), []);
  });

  it("with read and write for the directory only, needs no other permission", () => {
    const dir = mkdtempSync(join(tmpdir(), "tessera-perm-"));
    dirs.push(dir);
    assert.deepEqual(runChild([`--allow-read=${dir}`, `--allow-write=${dir}`], dir), [
      "construct: ok",
      "create: ok",
      "load: ok",
      "sweep: ok",
    ]);
    // The probe that told the uid is gone; the session created is there.
    assert.equal(readdirSync(dir).length, 1);
  });

  it("with --allow-sys=uid and read only, loads and sweeps", () => {
    const dir = mkdtempSync(join(tmpdir(), "tessera-perm-"));
    dirs.push(dir);
    const lines = runChild([`--allow-read=${dir}`, "--allow-sys=uid"], dir);
    assert.deepEqual(lines.slice(2), ["load: ok", "sweep: ok"]);
  });
});
