// clearsessions: FileStore's sweep against the sweep Django's file engine
// does (list the directory, open and decode every file, judge its expiry from
// its content, remove it), on the same files, in the same run.
//
//   deno run --v8-flags=--expose-gc --allow-read --allow-write --allow-env \
//     --allow-run=sync bench/clearsessions_bench.ts [options]
//   bun bench/clearsessions_bench.ts [options]
//
// --files 100000      session files per sweep (half of them expired); a list
//                     such as 25000,100000 also shows how memory scales
// --repeat 2          sweeps of each kind per size and state, on new files
// --state both        "disk": the files are written back to disk (`sync`)
//                     before the sweep, as sessions saved hours before are;
//                     "cache": swept right after writing, while the file
//                     system still holds them in memory; or "both"
// --pools             also FileStore's sweep with 1, 4, 16 and 64 removals in
//                     flight (on a fifth of the files), to choose that number
//
// Each sweep gets newly written files: half expire 10 days after they were
// written, half after 20, and the sweeps judge as of 15 days later, so every
// file looks as it would after ordinary use (its mtime, the expiry, later than
// its ctime, the write). Peak RSS is sampled every 10 ms and at every
// progress report. The machine may be shared: compare the ratios, and the
// repeats with each other.

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

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    files: { type: "string", default: "100000" },
    repeat: { type: "string", default: "2" },
    state: { type: "string", default: "both" },
    pools: { type: "boolean", default: false },
  },
});
const states = values.state === "both" ? ["disk", "cache"] : [values.state];
const sizes = values.files.split(",").map(Number);
const repeat = Number(values.repeat);
if (
  sizes.some((n) => !Number.isInteger(n) || n < 2) || !(repeat >= 1) ||
  states.some((state) => state !== "disk" && state !== "cache")
) {
  throw new TypeError(
    "--files takes whole numbers of at least 2, --repeat a positive number, --state disk, cache or both",
  );
}

// Writes every dirty page back, as the kernel does within a minute of a write.
function settle(state: string): void {
  if (state === "disk") execFileSync("sync");
}

// Session files as FileStore writes them: named sessionid + a 32-character
// key, the expiry on the first line and as the mtime, then Django-like data.
function writeSessions(dir: string, count: number, writtenAt: number): void {
  mkdirSync(dir);
  for (let i = 0; i < count; i++) {
    const key = i.toString(36).padStart(32, "0");
    const expiresAt = writtenAt + (i % 2 === 0 ? 10 : 20) * DAY;
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

async function tessera(dir: string, now: number): Promise<Result> {
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
// Run with the same synchronous calls and slices as FileStore, so that the
// ratio measures the reading and decoding.
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
async function withConcurrency(dir: string, now: number, concurrency: number): Promise<Result> {
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
}

function check(label: string, result: Result, count: number, dir: string): void {
  const left = readdirSync(dir).length;
  const half = count / 2;
  if (
    result.removed !== Math.ceil(half) || result.kept !== Math.floor(half) || left !== result.kept
  ) {
    throw new Error(
      `${label} removed ${result.removed}, kept ${result.kept}, left ${left}: expected half each`,
    );
  }
}

const mb = (bytes: number) => (bytes / 1e6).toFixed(1);
const median = (list: number[]) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)]!;

const root = mkdtempSync(join(tmpdir(), "tessera-bench-clearsessions-"));
const summary: Record<string, unknown>[] = [];
try {
  console.log(`clearsessions bench on ${RUNTIME}; the sweeps remove half of the files\n`);
  console.log(
    "files    state  sweep                      elapsed     files/s   peak RSS  vs FileStore",
  );
  let run = 0;
  for (const state of states) {
    for (const count of sizes) {
      const ours: Result[] = [];
      const theirs: Result[] = [];
      for (let r = 0; r < repeat; r++) {
        const writtenAt = Date.now();
        const now = writtenAt + 15 * DAY;
        const a = join(root, `tessera-${run}`);
        const b = join(root, `django-${run++}`);
        writeSessions(a, count, writtenAt);
        writeSessions(b, count, writtenAt);
        settle(state);
        const mine = await tessera(a, now);
        check("FileStore.sweep()", mine, count, a);
        const django_ = await django(b, now);
        check("the Django-style sweep", django_, count, b);
        ours.push(mine);
        theirs.push(django_);
        rmSync(a, { recursive: true });
        rmSync(b, { recursive: true });
        const line = (label: string, result: Result, ratio: string) =>
          console.log(
            `${String(count).padEnd(8)} ${state.padEnd(6)} ${label.padEnd(26)} ${
              result.ms.toFixed(0).padStart(6)
            } ms ${Math.round(count / (result.ms / 1000)).toString().padStart(10)} ${
              mb(result.peakRss).padStart(7)
            } MB  ${ratio}`,
          );
        line("FileStore.sweep()", mine, "1.00");
        line("Django: decode every file", django_, (django_.ms / mine.ms).toFixed(2));
      }
      summary.push({
        runtime: RUNTIME,
        state,
        files: count,
        fileStoreMs: ours.map((r) => Math.round(r.ms)),
        djangoMs: theirs.map((r) => Math.round(r.ms)),
        medianFilesPerSecond: Math.round(count / (median(ours.map((r) => r.ms)) / 1000)),
        medianRatio: Number(median(ours.map((r, i) => theirs[i]!.ms / r.ms)).toFixed(2)),
        peakRssMb: Number(mb(Math.max(...ours.map((r) => r.peakRss)))),
      });
    }
  }

  if (values.pools) {
    const count = Math.max(2, Math.floor(sizes.at(-1)! / 5));
    console.log(`\nFileStore's sweep of ${count} files with N removals in flight`);
    for (const state of states) {
      for (let r = 0; r < repeat; r++) {
        const cells: string[] = [];
        for (const concurrency of [1, 4, 16, 64]) {
          const writtenAt = Date.now();
          const dir = join(root, `pool-${run++}`);
          writeSessions(dir, count, writtenAt);
          settle(state);
          const result = await withConcurrency(dir, writtenAt + 15 * DAY, concurrency);
          check(`${concurrency} in flight`, result, count, dir);
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
