// clearsessions: FileStore's sweep against the sweep Django's file engine
// does (list the directory, open and decode every file, judge its expiry from
// its content, remove it), on the same files, in the same run.
//
//   deno run --v8-flags=--expose-gc --allow-read --allow-write --allow-env \
//     --allow-run=sync bench/clearsessions_bench.ts [options]
//   bun bench/clearsessions_bench.ts [options]
//
// --files 100000   session files per sweep; a list such as 25000,100000 also
//                  shows whether memory grows with the number of files
// --repeat 3       sweeps of each kind per size and scenario
// --state cache    for the half-expired scenario: "cache" sweeps right after
//                  writing, while the file system still holds the new files
//                  in memory; "disk" first writes them back (`sync`), as
//                  sessions saved hours before are; or "both"
// --pools          also FileStore's sweep with 1, 4, 16 and 64 removals in
//                  flight (on a fifth of the files), to choose that number
//
// Two scenarios. "all live": no file has expired, so the sweeps only judge
// (FileStore with one lstat a file, Django by reading and decoding each);
// the files are written once and every sweep goes over them. "half expired"
// (the target: 100 000 files in under 3 s): half the files are removed, on
// new files for every sweep. Files expire 10 or 20 days after they were
// written and the sweeps judge as of 15 days later, so that every file looks
// as it would after ordinary use (its mtime, the expiry, later than its ctime,
// the write). Peak RSS is sampled every 10 ms and at every progress report.
// The machine may be shared: compare ratios, and the repeats with each other.

import {
  closeSync,
  futimesSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { setImmediate as nextTurn } from "node:timers/promises";
import { parseArgs } from "node:util";
import { FileStore } from "../mod.ts";
import { sweepFiles } from "../src/stores/_file_sweep.ts";

const DAY = 86_400_000;
const RUNTIME = "Bun" in globalThis ? `bun ${process.versions.bun}` : `deno ${Deno.version.deno}`;

interface Result {
  ms: number;
  peakRss: number;
  removed: number;
  kept: number;
}

type Sweeper = (dir: string, now: number) => Promise<Result>;

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    files: { type: "string", default: "100000" },
    repeat: { type: "string", default: "3" },
    state: { type: "string", default: "cache" },
    pools: { type: "boolean", default: false },
  },
});
const sizes = values.files.split(",").map(Number);
const repeat = Number(values.repeat);
const states = values.state === "both" ? ["cache", "disk"] : [values.state];
if (
  sizes.some((n) => !Number.isInteger(n) || n < 2) || !(repeat >= 1) ||
  states.some((state) => state !== "disk" && state !== "cache")
) {
  throw new TypeError(
    "--files takes whole numbers of at least 2, --repeat a positive number, --state cache, disk or both",
  );
}

// Session files as FileStore writes them: named sessionid + a 32-character
// key, the expiry on the first line and as the mtime, then Django-like data.
// With `halfExpired`, every second file will have expired by the sweep.
function writeSessions(dir: string, count: number, writtenAt: number, halfExpired: boolean): void {
  mkdirSync(dir);
  for (let i = 0; i < count; i++) {
    const key = i.toString(36).padStart(32, "0");
    const expiresAt = writtenAt + (halfExpired && i % 2 === 0 ? 10 : 20) * DAY;
    const data = JSON.stringify({
      _auth_user_id: String(i),
      _auth_user_backend: "django.contrib.auth.backends.ModelBackend",
      _auth_user_hash: "f".repeat(64),
      visits: i,
    });
    const fd = openSync(join(dir, `sessionid${key}`), "wx", 0o600);
    writeSync(fd, `${expiresAt}\n${data}`);
    futimesSync(fd, writtenAt / 1000, expiresAt / 1000);
    closeSync(fd);
  }
}

// Writes every dirty page back, as the kernel does within a minute of a write.
function settle(state: string): void {
  if (state === "disk") execFileSync("sync");
}

class RssPeak {
  peak = process.memoryUsage().rss;
  readonly #timer = setInterval(() => this.sample(), 10);
  sample(): void {
    this.peak = Math.max(this.peak, process.memoryUsage().rss);
  }
  stop(): number {
    clearInterval(this.#timer);
    this.sample();
    return this.peak;
  }
}

function collectGarbage(): void {
  const bun = (globalThis as { Bun?: { gc(force: boolean): void } }).Bun;
  if (bun !== undefined) bun.gc(true);
  else (globalThis as { gc?: () => void }).gc?.();
}

async function fileStore(dir: string, now: number): Promise<Result> {
  const store = new FileStore({ path: dir });
  collectGarbage();
  const rss = new RssPeak();
  const started = performance.now();
  const report = await store.sweep({ now, onProgress: () => rss.sample() });
  const ms = performance.now() - started;
  if (report.failed > 0) throw new Error(`the sweep failed: ${report.errors.join("; ")}`);
  return { ms, peakRss: rss.stop(), removed: report.removed, kept: report.kept };
}

// Django's FileSessionStore.clear_expired(): os.listdir(), then for each name
// with the prefix, load() the session, which reads and decodes the file,
// takes the expiry from the content, and deletes the file if it has passed.
// Synchronous calls in slices, as FileStore judges, so that the ratio
// measures reading and decoding against a stat.
async function django(dir: string, now: number): Promise<Result> {
  collectGarbage();
  const rss = new RssPeak();
  const started = performance.now();
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
      rss.sample();
      await nextTurn();
      sliceEnd = performance.now() + 5;
    }
  }
  return { ms: performance.now() - started, peakRss: rss.stop(), removed, kept };
}

