// FileStore({ durable: true }) flushes each write to disk before it answers:
// the file (fsync of the temp file before its rename or link) and the
// directory (fsync after the rename, link or unlink). A power loss cannot be
// staged in a test, so the test counts the fsync calls a child process makes,
// under strace (installed with apt-get when missing).

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { FileStore } from "../../mod.ts";
import { RUNTIME } from "../_server.ts";
import { storeContract } from "./_contract.ts";

const CHILD = fileURLToPath(new URL("./_durable_child.ts", import.meta.url));
// Not Deno's own execPath: Deno's node:child_process would rewrite the call.
const DENO = fileURLToPath(new URL("../../node_modules/.bin/deno", import.meta.url));

const dirs: string[] = [];
function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "tessera-durable-"));
  dirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

storeContract("FileStore (durable)", () => ({
  store: new FileStore({ path: freshDir(), durable: true }),
}));

function ensureStrace(): void {
  if (spawnSync("strace", ["-V"], { stdio: "ignore" }).status === 0) return;
  const lock = ["-o", "DPkg::Lock::Timeout=600"];
  for (const args of [["update", "-qq", ...lock], ["install", "-y", "-qq", ...lock, "strace"]]) {
    const result = spawnSync("apt-get", args, { encoding: "utf8", timeout: 600_000 });
    assert.equal(result.status, 0, result.stderr);
  }
}

/**
 * The fsync and fdatasync calls on the session directory and its files of a
 * child that creates, updates and deletes a session.
 */
function syncsOf(mode: "durable" | "plain"): number {
  const trace = join(freshDir(), "trace");
  const sessions = freshDir();
  const runtime = RUNTIME === "deno" ? [DENO, "run", "--allow-all"] : [process.execPath];
  const result = spawnSync("strace", [
    "-f",
    "-qq",
    // Each descriptor with its path: only the calls on the session directory
    // and its files count, not those the runtime makes on its own caches.
    "-y",
    "-e",
    "trace=fsync,fdatasync",
    "-o",
    trace,
    ...runtime,
    CHILD,
    sessions,
    mode,
  ], { encoding: "utf8", timeout: 120_000 });
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stdout, "done\n");
  return readFileSync(trace, "utf8").split("\n").filter((line) =>
    /sync\(/.test(line) && line.includes(sessions)
  ).length;
}

describe("FileStore({ durable: true })", () => {
  it("fsyncs the file and the directory of every create and update, and the directory of a delete", () => {
    ensureStrace();
    const plain = syncsOf("plain");
    const durable = syncsOf("durable");
    console.log(
      `[durable] FileStore on ${RUNTIME}: a create, an update and a delete made ${durable} fsync calls when durable, ${plain} when not`,
    );
    // Two for the create, two for the update, one for the delete.
    assert.equal(durable, 5);
    assert.equal(plain, 0);
  });

  it("rejects a durable option that is not a boolean", () => {
    assert.throws(() => new FileStore({ path: freshDir(), durable: "yes" as never }), {
      name: "TypeError",
      message:
        `Cannot create a FileStore as 'durable' must be true or false: current value is "yes"`,
    });
  });
});
