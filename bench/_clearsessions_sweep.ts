// One sweep of a directory in a process of its own, so that its peak RSS is
// the sweep's and not the writing's: clearsessions_bench.ts runs it. Prints
// one JSON line: { ms, peakRss, removed, kept }.
//
// args: <"filestore" | "django" | "unsafe"> <dir> <now (ms)> [unlinks in flight]

import { lstatSync, readdirSync, readFileSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { setImmediate as nextTurn } from "node:timers/promises";
import { sweepFiles } from "../src/stores/_file_sweep.ts";

const [kind, dir, nowText, concurrency] = process.argv.slice(2) as [
  string,
  string,
  string,
  string | undefined,
];
const now = Number(nowText);

let peakRss = process.memoryUsage().rss;
function sample(): void {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
}
const timer = setInterval(sample, 10);

// FileStore's sweep, through the function FileStore.sweep() calls, with
// FileStore's defaults ("sessionid", ".tmp-" its temp file mark).
async function fileStore(): Promise<{ removed: number; kept: number }> {
  const target = {
    path: dir,
    prefix: "sessionid",
    tempMark: ".tmp-",
    staleTempAfter: 60_000,
    cookieAge: 1_209_600,
  };
  const report = await sweepFiles(
    target,
    { now, onProgress: sample },
    concurrency === undefined ? {} : { concurrency: Number(concurrency) },
  );
  if (report.failed > 0) throw new Error(`the sweep failed: ${report.errors.join("; ")}`);
  return report;
}

// Django's FileSessionStore.clear_expired(): os.listdir(), then for each name
// with the prefix, load() the session, which reads and decodes the file,
// takes the expiry from the content, and deletes the file if it has passed.
// Synchronous calls in slices, as FileStore judges, so that the ratio
// measures reading and decoding against a stat.
async function django(): Promise<{ removed: number; kept: number }> {
  let removed = 0;
  let kept = 0;
  let sliceEnd = performance.now() + 5;
  for (const name of readdirSync(dir)) {
    if (!name.startsWith("sessionid")) continue;
    const file = join(dir, name);
    const text = readFileSync(file, "utf8");
    const newline = text.indexOf("\n");
    const expiresAt = Number(text.slice(0, newline));
    JSON.parse(text.slice(newline + 1));
    if (expiresAt <= now) {
      unlinkSync(file);
      removed++;
    } else {
      kept++;
    }
    if (performance.now() >= sliceEnd) {
      sample();
      await nextTurn();
      sliceEnd = performance.now() + 5;
    }
  }
  return { removed, kept };
}

// FileStore's judging (a stat, files streamed) followed by a plain unlink, as
// a sweeper without a protocol against concurrent saves would do: the price
// of that protection is the difference with fileStore().
async function unsafe(): Promise<{ removed: number; kept: number }> {
  const deno = (globalThis as { Deno?: typeof Deno }).Deno;
  const names = deno !== undefined
    ? [...deno.readDirSync(dir)].map((entry) => entry.name)
    : readdirSync(dir);
  let removed = 0;
  let kept = 0;
  let sliceEnd = performance.now() + 5;
  for (const name of names) {
    if (!name.startsWith("sessionid")) continue;
    const file = join(dir, name);
    if (lstatSync(file).mtimeMs <= now) {
      unlinkSync(file);
      removed++;
    } else {
      kept++;
    }
    if (performance.now() >= sliceEnd) {
      sample();
      await nextTurn();
      sliceEnd = performance.now() + 5;
    }
  }
  return { removed, kept };
}

const started = performance.now();
const { removed, kept } = kind === "django"
  ? await django()
  : kind === "unsafe"
  ? await unsafe()
  : await fileStore();
const ms = performance.now() - started;
clearInterval(timer);
sample();
console.log(JSON.stringify({ ms, peakRss, removed, kept }));
