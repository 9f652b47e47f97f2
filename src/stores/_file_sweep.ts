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
// Why both kinds of calls. Judging (lstat) touches only the kernel's caches:
// a synchronous call costs a few microseconds, an asynchronous one a thread
// hand-off more (on Deno, three to four times as much). Taking and freeing
// change the directory: a rename aside costs about as much as the unlink
// (7 to 19 us each on this project's test machine, 100 to 300 us to free a
// file written back to disk), and that work overlaps with the judging when
// it runs on the runtime's thread pool. So the sweeper judges with
// synchronous calls, in slices of a few milliseconds between which it yields
// to the event loop (a server sweeping its own directory keeps serving), and
// runs each take (rename aside, lstat of what it took, unlink) as one
// asynchronous task, CONCURRENCY at a time. The longer wait between judging
// and taking changes nothing: whatever the rename takes is checked. The rare
// restore stays synchronous, so that the link back and the tombstone check
// follow each other with no turn of the event loop between.
// bench/clearsessions_bench.ts measures the choices.
//
// Django's format (`format: "django"`). A file holds Django's session_data
// and nothing else, and its mtime is the time of its last save, as Django's
// file engine keeps it: the session expires at mtime + cookieAge, unless
// its data holds a custom expiry (`_session_expiry`), which can be shorter
// or longer. The sweeper reads only the files whose mtime + cookieAge has
// passed: each of them has expired unless a longer custom expiry keeps it,
// which only its decoded data can tell. A younger file is kept unread: it is
// live unless a shorter custom expiry has passed, and keeping such a file
// removes nothing live (load() refuses it, and a later sweep removes it once
// mtime + cookieAge has passed too). So no file is judged on a guess that
// could remove a live session, and the common sweep (most files young, or
// plainly past their age) reads next to nothing. The custom expiry is read
// without checking the signature (_django_file_expiry.ts says why that
// removes nothing live); a file past its age whose data holds none, or is
// no session data (corrupt, Django's empty placeholder), is judged by its
// mtime alone, as Django's clearsessions judges it.

import { linkSync, lstatSync, type Stats, unlinkSync, utimesSync } from "node:fs";
import { readdir, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import { setImmediate as nextTurn } from "node:timers/promises";
import { generateKey, isValidKey } from "../_key.ts";
import type { Logger } from "../logger.ts";
import { errorCode, fileError, isMissing } from "./_file_errors.ts";
import {
  isPlaceholder,
  isTrusted,
  processUser,
  readStartTrusted,
  readTrustedFileSync,
  untrustedWarning,
} from "./_file_trust.ts";
import { djangoFileExpiresAt } from "./_django_format.ts";
import { claimedDjangoExpiry } from "./_django_file_expiry.ts";
import type { SweepOptions, SweepReport } from "./store.ts";

/**
 * The longest random tail after the temp mark in a name the engine or the
 * sweeper builds: a temp file's tail is 12 characters, an aside name's is
 * "sweep", 8 characters and a counter of at most 11 (2^53 in base 36).
 */
export const LONGEST_TEMP_TAIL = 24;
const TEMP_TAIL = /^[a-z0-9]{12,24}$/;

/** What the sweeper needs to know of a FileStore. */
export interface SweepTarget {
  path: string;
  prefix: string;
  /** The mark between a session file's name and a temp file's random suffix. */
  tempMark: string;
  /** The suffix of a session file's name that makes a logout's tombstone. */
  tombstoneMark: string;
  /** Where the sweep reports files it ignored as not the engine's own. */
  logger?: Logger;
  /** Milliseconds after which a temp file counts as left by a crashed write. */
  staleTempAfter: number;
  /** Seconds a file without a readable expiry lives after its modification time. */
  cookieAge: number;
  /**
   * True for Django's format: the files are then judged as the module's
   * comment says, not by the native format's mtime = expiry.
   */
  django?: boolean;
}

// The longest run of synchronous calls between two turns of the event loop.
const SLICE_MS = 5;
// Takes in flight at once, chosen for their unlinks, on files written back to
// disk: one at a time ran three times as long as 16; 16 and 32 were the
// steadiest of 1, 4, 16, 32 and 64 on both runtimes, and 4 and 64 were
// sometimes faster, sometimes much slower (bench/clearsessions_bench.ts
// --pools --state disk).
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
  uid: number | null;
  mode: number | null;
}

