// The file engine's sweeper: it decides each session file's fate with one
// `lstat`, and removes an expired file in a way that never removes a session
// saved at the same moment.
//
// How an expiry is read. FileStore sets a file's modification time to the
// session's expiry, and the file's change time (ctime, which no program can
// set) to the moment of the write, so a file written by FileStore has an
// mtime later than its ctime. A copy, a `touch` or a restore from a backup
// resets the mtime to the present and makes the ctime at least as late: such
// an mtime is not an expiry, so the sweeper reads the expiry from the file's
// first line, where FileStore also writes it, instead of removing a live
// session whose mtime was reset. Only a file whose first line is not an expiry
// either (not written by FileStore, or damaged) falls back to Django's rule:
// it expires `cookieAge` seconds after its modification time.
//
// How a file is removed. There is no "unlink if unchanged" call, and a save
// replaces a file with a rename at any moment, so a check followed by an
// unlink could remove a session saved in between. The sweeper renames the
// file aside instead, which takes exactly one inode, looks at what it took,
// and removes it only if it is the expired file it judged. If a save put a new
// file in place between the look and the rename, the new file is linked back
// under its name; link() fails rather than replace a yet newer save, in which
// case the taken copy is dropped.
//
// Why both kinds of calls. Judging (lstat) and taking aside (rename, lstat)
// touch only the kernel's caches and the directory: a synchronous call costs
// a few microseconds, an asynchronous one a thread hand-off more (on Deno,
// three to four times as much), and taking right after judging keeps the
// window for a concurrent save at microseconds. Freeing the file is the
// expensive part (100 to 300 us for a file written back to disk, on this
// project's test machine), and that work overlaps when several unlinks run at
// once. So the sweeper judges and takes with synchronous calls, in slices of
// a few milliseconds between which it yields to the event loop (a server
// sweeping its own directory keeps serving), and unlinks what it took
// asynchronously, CONCURRENCY at a time. bench/clearsessions_bench.ts
// measures the choices.

import {
  closeSync,
  linkSync,
  lstatSync,
  openSync,
  readSync,
  renameSync,
  type Stats,
  unlinkSync,
} from "node:fs";
import { readdir, unlink } from "node:fs/promises";
import { join } from "node:path";
import { setImmediate as nextTurn } from "node:timers/promises";
import { generateKey, isValidKey } from "../_key.ts";
import { errorCode, fileError, isMissing } from "./_file_errors.ts";
import type { SweepOptions, SweepReport } from "./store.ts";

/** What the sweeper needs to know of a FileStore. */
export interface SweepTarget {
  path: string;
  prefix: string;
  /** The mark between a session file's name and a temp file's random suffix. */
  tempMark: string;
  /** Milliseconds after which a temp file counts as left by a crashed write. */
  staleTempAfter: number;
  /** Seconds a file without a readable expiry lives after its modification time. */
  cookieAge: number;
}

// The longest run of synchronous calls between two turns of the event loop.
const SLICE_MS = 5;
// Unlinks in flight at once, on files written back to disk: 1 takes three
// times as long as 16; 16 and 32 were the steadiest of 1, 4, 16, 32 and 64 on
// both runtimes, and 4 and 64 were sometimes faster, sometimes much slower
// (bench/clearsessions_bench.ts --pools --state disk).
const CONCURRENCY = 16;
// An mtime that is not later than the ctime by more than this is not taken as
// an expiry: Deno reports the ctime in whole seconds, and some file systems
// keep times in steps of 2 s.
const CTIME_SLACK_MS = 2000;
// Enough bytes for a first line of up to 16 digits and its newline.
const FIRST_LINE_BYTES = 32;
const MAX_ERRORS = 10;

interface FileFacts {
  isFile: boolean;
  mtimeMs: number;
  ctimeMs: number;
  size: number;
  ino: number | bigint | null;
}

// The calls made once per file. Deno's own ones skip the argument checks and
// object building of its node:fs layer: its lstat is about three times as
// fast, and a sweep on its own calls took 10 to 20% less time on files
// written back to disk (bench/clearsessions_bench.ts). Bun's node:fs calls
// are its own. Deno.remove() would also remove an empty directory, so it is
// given only a file the sweep has just seen to be the regular file it judged.
const deno = (globalThis as { Deno?: typeof Deno }).Deno;
const fs = deno !== undefined
  ? {
    lstat: (file: string) => denoFacts(deno.lstatSync(file)),
    rename: deno.renameSync,
    unlinkJudged: (file: string) => deno.remove(file),
  }
  : {
    lstat: (file: string) => nodeFacts(lstatSync(file)),
    rename: renameSync,
    unlinkJudged: unlink,
  };

