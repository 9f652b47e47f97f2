// The file engine type-checks in a Bun project: `tsc --noEmit`, strict, with
// @types/bun and without Deno's types, as a Bun user's project checks the
// .ts files the package ships. TypeScript and @types/bun are installed from
// npm into a scratch project (kept in the temp dir between runs) when missing.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const PROJECT = join(tmpdir(), "tessera-bun-tsc-5.9.3");
const TSC = join(PROJECT, "node_modules", "typescript", "bin", "tsc");
// The files of the file engine, and through their imports what they use.
const FILES = ["file.ts", "_file_sweep.ts", "_file_trust.ts", "_file_errors.ts"];

function ensureProject(): void {
  if (existsSync(join(PROJECT, "node_modules", "@types", "bun")) && existsSync(TSC)) return;
  mkdirSync(PROJECT, { recursive: true });
  writeFileSync(join(PROJECT, "package.json"), '{ "name": "bun-project", "private": true }\n');
  const npm = spawnSync("npm", [
    "install",
    "--no-audit",
    "--no-fund",
    "--save-exact",
    "typescript@5.9.3",
    "@types/bun@1.3.3",
  ], { cwd: PROJECT, encoding: "utf8", timeout: 300_000 });
  assert.equal(npm.status, 0, npm.stderr);
}

describe("The file engine in a Bun project", () => {
  it("passes tsc --noEmit with @types/bun (strict, allowImportingTsExtensions)", () => {
    ensureProject();
    const project = mkdtempSync(join(tmpdir(), "tessera-bun-project-"));
    try {
      cpSync(join(ROOT, "src"), join(project, "pkg", "src"), { recursive: true });
      writeFileSync(
        join(project, "tsconfig.json"),
        JSON.stringify({
          // What `bun init` writes.
          compilerOptions: {
            lib: ["ESNext"],
            target: "ESNext",
            module: "Preserve",
            moduleDetection: "force",
            allowImportingTsExtensions: true,
            verbatimModuleSyntax: true,
            noEmit: true,
            strict: true,
            skipLibCheck: true,
            noUncheckedIndexedAccess: true,
            typeRoots: [join(PROJECT, "node_modules", "@types")],
            types: ["bun"],
          },
          files: FILES.map((file) => `pkg/src/stores/${file}`),
        }),
      );
      const tsc = spawnSync(process.execPath, [TSC, "--noEmit", "-p", project], {
        encoding: "utf8",
        timeout: 300_000,
      });
      assert.equal(tsc.stdout + tsc.stderr, "");
      assert.equal(tsc.status, 0);
    } finally {
      rmSync(project, { recursive: true, force: true });
    }
  });
});