// The part of Deno's file system API the sweeper calls, typed here so that
// the module also type-checks where Deno's types are absent (a Bun project).
interface DenoFileInfo {
  isFile: boolean;
  mtime: Date | null;
  ctime: Date | null;
  size: number;
  ino: number | null;
  uid: number | null;
  mode: number | null;
}
interface DenoFileSystem {
  lstatSync(path: string): DenoFileInfo;
  rename(from: string, to: string): Promise<void>;
  remove(path: string): Promise<void>;
  readDir(path: string): AsyncIterable<{ name: string }>;
}

// The calls made once per file. Deno's own ones skip the argument checks and
// object building of its node:fs layer: its lstat is about three times as
// fast, and a sweep on its own calls took 10 to 20% less time on files
// written back to disk (bench/clearsessions_bench.ts). Bun's node:fs calls
// are its own. Deno.remove() would also remove an empty directory, so it is
// given only a file the sweep has just seen to be the regular file it judged.
const deno = (globalThis as { Deno?: DenoFileSystem }).Deno;
const fs: {
  lstat(file: string): FileFacts;
  rename(from: string, to: string): Promise<void>;
  unlinkJudged(file: string): Promise<void>;
} = deno !== undefined
  ? {
    lstat: (file) => denoFacts(deno.lstatSync(file)),
    rename: (from, to) => deno.rename(from, to),
    unlinkJudged: (file) => deno.remove(file),
  }
  : {
    lstat: (file) => nodeFacts(lstatSync(file)),
    rename,
    unlinkJudged: unlink,
  };

function denoFacts(info: DenoFileInfo): FileFacts {
  return {
    isFile: info.isFile,
    mtimeMs: info.mtime?.getTime() ?? NaN,
    ctimeMs: info.ctime?.getTime() ?? NaN,
    size: info.size,
    ino: info.ino,
    uid: info.uid,
    mode: info.mode,
  };
}

function nodeFacts(stats: Stats): FileFacts {
  return {
    isFile: stats.isFile(),
    mtimeMs: stats.mtimeMs,
    ctimeMs: stats.ctimeMs,
    size: stats.size,
    ino: stats.ino,
    uid: stats.uid,
    mode: stats.mode,
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
  /** After a live file was linked back, before the check for a logout's tombstone. */
  afterRestore?(file: string): void;
  /** Takes (rename aside, check, unlink) in flight at once, instead of CONCURRENCY. */
  concurrency?: number;
  /** In Django's format, after a file's data was read to find its expiry. */
  afterRead?(file: string): void;
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
  if (target.prefix === "") {
    // FileStore refuses it first; this guards every other caller.
    throw new TypeError(
      "Cannot sweep as the prefix must not be empty, or any file named like a key would be judged",
    );
  }
  const probe = () =>
    join(target.path, target.prefix + generateKey()) + target.tempMark +
    generateKey().slice(0, 12);
  const owner = await processUser(probe, target.path);
  const sweep = new Sweep(target, owner, options, internals);
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
    if (sweep.untrusted > 0) target.logger?.warn(untrustedWarning(target.path, sweep.untrusted));
  }
  options.onProgress?.(checked);
  return sweep.report;
}

class Sweep {
  readonly report: SweepReport = { removed: 0, kept: 0, tempRemoved: 0, failed: 0, errors: [] };
  readonly #target: SweepTarget;
  readonly #owner: number | null;
  readonly #now: number;
  readonly #dryRun: boolean;
  readonly #cookieAgeMs: number;
  readonly #hooks: SweepInternals;
  readonly #concurrency: number;
  // Aside names: unique per sweep, so that two sweepers never share one.
  readonly #asideMark = `sweep${generateKey().slice(0, 8)}`;
  #taken = 0;
  /** Files at the engine's names that are not the engine's own, left alone. */
  untrusted = 0;
  readonly #removals = new Set<Promise<void>>();

