// The frameworks are optional: the main entry's module graph holds none of
// them, and each adapter pulls only its own.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const FRAMEWORKS = ["hono", "@oakserver/oak", "elysia"];

// The npm packages in the static module graph of `entry`, by `deno info`.
function packagesOf(entry: string): Set<string> {
  const info = spawnSync(join(root, "node_modules", ".bin", "deno"), ["info", "--json", entry], {
    cwd: root,
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  assert.equal(info.status, 0, info.stderr);
  const modules: { specifier: string }[] = JSON.parse(info.stdout).modules;
  const packages = new Set<string>();
  for (const { specifier } of modules) {
    const match = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(specifier);
    if (match !== null) packages.add(match[1]!);
  }
  return packages;
}

describe("the frameworks are optional peer dependencies", () => {
  it("mod.ts imports none of them", () => {
    const packages = packagesOf("mod.ts");
    for (const framework of FRAMEWORKS) assert.ok(!packages.has(framework), framework);
  });

  const adapters = [["hono", "hono"], ["oak", "@oakserver/oak"], ["elysia", "elysia"]] as const;
  for (const [file, own] of adapters) {
    it(`src/adapters/${file}.ts pulls ${own} and no other framework`, () => {
      const packages = packagesOf(`src/adapters/${file}.ts`);
      assert.ok(packages.has(own), `${file} does not reach ${own}: the check would see nothing`);
      for (const framework of FRAMEWORKS) {
        if (framework !== own) assert.ok(!packages.has(framework), `${file} pulls ${framework}`);
      }
    });
  }
});
