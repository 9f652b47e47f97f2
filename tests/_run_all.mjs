#!/usr/bin/env node
// Runs the whole suite on Deno, then on Bun, and ends with one line
// "N passed, N failed" over both. Exits non-zero if anything failed, if a
// runtime exited non-zero, or if a runtime ran no test.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => join(root, "node_modules", ".bin", name);
const reports = mkdtempSync(join(tmpdir(), "tessera-test-"));
const only = process.argv.slice(2);

const runtimes = [
  {
    name: "deno",
    command: bin("deno"),
    args: (report) => ["test", "--allow-all", `--junit-path=${report}`, "tests/"],
  },
  {
    name: "bun",
    command: bin("bun"),
    args: (report) => [
      "test",
      "--timeout=120000",
      "--reporter=junit",
      `--reporter-outfile=${report}`,
      "./tests/",
    ],
  },
].filter((runtime) => only.length === 0 || only.includes(runtime.name));

// Counts leaf test cases in a JUnit report. Deno lists each describe() as a
// test case of its own and its it()s as "describe > it"; only leaves count.
function count(xml) {
  const cases = [...xml.matchAll(/<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g)].map(
    (match) => ({
      name: decode(/\bname="([^"]*)"/.exec(match[1])?.[1] ?? ""),
      suite: decode(/\bclassname="([^"]*)"/.exec(match[1])?.[1] ?? ""),
      failed: /<(failure|error)\b/.test(match[3] ?? ""),
    }),
  );
  const names = cases.map((c) => c.name);
  const leaves = cases.filter((c) => !names.some((other) => other.startsWith(`${c.name} > `)));
  const failed = leaves.filter((c) => c.failed);
  return { passed: leaves.length - failed.length, failed: failed.length, failures: failed };
}

function decode(text) {
  return text.replace(/&apos;/g, "'").replace(/&gt;/g, ">").replace(/&lt;/g, "<").replace(
    /&quot;/g,
    '"',
  ).replace(
    /&amp;/g,
    "&",
  );
}

let passed = 0;
let failed = 0;
let ok = true;
const summaries = [];
for (const runtime of runtimes) {
  const report = join(reports, `${runtime.name}.xml`);
  console.log(`\n=== ${runtime.name} ===\n`);
  const result = spawnSync(runtime.command, runtime.args(report), { cwd: root, stdio: "inherit" });
  let counts = { passed: 0, failed: 1, failures: [{ name: "(no report written)" }] };
  try {
    counts = count(readFileSync(report, "utf8"));
  } catch {
    // keep the failure above
  }
  if (result.status !== 0 && counts.failed === 0) {
    counts.failed = 1;
    counts.failures.push({
      name: `(${runtime.name} exited with ${result.status ?? result.signal})`,
    });
  }
  if (counts.passed === 0) ok = false;
  passed += counts.passed;
  failed += counts.failed;
  summaries.push({ runtime: runtime.name, ...counts });
}
rmSync(reports, { recursive: true, force: true });

console.log("");
for (const summary of summaries) {
  for (const failure of summary.failures) {
    // Deno puts the describe() in the name; Bun puts it in the class name.
    const where = failure.suite && !failure.name.includes(" > ") && !failure.suite.includes(":")
      ? `${failure.suite} > `
      : "";
    console.log(`FAILED on ${summary.runtime}: ${where}${failure.name}`);
  }
}
for (const summary of summaries) {
  console.log(`${summary.runtime}: ${summary.passed} passed, ${summary.failed} failed`);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(ok && failed === 0 ? 0 : 1);
