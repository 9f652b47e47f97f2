// clearsessions under Deno without the permissions it needs: the message names
// the flag and the path, on Deno itself (this file runs Deno as a child on
// both runtimes, since the permissions are Deno's).

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const DENO = join(ROOT, "node_modules", ".bin", "deno");
const CLI = join(ROOT, "src", "cli", "clearsessions.ts");
const dir = mkdtempSync(join(tmpdir(), "tessera-perm-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function clearsessions(flags: string[], args: string[]): { code: number | null; err: string } {
  const result = spawnSync(DENO, ["run", ...flags, CLI, ...args], { encoding: "utf8" });
  return { code: result.status, err: result.stderr };
}

describe("clearsessions under Deno's permissions", () => {
  it("names --allow-read and the directory when it may not read it", () => {
    const { code, err } = clearsessions(["--allow-env"], ["--dir", dir]);
    assert.equal(code, 1);
    assert.equal(
      err,
      `clearsessions: Cannot sweep '${dir}' as Deno's --allow-read does not cover it: run again with --allow-read=${dir}\n`,
    );
  });

  it("names --allow-write and the directory, and removes nothing, when it may only read", () => {
    const expired = join(dir, "sessionid" + "a".repeat(32));
    writeFileSync(expired, "2000-01-01T00:00:00.000Z\n{}", { mode: 0o600 });
    utimesSync(expired, new Date(2000, 0, 1), new Date(2000, 0, 1));
    const { code, err } = clearsessions(["--allow-env", `--allow-read=${dir}`], [
      "--dir",
      dir,
      "--json",
    ]);
    assert.equal(code, 1);
    assert.match(err, new RegExp(`run again with --allow-write=${dir}\\n$`));
    assert.ok(existsSync(expired));
  });

  it("needs only --allow-read and --allow-sys=uid for a dry run, and says so", () => {
    const { code, err } = clearsessions(["--allow-env", "--allow-sys=uid", `--allow-read=${dir}`], [
      "--dir",
      dir,
      "--dry-run",
    ]);
    assert.equal(err, "");
    assert.equal(code, 0);
    // Without a uid and without write access, the owner of the files cannot be checked.
    const readOnly = clearsessions(["--allow-env", `--allow-read=${dir}`], [
      "--dir",
      dir,
      "--dry-run",
    ]);
    assert.equal(readOnly.code, 1);
    assert.match(readOnly.err, /run again with --allow-sys=uid or --allow-write=/);
  });

  it("names the OS temp dir when no --dir is given", () => {
    const { code, err } = clearsessions(["--allow-env=TMPDIR,TMP,TEMP"], []);
    assert.equal(code, 1);
    assert.match(
      err,
      /Cannot sweep '.+' as Deno's --allow-read does not cover it: run again with --allow-read=/,
    );
  });
});