function denoFacts(info: Deno.FileInfo): FileFacts {
  return {
    isFile: info.isFile,
    mtimeMs: info.mtime?.getTime() ?? NaN,
    ctimeMs: info.ctime?.getTime() ?? NaN,
    size: info.size,
    ino: info.ino,
  };
}

function nodeFacts(stats: Stats): FileFacts {
  return {
    isFile: stats.isFile(),
    mtimeMs: stats.mtimeMs,
    ctimeMs: stats.ctimeMs,
    size: stats.size,
    ino: stats.ino,
  };
}

// Deno.readDir streams the directory in batches, in flat memory. Neither
// runtime's node:fs opendir() streams (both read the whole directory first
// and keep a Dirent per entry), so on Bun the one list of names readdir()
// gives is the smallest form the listing can take.
async function* listNames(path: string): AsyncGenerator<string> {
  if (deno !== undefined) {
    for await (const entry of deno.readDir(path)) yield entry.name;
  } else {
    yield* await readdir(path);
  }
}

/** What tests and benchmarks may change in a sweep. */
export interface SweepInternals {
  /** After an expired file was judged, before it is renamed aside. */
  beforeTake?(file: string): void;
  /** After a file taken aside turned out to be live, before it is linked back. */
  beforeRestore?(file: string): void;
  /** Unlinks in flight at once, instead of CONCURRENCY. */
  concurrency?: number;
}

/**
 * Sweeps the session files of `target`: removes the expired ones and the
 * temp files older than `staleTempAfter`, and counts what it kept.
 */
export async function sweepFiles(
  target: SweepTarget,
  options: SweepOptions = {},
  internals: SweepInternals = {},
): Promise<SweepReport> {
  const sweep = new Sweep(target, options, internals);
  const names = listNames(target.path);
  let checked = 0;
  let sliceEnd = performance.now() + SLICE_MS;
  try {
    while (true) {
      let next: IteratorResult<string>;
      try {
        next = await names.next();
      } catch (error) {
        throw fileError("list the session directory", target.path, error);
      }
      if (next.done) break;
      sweep.visit(next.value);
      checked++;
      if (sweep.busy) await sweep.room();
      if (performance.now() >= sliceEnd) {
        options.onProgress?.(checked);
        await nextTurn();
        sliceEnd = performance.now() + SLICE_MS;
      }
    }
  } finally {
    await names.return(undefined);
    await sweep.done();
  }
  options.onProgress?.(checked);
  return sweep.report;
}

class Sweep {
  readonly report: SweepReport = { removed: 0, kept: 0, tempRemoved: 0, failed: 0, errors: [] };
  readonly #target: SweepTarget;
  readonly #now: number;
  readonly #dryRun: boolean;
  readonly #cookieAgeMs: number;
  readonly #hooks: SweepInternals;
  readonly #concurrency: number;
  // Aside names: unique per sweep, so that two sweepers never share one.
  readonly #asideMark = `sweep${generateKey().slice(0, 8)}`;
  #taken = 0;
  readonly #removals = new Set<Promise<void>>();

  constructor(target: SweepTarget, options: SweepOptions, internals: SweepInternals) {
    this.#target = target;
    this.#hooks = internals;
    this.#concurrency = internals.concurrency ?? CONCURRENCY;
    this.#now = options.now ?? Date.now();
    this.#dryRun = options.dryRun ?? false;
    this.#cookieAgeMs = (options.cookieAge ?? target.cookieAge) * 1000;
  }

  visit(name: string): void {
    const { path, prefix, tempMark } = this.#target;
    if (!name.startsWith(prefix)) return;
    const rest = name.slice(prefix.length);
    if (isValidKey(rest)) {
      this.#visitSession(join(path, name));
      return;
    }
    const mark = rest.indexOf(tempMark);
    // Not this sweep's own files taken aside, which a streamed listing may
    // show while their removal is in flight.
    if (
      mark > 0 && isValidKey(rest.slice(0, mark)) &&
      !rest.startsWith(this.#asideMark, mark + tempMark.length)
    ) {
      this.#visitTemp(join(path, name));
    }
  }

  #visitSession(file: string): void {
    const before = this.#lstat(file, "check a session file");
    // Gone (deleted by a logout or another sweeper), or not a file of ours.
    if (before === null || !before.isFile) return;
    const expiresAt = this.#expiryOf(file, before);
    if (expiresAt === null) return;
    if (expiresAt > this.#now) {
      this.report.kept++;
    } else if (this.#dryRun) {
      this.report.removed++;
    } else {
      this.#remove(file, before);
    }
  }

