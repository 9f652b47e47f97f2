// One sweep of a directory in a process of its own, so that its peak RSS is
// the sweep's and not the writing's: clearsessions_bench.ts runs it. Prints
// one JSON line: { ms, peakRss, removed, kept }.
//
// args: <"filestore" | "django" | "floor"> <dir> <now (ms)> [unlinks in flight]

import { lstatSync, readdirSync, readFileSync, unlinkSync } from "node:fs";
import { readdir, unlink } from "node:fs/promises";
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
// FileStore's defaults ("sessionid", ".tmp-" its temp file mark, ".gone" its
// tombstone mark).
async function fileStore(): Promise<{ removed: number; kept: number }> {
  const target = {
    path: dir,
    prefix: "sessionid",
    tempMark: ".tmp-",
    tombstoneMark: ".gone",
    staleTempAfter: 60_000,
    cookieAge: 1_209_600,
  };
  const report = await sweepFiles(
    target,
    { now, onProgress: sample },
    concurrency === undefined ? {} : { concurrency: Number(concurrency) },
  );
  if (report.failed > 0) {
    throw new Error(`the sweep failed: ${report.errors.join("; ")}`);
  }
  return report;
}

// A sweep without FileStore's protocol: every session file in `names` that
// `hasExpired` judges expired is unlinked at once, with synchronous calls in
// slices of 5 ms, as FileStore judges.
async function plainSweep(
  names: Iterable<string>,
  hasExpired: (file: string) => boolean,
): Promise<{ removed: number; kept: number }> {
  let removed = 0;
  let kept = 0;
  let sliceEnd = performance.now() + 5;
  for (const name of names) {
    if (!name.startsWith("sessionid")) continue;
    const file = join(dir, name);
    if (hasExpired(file)) {
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

// Django's FileSessionStore.clear_expired(): os.listdir(), then for each name
// with the prefix, load() the session, which reads and decodes the file,
// takes the expiry from the content, and deletes the file if it has passed.
// The ratio to fileStore() measures reading and decoding against a stat.
function django(): Promise<{ removed: number; kept: number }> {
  return plainSweep(readdirSync(dir), (file) => {
    const text = readFileSync(file, "utf8");
    const newline = text.indexOf("\n");
    JSON.parse(text.slice(newline + 1));
    return Number(text.slice(0, newline)) <= now;
  });
}

// The floor: what any sweep of this format has to do, without FileStore's
// protection against a concurrent save (rename aside, look, maybe link back):
// list the directory as FileStore does (streamed on Deno, one list of names
// on Bun), judge each session file by one lstat of its mtime, and unlink the
// expired ones, as many in flight as FileStore's sweep (16), each with the
// runtime's cheapest call. The ratio of fileStore() to it is the price of
// the protection and of everything else FileStore does.
async function floor(): Promise<{ removed: number; kept: number }> {
  const deno = (globalThis as { Deno?: typeof Deno }).Deno;
  const inFlight = Number(concurrency ?? 16);
  const names: AsyncIterable<string> | string[] = deno !== undefined
    ? (async function* () {
      for await (const entry of deno.readDir(dir)) yield entry.name;
    })()
    : await readdir(dir);
  const mtimeOf = deno !== undefined
    ? (file: string) => deno.lstatSync(file).mtime?.getTime() ?? NaN
    : (file: string) => lstatSync(file).mtimeMs;
  const remove = deno !== undefined ? (file: string) => deno.remove(file) : unlink;
  const removals = new Set<Promise<void>>();
  let removed = 0;
  let kept = 0;
  let seen = 0;
  for await (const name of names) {
    if (!name.startsWith("sessionid")) continue;
    if (++seen % 1000 === 0) sample();
    const file = join(dir, name);
    if (mtimeOf(file) <= now) {
      const removal: Promise<void> = remove(file).then(() => void removed++)
        .finally(() => removals.delete(removal));
      removals.add(removal);
      if (removals.size >= inFlight) await Promise.race(removals);
    } else {
      kept++;
    }
  }
  await Promise.all(removals);
  return { removed, kept };
}

const started = performance.now();
const { removed, kept } = kind === "django"
  ? await django()
  : kind === "floor"
  ? await floor()
  : await fileStore();
const ms = performance.now() - started;
clearInterval(timer);
sample();
console.log(JSON.stringify({ ms, peakRss, removed, kept }));