  constructor(
    target: SweepTarget,
    owner: number | null,
    options: SweepOptions,
    internals: SweepInternals,
  ) {
    this.#target = target;
    this.#owner = owner;
    this.#hooks = internals;
    this.#concurrency = internals.concurrency ?? CONCURRENCY;
    this.#now = options.now ?? Date.now();
    this.#dryRun = options.dryRun ?? false;
    this.#cookieAgeMs = (options.cookieAge ?? target.cookieAge) * 1000;
  }

  // Only names of the forms the engine writes: prefix + key, its temp and
  // aside names (key, mark, 12 to 24 characters of the key alphabet), and
  // its tombstones.
  visit(name: string): void {
    const { path, prefix, tempMark, tombstoneMark } = this.#target;
    if (!name.startsWith(prefix)) return;
    const rest = name.slice(prefix.length);
    if (isValidKey(rest)) {
      if (this.#target.django) this.#visitDjango(join(path, name));
      else this.#visitSession(join(path, name));
      return;
    }
    if (rest.endsWith(tombstoneMark)) {
      if (!isValidKey(rest.slice(0, -tombstoneMark.length))) return;
      const tombstone = join(path, name);
      this.#removeResurrected(tombstone.slice(0, -tombstoneMark.length));
      this.#visitLeftover(tombstone);
      return;
    }
    const mark = rest.indexOf(tempMark);
    const tail = rest.slice(mark + tempMark.length);
    // Not this sweep's own files taken aside, which a streamed listing may
    // show while their removal is in flight.
    if (
      mark > 0 && isValidKey(rest.slice(0, mark)) && TEMP_TAIL.test(tail) &&
      !tail.startsWith(this.#asideMark)
    ) {
      this.#visitLeftover(join(path, name));
    }
  }

  #visitSession(file: string): void {
    const before = this.#lstat(file, "check a session file");
    // Gone (deleted by a logout or another sweeper).
    if (before === null) return;
    if (!isTrusted(before, this.#owner)) {
      this.untrusted++;
      return;
    }
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

  #visitDjango(file: string): void {
    const before = this.#lstat(file, "check a session file");
    if (before === null) return;
    if (!isTrusted(before, this.#owner) && !isPlaceholder(before, before.size, this.#owner)) {
      this.untrusted++;
      return;
    }
    const aged = before.mtimeMs + this.#cookieAgeMs;
    if (!(aged <= this.#now)) {
      this.report.kept++;
      return;
    }
    if (before.size === 0) {
      this.#judge(file, before, aged);
      return;
    }
    this.#readDjango(file, before);
  }

  #readDjango(file: string, before: FileFacts): void {
    let read;
    try {
      read = readTrustedFileSync(file, this.#target.path, this.#owner, true);
    } catch (error) {
      this.#failWith(error as Error);
      return;
    }
    if (read === "missing") return;
    if (read === "untrusted") {
      this.untrusted++;
      return;
    }
    this.#hooks.afterRead?.(file);
    // Saved since the lstat: live, with a new mtime. (Whole milliseconds:
    // Deno's own lstat has no finer ones.)
    if (Math.floor(read.mtimeMs) !== Math.floor(before.mtimeMs)) {
      this.report.kept++;
      return;
    }
    const expiresAt = djangoFileExpiresAt(
      claimedDjangoExpiry(read.text),
      before.mtimeMs,
      this.#cookieAgeMs / 1000,
    );
    this.#judge(file, before, expiresAt);
  }

  #judge(file: string, before: FileFacts, expiresAt: number): void {
    if (expiresAt > this.#now) {
      this.report.kept++;
    } else if (this.#dryRun) {
      this.report.removed++;
    } else {
      this.#remove(file, before);
    }
  }

  /** Whether as many takes as may run at once are running. */
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
      firstLine = readStartTrusted(file, this.#target.path, this.#owner, FIRST_LINE_BYTES);
    } catch (error) {
      this.#failWith(error as Error);
      return null;
    }
    if (firstLine === "missing") return null;
    if (firstLine === "untrusted") {
      this.untrusted++;
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
    const removal: Promise<void> = this.#take(file, aside, judged).finally(() =>
      this.#removals.delete(removal)
    );
    this.#removals.add(removal);
  }

  // Renaming aside and freeing the file run on the runtime's thread pool,
  // CONCURRENCY at a time, alongside the judging: the rename, like the
  // unlink, waits on the directory's lock and the inode, and overlaps with
  // other files' calls. What the rename took is checked as soon as it lands.
  async #take(file: string, aside: string, judged: FileFacts): Promise<void> {
    try {
      await fs.rename(file, aside);
    } catch (error) {
      if (!isMissing(error)) this.#fail("remove an expired session file", error);
      return;
    }
    const taken = this.#lstat(aside, "remove an expired session file");
    if (taken === null) return;
    if (isSameFile(taken, judged)) {
      try {
        await fs.unlinkJudged(aside);
        this.report.removed++;
      } catch (error) {
        if (isMissing(error)) this.report.removed++;
        else this.#fail("remove an expired session file", error);
      }
      return;
    }
    this.#restore(file, aside, taken);
  }

  // A save made the session live again: put it back, unless a yet newer
  // save already stands at the name. In the native format it goes back
  // with a modification time that is not its expiry, so that load() checks
  // for a logout until the tombstone check below has passed (see
  // FileStore.load).
  #restore(file: string, aside: string, taken: FileFacts): void {
    this.#hooks.beforeRestore?.(file);
    const published = !this.#target.django && this.#setTimes(aside, Date.now());
    let restored = true;
    try {
      linkSync(aside, file);
    } catch (error) {
      if (errorCode(error) !== "EEXIST") {
        // The session stays under the aside name, for an operator to see.
        this.#fail("restore a live session file", error);
        return;
      }
      restored = false;
    }
    this.#hooks.afterRestore?.(file);
    // A logout while the file was aside found no file to remove; its
    // tombstone, made before it looked, is there now: undo the restore.
    const loggedOut = restored &&
      this.#lstat(file + this.#target.tombstoneMark, "check a session file") !== null;
    if (loggedOut) {
      try {
        unlinkSync(file);
      } catch (error) {
        if (!isMissing(error)) this.#fail("remove a logged-out session file", error);
      }
    }
    if (restored && !loggedOut && published) this.#setTimes(aside, taken.mtimeMs);
    try {
      unlinkSync(aside);
    } catch (error) {
      if (!isMissing(error)) this.#fail("remove a temp file", error);
    }
    if (!loggedOut) this.report.kept++;
  }

