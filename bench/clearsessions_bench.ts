// clearsessions: FileStore's sweep against the sweep Django's file engine
// does (list the directory, open and decode every file, judge its expiry from
// its content, remove it), on the same files, in the same run.
//
//   deno run --allow-read --allow-write --allow-env --allow-run \
//     bench/clearsessions_bench.ts [options]
//   bun bench/clearsessions_bench.ts [options]
//
// --files 100000   session files per sweep; a list such as 25000,100000 also
//                  shows whether memory grows with the number of files
// --repeat 3       sweeps of each kind per size and scenario
// --state cache    for the half-expired scenario: "cache" sweeps right after
//                  writing, while the file system still holds the new files
//                  in memory; "disk" first writes them back (`sync`), as
//                  sessions saved hours before are; or "both"
// --pools          instead, FileStore's sweep alone with 1, 4, 16, 32 and 64
//                  removals in flight, to choose that number
// --root <dir>     where the session directories go (default: the OS temp
//                  dir), to compare file systems, say a tmpfs with a disk
//
// Three sweeps: FileStore's; Django's; and "stat + unlink", FileStore's
// judging followed by a plain unlink, without the protection against a
// concurrent save (so its difference with FileStore's is that protection's
// price). Two scenarios. "all live": no file has expired, so the sweeps only
// judge (with one lstat a file, or by reading and decoding each, Django's way);
// the files are written once and every sweep goes over them. "half expired"
// (the target: 100 000 files in under 3 s): half the files are removed, on
// new files for every sweep. Files expire 10 or 20 days after they were
// written and the sweeps judge as of 15 days later, so that every file looks
// as it would after ordinary use (its mtime, the expiry, later than its ctime,
// the write). Each sweep runs in a process of its own (_clearsessions_sweep.ts),
// which samples its RSS every 10 ms and at every progress report, so that the
// peak is the sweep's. Before files are written, `sync` lets the disk finish
// the previous sweep's work. The machine may be shared: compare ratios, and
// the repeats with each other.

import {
  closeSync,
  futimesSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  rmSync,
  writeSync,
} from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { median } from "./_stats.ts";

const DAY = 86_400_000;
const RUNTIME = "Bun" in globalThis
  ? `bun ${process.versions.bun}`
  : `deno ${Deno.version.deno}`;

interface Result {
  ms: number;
  peakRss: number;
  removed: number;
  kept: number;
}

type Sweeper = (dir: string, now: number) => Result;

const SWEEP = fileURLToPath(
  new URL("./_clearsessions_sweep.ts", import.meta.url),
);