  /** Whether as many unlinks as may run at once are running. */
  get busy(): boolean {
    return this.#removals.size >= this.#concurrency;
  }

  /** Resolves once a removal has finished. */
  async room(): Promise<void> {
    await Promise.race(this.#removals);
  }

  /** Resolves once every removal has finished. */
  async done(): Promise<void> {
    await Promise.all(this.#removals);
  }

  #expiryOf(file: string, facts: FileFacts): number | null {
    if (facts.mtimeMs > facts.ctimeMs + CTIME_SLACK_MS) return facts.mtimeMs;
    let firstLine: string;
    try {
      firstLine = readStart(file);
    } catch (error) {
      if (!isMissing(error)) this.#fail("read a session file", error);
      return null;
    }
    const newline = firstLine.indexOf("\n");
    const expiresAt = newline > 0 ? Number(firstLine.slice(0, newline)) : NaN;
    if (Number.isFinite(expiresAt)) return expiresAt;
    // A file without a readable expiry: Django's rule, from its mtime.
    return Number.isFinite(facts.mtimeMs) ? facts.mtimeMs + this.#cookieAgeMs : Infinity;
  }

  #remove(file: string, judged: FileFacts): void {
    const aside = `${file}${this.#target.tempMark}${this.#asideMark}${
      (this.#taken++).toString(36)
    }`;
    this.#hooks.beforeTake?.(file);
    try {
      fs.rename(file, aside);
    } catch (error) {
      if (!isMissing(error)) this.#fail("remove an expired session file", error);
      return;
    }
    const taken = this.#lstat(aside, "remove an expired session file");
    if (taken === null) return;
    if (isSameFile(taken, judged)) {
      this.#unlinkLater(aside);
      return;
    }
    // A save made the session live again: put it back, unless a yet newer
    // save already stands at the name.
    this.#hooks.beforeRestore?.(file);
    try {
      linkSync(aside, file);
    } catch (error) {
      if (errorCode(error) !== "EEXIST") {
        // The session stays under the aside name, for an operator to see.
        this.#fail("restore a live session file", error);
        return;
      }
    }
    try {
      unlinkSync(aside);
    } catch (error) {
      if (!isMissing(error)) this.#fail("remove a temp file", error);
    }
    this.report.kept++;
  }

  // The file is out of every save's way under its aside name: freeing it,
  // the costly part, runs alongside the judging and other removals.
  #unlinkLater(aside: string): void {
    const removal: Promise<void> = fs.unlinkJudged(aside).then(
      () => void this.report.removed++,
      (error) => {
        if (isMissing(error)) this.report.removed++;
        else this.#fail("remove an expired session file", error);
      },
    ).finally(() => this.#removals.delete(removal));
    this.#removals.add(removal);
  }

  #visitTemp(file: string): void {
    const facts = this.#lstat(file, "check a temp file");
    if (facts === null || !facts.isFile) return;
    // ctime, not mtime: a temp file's mtime is already set to the expiry.
    // The file system keeps sub-millisecond times and Date.now() does not: a
    // temp file made in this very millisecond can look a fraction younger
    // than "now", so compare whole milliseconds.
    if (!(Math.floor(facts.ctimeMs) <= Date.now() - this.#target.staleTempAfter)) return;
    if (this.#dryRun) {
      this.report.tempRemoved++;
      return;
    }
    try {
      unlinkSync(file);
      this.report.tempRemoved++;
    } catch (error) {
      if (!isMissing(error)) this.#fail("remove a stale temp file", error);
    }
  }

  #lstat(file: string, action: string): FileFacts | null {
    try {
      return fs.lstat(file);
    } catch (error) {
      if (!isMissing(error)) this.#fail(action, error);
      return null;
    }
  }

  #fail(action: string, error: unknown): void {
    this.report.failed++;
    if (this.report.errors.length < MAX_ERRORS) {
      this.report.errors.push(fileError(action, this.#target.path, error).message);
    }
  }
}

// A file is the one judged if it is the same inode with the same mtime: saves
// never change a file in place, they replace it with a new inode.
function isSameFile(a: FileFacts, b: FileFacts): boolean {
  return a.mtimeMs === b.mtimeMs && a.size === b.size && (a.ino === null || a.ino === b.ino);
}

function readStart(file: string): string {
  const fd = openSync(file, "r");
  try {
    const buffer = new Uint8Array(FIRST_LINE_BYTES);
    const length = readSync(fd, buffer, 0, FIRST_LINE_BYTES, 0);
    return new TextDecoder().decode(buffer.subarray(0, length));
  } finally {
    closeSync(fd);
  }
}