  // Sets a file's modification time (milliseconds); false when it failed,
  // which is counted as a failure of the sweep.
  #setTimes(file: string, mtimeMs: number): boolean {
    try {
      utimesSync(file, Date.now() / 1000, mtimeMs / 1000);
      return true;
    } catch (error) {
      if (!isMissing(error)) this.#fail("restore a live session file", error);
      return false;
    }
  }

  // A temp file left by a write that crashed, or a logout's tombstone: both
  // are removed once older than staleTempAfter, which outlasts any live write.
  #visitLeftover(file: string): void {
    const facts = this.#lstat(file, "check a temp file");
    if (facts === null) return;
    if (!isTrusted(facts, this.#owner)) {
      this.untrusted++;
      return;
    }
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

  // A session file beside its tombstone was put back after the logout: by a
  // Django save racing a Tessera logout (Django's file engine knows no
  // tombstones), or by a Tessera update whose process ended between its
  // rename and its own undo. load() ignores such a file; the sweeper removes
  // it before the tombstone's time runs out, so that the logout stays final
  // after the tombstone is gone (no new session reuses a key while its
  // tombstone lasts).
  #removeResurrected(file: string): void {
    const facts = this.#lstat(file, "check a session file");
    if (facts === null || !isTrusted(facts, this.#owner)) return;
    if (this.#dryRun) {
      this.report.removed++;
      return;
    }
    try {
      unlinkSync(file);
      this.report.removed++;
    } catch (error) {
      if (!isMissing(error)) this.#fail("remove a logged-out session file", error);
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
    this.#failWith(fileError(action, this.#target.path, error));
  }

  #failWith(error: Error): void {
    this.report.failed++;
    if (this.report.errors.length < MAX_ERRORS) this.report.errors.push(error.message);
  }
}

// A file is the one judged if it is the same inode with the same mtime: saves
// never change a file in place, they replace it with a new inode.
function isSameFile(a: FileFacts, b: FileFacts): boolean {
  return a.mtimeMs === b.mtimeMs && a.size === b.size && (a.ino === null || a.ino === b.ino);
}