// FileStore's sweep with another number of removals in flight.
function withConcurrency(concurrency: number): Sweeper {
  return async (dir, now) => {
    collectGarbage();
    const rss = new RssPeak();
    const started = performance.now();
    const target = {
      path: dir,
      prefix: "sessionid",
      tempMark: ".tmp-",
      staleTempAfter: 60_000,
      cookieAge: 1_209_600,
    };
    const report = await sweepFiles(target, { now, onProgress: () => rss.sample() }, {
      concurrency,
    });
    const ms = performance.now() - started;
    return { ms, peakRss: rss.stop(), removed: report.removed, kept: report.kept };
  };
}

// Hono's habit: check each contender's output, not only its time.
function check(label: string, result: Result, removed: number, kept: number, dir: string): void {
  const left = readdirSync(dir).length;
  if (result.removed !== removed || result.kept !== kept || left !== kept) {
    throw new Error(
      `${label} removed ${result.removed}, kept ${result.kept}, left ${left}: expected ${removed} and ${kept}`,
    );
  }
}

const mb = (bytes: number) => (bytes / 1e6).toFixed(1);
const median = (list: number[]) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)]!;

function line(files: number, scenario: string, label: string, result: Result, ratio: string) {
  console.log(
    `${String(files).padEnd(7)} ${scenario.padEnd(18)} ${label.padEnd(17)} ${
      result.ms.toFixed(0).padStart(6)
    } ms ${Math.round(files / (result.ms / 1000)).toString().padStart(8)} ${
      mb(result.peakRss).padStart(6)
    } MB  ${ratio}`,
  );
}

const root = mkdtempSync(join(tmpdir(), "tessera-bench-clearsessions-"));
const summary: Record<string, unknown>[] = [];
let run = 0;

// Runs both sweeps `repeat` times, alternating which goes first, and prints
// and keeps the figures. `prepare` gives each sweep its directory.
async function compare(
  files: number,
  scenario: string,
  prepare: () => { dir: string; now: number; removed: number; kept: number; done(): void },
): Promise<void> {
  const ours: Result[] = [];
  const theirs: Result[] = [];
  for (let r = 0; r < repeat; r++) {
    const order: [string, Sweeper, Result[]][] = [
      ["FileStore.sweep()", fileStore, ours],
      ["Django-style", django, theirs],
    ];
    if (r % 2 === 1) order.reverse();
    for (const [label, sweep, results] of order) {
      const { dir, now, removed, kept, done } = prepare();
      const result = await sweep(dir, now);
      check(label, result, removed, kept, dir);
      done();
      results.push(result);
    }
    line(files, scenario, "FileStore.sweep()", ours[r]!, "1.00");
    line(files, scenario, "Django-style", theirs[r]!, (theirs[r]!.ms / ours[r]!.ms).toFixed(2));
  }
  summary.push({
    runtime: RUNTIME,
    scenario,
    files,
    fileStoreMs: ours.map((r) => Math.round(r.ms)),
    djangoMs: theirs.map((r) => Math.round(r.ms)),
    fileStoreFilesPerSecond: Math.round(files / (median(ours.map((r) => r.ms)) / 1000)),
    djangoOverFileStore: Number(median(ours.map((r, i) => theirs[i]!.ms / r.ms)).toFixed(2)),
    fileStorePeakRssMb: Number(mb(Math.max(...ours.map((r) => r.peakRss)))),
    djangoPeakRssMb: Number(mb(Math.max(...theirs.map((r) => r.peakRss)))),
  });
}

try {
  console.log(`clearsessions bench on ${RUNTIME}\n`);
  console.log(
    "files   scenario           sweep             elapsed  files/s  peak RSS  Django / FileStore",
  );
  for (const files of sizes) {
    const writtenAt = Date.now();
    const dir = join(root, `live-${run++}`);
    writeSessions(dir, files, writtenAt, false);
    await compare(files, "all live", () => ({
      dir,
      now: writtenAt + 15 * DAY,
      removed: 0,
      kept: files,
      done() {},
    }));
    rmSync(dir, { recursive: true });
  }
  for (const state of states) {
    for (const files of sizes) {
      await compare(files, `half expired, ${state}`, () => {
        const writtenAt = Date.now();
        const dir = join(root, `half-${run++}`);
        writeSessions(dir, files, writtenAt, true);
        settle(state);
        return {
          dir,
          now: writtenAt + 15 * DAY,
          removed: Math.ceil(files / 2),
          kept: Math.floor(files / 2),
          done: () => rmSync(dir, { recursive: true }),
        };
      });
    }
  }

  if (values.pools) {
    const files = Math.max(2, Math.floor(sizes.at(-1)! / 5));
    console.log(`\nFileStore's sweep of ${files} files, half expired, with N removals in flight`);
    for (const state of states) {
      for (let r = 0; r < repeat; r++) {
        const cells: string[] = [];
        for (const concurrency of [1, 4, 16, 64]) {
          const writtenAt = Date.now();
          const dir = join(root, `pool-${run++}`);
          writeSessions(dir, files, writtenAt, true);
          settle(state);
          const result = await withConcurrency(concurrency)(dir, writtenAt + 15 * DAY);
          check(
            `${concurrency} in flight`,
            result,
            Math.ceil(files / 2),
            Math.floor(files / 2),
            dir,
          );
          rmSync(dir, { recursive: true });
          cells.push(`N=${concurrency}: ${result.ms.toFixed(0).padStart(5)} ms`);
        }
        console.log(`${state.padEnd(6)} ${cells.join("   ")}`);
      }
    }
  }
  console.log(`\n${JSON.stringify(summary)}`);
} finally {
  rmSync(root, { recursive: true, force: true });
}