// Runs one sweep in a new process of this runtime.
function sweepIn(kind: string, concurrency?: number): Sweeper {
  return (dir, now) => {
    const args = [
      SWEEP,
      kind,
      dir,
      String(now),
      ...(concurrency ? [String(concurrency)] : []),
    ];
    const deno = (globalThis as { Deno?: typeof Deno }).Deno;
    const output = deno !== undefined
      ? execFileSync(deno.execPath(), [
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        ...args,
      ])
      : execFileSync(process.execPath, args);
    return JSON.parse(new TextDecoder().decode(output));
  };
}
const fileStore = sweepIn("filestore");
const django = sweepIn("django");
const unsafe = sweepIn("unsafe");

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    files: { type: "string", default: "100000" },
    repeat: { type: "string", default: "3" },
    state: { type: "string", default: "cache" },
    pools: { type: "boolean", default: false },
    root: { type: "string" },
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
function writeSessions(
  dir: string,
  count: number,
  writtenAt: number,
  halfExpired: boolean,
): void {
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
function sync(): void {
  execFileSync("sync");
}

// Hono's habit: check each contender's output, not only its time.
function check(
  label: string,
  result: Result,
  removed: number,
  kept: number,
  dir: string,
): void {
  const left = readdirSync(dir).length;
  if (result.removed !== removed || result.kept !== kept || left !== kept) {
    throw new Error(
      `${label} removed ${result.removed}, kept ${result.kept}, left ${left}: expected ${removed} and ${kept}`,
    );
  }
}

const mb = (bytes: number) => (bytes / 1e6).toFixed(1);

function line(
  files: number,
  scenario: string,
  label: string,
  result: Result,
  ratio: string,
) {
  console.log(
    `${String(files).padEnd(7)} ${scenario.padEnd(19)} ${label.padEnd(17)} ${
      result.ms.toFixed(0).padStart(6)
    } ms ${Math.round(files / (result.ms / 1000)).toString().padStart(8)} ${
      mb(result.peakRss).padStart(6)
    } MB  ${ratio}`,
  );
}

const root = mkdtempSync(
  join(values.root ?? tmpdir(), "tessera-bench-clearsessions-"),
);
const summary: Record<string, unknown>[] = [];
let run = 0;

// Runs both sweeps `repeat` times, alternating which goes first, and prints
// and keeps the figures. `prepare` gives each sweep its directory.
function compare(
  files: number,
  scenario: string,
  prepare: () => {
    dir: string;
    now: number;
    removed: number;
    kept: number;
    done(): void;
  },
): void {
  const ours: Result[] = [];
  const theirs: Result[] = [];
  const unprotected: Result[] = [];
  for (let r = 0; r < repeat; r++) {
    const order: [string, Sweeper, Result[]][] = [
      ["FileStore.sweep()", fileStore, ours],
      ["Django-style", django, theirs],
      ["stat + unlink", unsafe, unprotected],
    ];
    // Each goes first in turn.
    for (let i = 0; i < r % order.length; i++) order.push(order.shift()!);
    for (const [label, sweep, results] of order) {
      const { dir, now, removed, kept, done } = prepare();
      const result = sweep(dir, now);
      check(label, result, removed, kept, dir);
      done();
      results.push(result);
    }
    line(files, scenario, "FileStore.sweep()", ours[r]!, "1.00");
    line(
      files,
      scenario,
      "Django-style",
      theirs[r]!,
      (theirs[r]!.ms / ours[r]!.ms).toFixed(2),
    );
    line(
      files,
      scenario,
      "stat + unlink",
      unprotected[r]!,
      (unprotected[r]!.ms / ours[r]!.ms).toFixed(2),
    );
  }
  summary.push({
    runtime: RUNTIME,
    scenario,
    files,
    fileStoreMs: ours.map((r) => Math.round(r.ms)),
    djangoMs: theirs.map((r) => Math.round(r.ms)),
    fileStoreFilesPerSecond: Math.round(
      files / (median(ours.map((r) => r.ms)) / 1000),
    ),
    djangoOverFileStore: Number(
      median(ours.map((r, i) => theirs[i]!.ms / r.ms)).toFixed(2),
    ),
    unprotectedMs: unprotected.map((r) => Math.round(r.ms)),
    fileStorePeakRssMb: Number(mb(Math.max(...ours.map((r) => r.peakRss)))),
    djangoPeakRssMb: Number(mb(Math.max(...theirs.map((r) => r.peakRss)))),
  });
}

try {
  console.log(`clearsessions bench on ${RUNTIME}\n`);
  if (values.pools) {
    const files = sizes.at(-1)!;
    console.log(
      `FileStore's sweep of ${files} files, half expired, with N removals in flight`,
    );
    for (const state of states) {
      for (let r = 0; r < repeat; r++) {
        const cells: string[] = [];
        for (const concurrency of [1, 4, 16, 32, 64]) {
          sync();
          const writtenAt = Date.now();
          const dir = join(root, `pool-${run++}`);
          writeSessions(dir, files, writtenAt, true);
          if (state === "disk") sync();
          const result = sweepIn("filestore", concurrency)(
            dir,
            writtenAt + 15 * DAY,
          );
          check(
            `${concurrency} in flight`,
            result,
            Math.ceil(files / 2),
            Math.floor(files / 2),
            dir,
          );
          rmSync(dir, { recursive: true });
          cells.push(
            `N=${concurrency}: ${result.ms.toFixed(0).padStart(5)} ms`,
          );
        }
        console.log(`${state.padEnd(6)} ${cells.join("   ")}`);
      }
    }
  } else {
    console.log(
      "files   scenario            sweep             elapsed  files/s  peak RSS  time / FileStore's",
    );
    for (const files of sizes) {
      const writtenAt = Date.now();
      const dir = join(root, `live-${run++}`);
      writeSessions(dir, files, writtenAt, false);
      compare(files, "all live", () => ({
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
        compare(files, `half expired, ${state}`, () => {
          sync();
          const writtenAt = Date.now();
          const dir = join(root, `half-${run++}`);
          writeSessions(dir, files, writtenAt, true);
          if (state === "disk") sync();
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
  }
  console.log(`\n${JSON.stringify(summary)}`);
} finally {
  rmSync(root, { recursive: true, force: true });
}
