/**
 * The default engine: one file per session (Django's `backends.file`).
 *
 * @module
 */

import { closeSync, constants, futimesSync, openSync, statSync } from "node:fs";
import { type FileHandle, link, lstat, open, rename, stat, unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateKey, isValidKey } from "../_key.ts";
import { SessionExistsError, SessionInterruptedError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import {
  denoPermissionMessage,
  errorCode,
  fileError,
  isMissing,
  missingDenoPermission,
} from "./_file_errors.ts";
import { LONGEST_TEMP_TAIL, sweepFiles } from "./_file_sweep.ts";
import {
  isPlaceholder,
  isTrusted,
  processUser,
  readTrustedFileSync,
  untrustedWarning,
} from "./_file_trust.ts";
import { syncFs, type WrittenFile } from "./_file_io.ts";
import {
  decodeDjangoSession,
  djangoFileExpiresAt,
  djangoStoredSession,
  encodeDjangoSession,
  isDjangoFormat,
  requireDjangoSecret,
} from "./_django_format.ts";
import {
  createWithUniqueKey,
  type SessionStore,
  type StoredSession,
  type StoreSettings,
  type SweepOptions,
  type SweepReport,
} from "./store.ts";

/**
 * Options of {@link FileStore}.
 *
 * @example
 * ```ts
 * import { FileStore, type FileStoreOptions } from "@tessera/sessions";
 *
 * const options: FileStoreOptions = { path: Deno.makeTempDirSync(), prefix: "sid" };
 * new FileStore(options);
 * ```
 */
export interface FileStoreOptions {
  /**
   * The directory of the session files (`SESSION_FILE_PATH`). It must exist.
   *
   * @default {os.tmpdir()}
   */
  path?: string;
  /**
   * The start of every session file's name.
   *
   * @default {the cookieName given to withSessions, "sessionid" by default}
   */
  prefix?: string;
  /**
   * Milliseconds after which a temp file counts as left by a write that
   * crashed, for `clearExpired()` to remove. A live write's temp file exists
   * for well under a second.
   *
   * @default {60000}
   */
  staleTempAfter?: number;
  /**
   * Whether a write is flushed to disk (`fsync` of the file, then of the
   * directory) before it is acknowledged, so that it survives a power loss
   * or a kernel crash, and not only a killed process. Each save then waits
   * for the disk: on a disk without a write cache, several milliseconds.
   *
   * @default {false}
   */
  durable?: boolean;
  /**
   * Whether a save makes its file calls synchronously (least CPU) or
   * promise-based (other requests run while a slow disk works). A `durable`
   * store always saves promise-based; see docs/benchmarks.md.
   *
   * @default {true on Deno, false on Bun and elsewhere}
   */
  syncWrites?: boolean;
  /**
   * `"django"` keeps the files as Django's file engine does
   * (`SESSION_ENGINE = "django.contrib.sessions.backends.file"`), so that a
   * Django app on the same directory, run by the same OS user, with the same
   * `SESSION_COOKIE_NAME` and `SECRET_KEY`, shares the sessions live: each
   * file holds Django's signed `session_data` and nothing else, and a session
   * expires at its file's modification time plus `cookieAge`, or at its
   * custom expiry. Needs the `secret` of `withSessions` (Django's SECRET_KEY).
   * Left out: Tessera's own format.
   *
   * @default {undefined}
   */
  format?: "django";
}

// A temp file is named after its target plus this and a random suffix; the
// dot keeps it from ever being read as a session (keys are a-z0-9 only).
const TEMP_MARK = ".tmp-";
// A logout leaves prefix + key + this (a tombstone) for staleTempAfter, so
// that no write racing it can bring the session back; see delete().
const TOMBSTONE_MARK = ".gone";
// The longest name the engine and its sweeper build: the prefix, the longest
// key Tessera accepts, and the longest of the suffixes (a sweeper's aside
// name). Most file systems refuse a name over 255 bytes (NAME_MAX).
const NAME_MAX = 255;
const LONGEST_KEY = 40;
const LONGEST_SUFFIX = Math.max(
  TEMP_MARK.length + LONGEST_TEMP_TAIL,
  TOMBSTONE_MARK.length,
);
const LONGEST_PREFIX = NAME_MAX - LONGEST_KEY - LONGEST_SUFFIX;
// A tombstone is made without following a symlink or blocking on a FIFO
// planted at its name.
const TOMBSTONE_FLAGS = constants.O_WRONLY | constants.O_CREAT |
  (constants.O_NOFOLLOW ?? 0) |
  (constants.O_NONBLOCK ?? 0);

/** Points in a save where tests pause it, to run a race deterministically. */
export interface FileStoreInternals {
  /** In an update, after the check that the file exists and before the rename over it. */
  beforeRename?(file: string): void | Promise<void>;
}

const INTERNALS = new WeakMap<FileStore, FileStoreInternals>();

/**
 * Sets the test hooks of `store` (internal; not exported by the package).
 *
 * @example
 * ```ts ignore
 * setFileStoreInternals(store, { beforeRename: () => store.delete(key) });
 * ```
 */
export function setFileStoreInternals(
  store: FileStore,
  internals: FileStoreInternals,
): void {
  INTERNALS.set(store, internals);
}

/**
 * Sessions as files, one per key, named prefix + key, in one directory.
 *
 * A file holds the expiry instant on its first line and the serialized data
 * after it, and its modification time is set to the expiry instant, so the
 * sweeper decides with a `stat`. Files are created with mode `0600`. Writes
 * go to a temp file in the same directory that is then linked (a new key:
 * fails if the key exists) or renamed (an update) into place, so a reader
 * or a crash never sees a torn file. An update of a file that a concurrent
 * logout removed fails instead of bringing the session back: a logout leaves
 * a tombstone (the file's name plus `.gone`) that every write checks after
 * its rename, and that the sweeper removes once older than `staleTempAfter`.
 *
 * Only the engine's own files are believed: a regular file owned by the
 * server's user with mode `0600`. Anything else at a session's name (a FIFO,
 * socket, device, symlink, directory, or a file another user planted) is
 * never followed, blocked on or read: it loads as no session, with a
 * security warning through the logger. The engine does not `fsync` unless
 * `durable` is set; see docs/security.md for what survives a crash.
 *
 * With `format: "django"` the files are Django's file engine's: named
 * prefix + key, holding Django's signed `session_data` alone, their
 * modification time the time of the last save. A Django app on the same
 * directory, run by the same OS user (it must own the files), shares the
 * sessions live; see docs/migrating-from-django.md. Every guarantee above
 * holds in this format too. Django's own logout removes the file and leaves
 * no tombstone, so a Tessera save that checked the file just before a Django
 * logout removed it can put the session back, as two Django processes can.
 *
 * @example Sessions in a directory of their own
 * ```ts
 * import { FileStore, withSessions } from "@tessera/sessions";
 *
 * const store = new FileStore({ path: Deno.makeTempDirSync() });
 * const handler = withSessions(() => new Response("ok"), { store });
 * ```
 *
 * @example Sessions shared with a Django app's file engine
 * ```ts
 * import { FileStore, withSessions } from "@tessera/sessions";
 *
 * // SESSION_FILE_PATH, SECRET_KEY and SESSION_COOKIE_NAME of the Django app.
 * const store = new FileStore({ path: Deno.makeTempDirSync(), format: "django" });
 * const handler = withSessions(() => new Response("ok"), {
 *   store,
 *   secret: ["django-insecure-example-secret-key"],
 *   cookieName: "sessionid",
 * });
 * ```
 */
export class FileStore implements SessionStore {
  /**
   * The directory of the session files.
   */
  readonly path: string;
  #prefix: string;
  // join(path, prefix), so that a file's name is one concatenation away.
  #namePrefix: string;
  readonly #prefixGiven: boolean;
  readonly #staleTempAfter: number;
  readonly #durable: boolean;
  readonly #syncWrites: boolean;
  readonly #django: boolean;
  #secrets: readonly string[] = [];
  #cookieAge = 1_209_600;
  #logger: Logger = console;

  /**
   * A store in `options.path` (default: the OS temp dir).
   *
   * @throws {Error} when the directory does not exist, or Deno may not read it.
   * @throws {TypeError} when the prefix could make a path leave the directory,
   * or is empty.
   * @throws {RangeError} when the prefix is too long for a file name.
   * @example
   * ```ts
   * import { FileStore } from "@tessera/sessions";
   *
   * const store = new FileStore({ path: Deno.makeTempDirSync() });
   * ```
   */
  constructor(options: FileStoreOptions = {}) {
    const path = options.path ?? tmpdir();
    let isDirectory = false;
    try {
      isDirectory = statSync(path).isDirectory();
    } catch (error) {
      // Deno without --allow-read: the directory may well exist.
      const permission = missingDenoPermission(error, "read");
      if (permission !== undefined) {
        throw new Error(
          denoPermissionMessage("store sessions", path, permission),
        );
      }
    }
    if (!isDirectory) {
      throw new Error(
        `Cannot store sessions in '${path}' as it is not an existing directory: create it or pass another 'path' to FileStore`,
      );
    }
    if (
      options.prefix !== undefined && !/^[A-Za-z0-9_-]*$/.test(options.prefix)
    ) {
      throw new TypeError(
        `Cannot create a FileStore as 'prefix' must hold only letters, digits, '_' and '-': current value is ${
          JSON.stringify(options.prefix)
        }`,
      );
    }
    if (options.prefix !== undefined) checkPrefix(options.prefix, "prefix");
    const staleTempAfter = options.staleTempAfter ?? 60_000;
    if (!Number.isFinite(staleTempAfter) || staleTempAfter < 0) {
      throw new RangeError(
        `Cannot create a FileStore as 'staleTempAfter' must be a non-negative number of milliseconds: current value is ${staleTempAfter}`,
      );
    }
    this.#staleTempAfter = staleTempAfter;
    if (options.durable !== undefined && typeof options.durable !== "boolean") {
      throw new TypeError(
        `Cannot create a FileStore as 'durable' must be true or false: current value is ${
          JSON.stringify(options.durable)
        }`,
      );
    }
    this.#durable = options.durable ?? false;
    if (
      options.syncWrites !== undefined &&
      typeof options.syncWrites !== "boolean"
    ) {
      throw new TypeError(
        `Cannot create a FileStore as 'syncWrites' must be true or false: current value is ${
          JSON.stringify(options.syncWrites)
        }`,
      );
    }
    this.#syncWrites = !this.#durable &&
      (options.syncWrites ?? SYNC_WRITES_BY_DEFAULT);
    this.#django = isDjangoFormat(options.format, "FileStore");
    this.path = path;
    this.#prefix = options.prefix ?? "sessionid";
    this.#namePrefix = join(path, this.#prefix);
    this.#prefixGiven = options.prefix !== undefined;
  }

  /**
   * The start of every session file's name.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { FileStore } from "@tessera/sessions";
   *
   * assert.equal(new FileStore().prefix, "sessionid");
   * ```
   */
  get prefix(): string {
    return this.#prefix;
  }

  /**
   * The format of the files: `"django"`, or `undefined` for Tessera's own.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { FileStore } from "@tessera/sessions";
   *
   * assert.equal(new FileStore({ format: "django" }).format, "django");
   * ```
   */
  get format(): "django" | undefined {
    return this.#django ? "django" : undefined;
  }

  /**
   * True in Django's format, whose files carry Django's own signature (which
   * Django could not read inside a second one), so that `withSessions` does
   * not wrap the store in its signing layer; false otherwise.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { FileStore } from "@tessera/sessions";
   *
   * assert.equal(new FileStore().authenticatesRecords, false);
   * ```
   */
  get authenticatesRecords(): boolean {
    return this.#django;
  }

  /**
   * Takes the cookie name as the file prefix, unless a prefix was given, as
   * Django's `file_prefix = SESSION_COOKIE_NAME`.
   *
   * @throws {TypeError} when the cookie name is empty or holds a path
   * separator, or, in Django's format, when no secret was given.
   * @throws {RangeError} when the cookie name is too long for a file name.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { FileStore } from "@tessera/sessions";
   *
   * const store = new FileStore();
   * store.configure({ cookieName: "sid", cookieAge: 60, secrets: [], logger: console });
   * assert.equal(store.prefix, "sid");
   * ```
   */
  configure(settings: StoreSettings): void {
    if (this.#django) requireDjangoSecret(settings, "FileStore");
    this.#secrets = settings.secrets;
    if (!this.#prefixGiven) {
      checkPrefix(settings.cookieName, "cookieName");
      this.#prefix = settings.cookieName;
      this.#namePrefix = join(this.path, this.#prefix);
    }
    this.#cookieAge = settings.cookieAge;
    this.#logger = settings.logger;
  }

  /**
   * The file a session key is stored in.
   *
   * @throws {TypeError} for a value that is not a session key, so that no
   * path outside the directory can be built.
   * @example
   * ```ts
   * import { FileStore } from "@tessera/sessions";
   *
   * console.log(new FileStore().fileOf("abcdefgh12345678"));
   * ```
   */
  fileOf(key: string): string {
    if (!isValidKey(key)) {
      throw new TypeError(
        "Cannot build a session file name as the key is not a session key",
      );
    }
    return this.#namePrefix + key;
  }

  /**
   * The live session stored under `key`, or `null`: also for anything at its
   * name that is not the engine's own file, which is logged as a security
   * warning and never read.
   *
   * @example
   * ```ts
   * import { FileStore } from "@tessera/sessions";
   *
   * await new FileStore().load("../../etc/passwd"); // null: never a path
   * ```
   */
  async load(key: string): Promise<StoredSession | null> {
    if (!isValidKey(key)) return null;
    if (this.#django) return await this.#loadDjango(key);
    // Synchronous: a session file is small and in the page cache, and a
    // promise-based call costs more CPU than the read (docs/benchmarks.md).
    const read = readTrustedFileSync(
      this.fileOf(key),
      this.path,
      await this.#user(),
    );
    if (read === "missing") return null;
    if (read === "untrusted") {
      this.#logger.warn(untrustedWarning(this.path));
      return null;
    }
    const record = parseRecord(read.text);
    if (record === null) {
      this.#logger.warn(`A corrupt session file in '${this.path}' was ignored`);
      return null;
    }
    if (record.expiresAt <= Date.now()) return null;
    // A save sets the file's modification time to the expiry last, after its
    // own check for a logout's tombstone: such a file was no logout's when
    // it was published, and a logout since removed it. A file whose time is
    // not its expiry yet may be a racing update's, read in the instant
    // between its rename and its check (or left there by a process that
    // ended in between): it is checked here. That update's own check undoes
    // its write (an lstat: anything at the name counts); this one only
    // closes the instant, and a name that resolves is the cheapest test.
    if (Math.abs(read.mtimeMs - record.expiresAt) < 1) return record;
    return syncFs.exists(this.fileOf(key) + TOMBSTONE_MARK) ? null : record;
  }

  /**
   * Whether a session file of the engine's own exists for `key` (a regular
   * file of this user with mode `0600`, not logged out).
   *
   * @example
   * ```ts
   * import { FileStore } from "@tessera/sessions";
   *
   * await new FileStore().exists("abcdefgh12345678");
   * ```
   */
  async exists(key: string): Promise<boolean> {
    if (!isValidKey(key)) return false;
    const owner = await this.#user();
    let facts;
    try {
      facts = syncFs.lstat(this.fileOf(key));
    } catch (error) {
      throw fileError("check a session file", this.path, error);
    }
    if (facts === null) return false;
    // Django creates a session's file empty first: the key is taken.
    const trusted = isTrusted(facts, owner) ||
      (this.#django && isPlaceholder(facts, facts.size, owner));
    if (!trusted) {
      this.#logger.warn(untrustedWarning(this.path));
      return false;
    }
    return !this.#isLoggedOut(key);
  }

  /**
   * Writes `record` to a file under a new key.
   *
   * @example
   * ```ts
   * import { FileStore } from "@tessera/sessions";
   *
   * const store = new FileStore({ path: Deno.makeTempDirSync() });
   * await store.create({ data: "{}", expiresAt: Date.now() + 60_000 });
   * ```
   */
  create(record: StoredSession): Promise<string> {
    return createWithUniqueKey((key) => this.save(key, record, true));
  }

  /**
   * Writes `record` to the file of `key`, atomically.
   *
   * @example
   * ```ts
   * import { FileStore } from "@tessera/sessions";
   *
   * const store = new FileStore({ path: Deno.makeTempDirSync() });
   * await store.save("abcdefgh12345678", { data: "{}", expiresAt: Date.now() + 60_000 }, true);
   * ```
   */
  async save(
    key: string,
    record: StoredSession,
    mustCreate = false,
  ): Promise<string> {
    const file = this.fileOf(key);
    const contents = this.#django ? await encodeDjangoSession(record.data, this.#secrets) : record;
    const internals = INTERNALS.get(this);
    // A durable save waits for the disk (fsync), which can take milliseconds:
    // it must not block the event loop (see syncWrites).
    if (!this.#syncWrites) {
      return await this.#saveAsync(key, file, contents, mustCreate);
    }
    const { temp, written } = this.#writeTempSync(file, contents);
    let published = false;
    try {
      let tempInPlace = false;
      try {
        if (mustCreate) {
          // link() fails if the name exists: an exclusive create that, unlike
          // open(O_EXCL), never shows an empty file to a reader.
          syncFs.link(temp, file);
        } else {
          // Django's UpdateError: a session another request deleted stays deleted.
          syncFs.stat(file);
          if (internals?.beforeRename !== undefined) {
            await internals.beforeRename(file);
          }
          syncFs.rename(temp, file);
          tempInPlace = true;
        }
      } catch (error) {
        throw this.#placementError(error, mustCreate);
      } finally {
        if (!tempInPlace) removeQuietly(temp);
      }
      // A logout may have landed between the check above and the rename: its
      // tombstone, made before it removed the file, is there now. The file this
      // save put in place is removed again, so the logout stands. A new key
      // that a logout used is not reused while its tombstone lasts.
      if (this.#isLoggedOut(key)) {
        this.#removeLoggedOut(file);
        throw mustCreate ? new SessionExistsError() : new SessionInterruptedError();
      }
      if (typeof contents !== "string") {
        // Last: the time becomes the expiry, which tells load() this writer
        // found no logout after putting the file in place. publish() closes
        // the file whether or not it succeeds.
        published = true;
        try {
          written.publish(contents.expiresAt / 1000);
        } catch (error) {
          throw fileError("write a session file", this.path, error);
        }
      }
    } finally {
      if (!published) written.close();
    }
    return key;
  }

  // What a save's link or rename failing means: the key taken (create), the
  // session deleted meanwhile (update, Django's UpdateError), or a failure.
  #placementError(error: unknown, mustCreate: boolean): Error {
    if (mustCreate && errorCode(error) === "EEXIST") return new SessionExistsError();
    if (!mustCreate && isMissing(error)) return new SessionInterruptedError();
    return fileError("write a session file", this.path, error);
  }

  // save() with promise-based calls (see syncWrites).
  async #saveAsync(
    key: string,
    file: string,
    contents: StoredSession | string,
    mustCreate: boolean,
  ): Promise<string> {
    const { temp, handle } = await this.#writeTemp(file, contents);
    try {
      let tempInPlace = false;
      try {
        if (mustCreate) {
          // link() fails if the name exists: an exclusive create that, unlike
          // open(O_EXCL), never shows an empty file to a reader.
          await link(temp, file);
        } else {
          // Django's UpdateError: a session another request deleted stays deleted.
          await stat(file);
          await INTERNALS.get(this)?.beforeRename?.(file);
          await rename(temp, file);
          tempInPlace = true;
        }
      } catch (error) {
        throw this.#placementError(error, mustCreate);
      } finally {
        if (!tempInPlace) await unlink(temp).catch(() => {});
      }
      // A logout may have landed between the check above and the rename: its
      // tombstone, made before it removed the file, is there now. The file this
      // save put in place is removed again, so the logout stands. A new key
      // that a logout used is not reused while its tombstone lasts.
      if (await this.#isLoggedOutAsync(key)) {
        this.#removeLoggedOut(file);
        throw mustCreate ? new SessionExistsError() : new SessionInterruptedError();
      }
      if (typeof contents !== "string") {
        try {
          await handle.utimes(Date.now() / 1000, contents.expiresAt / 1000);
        } catch (error) {
          throw fileError("write a session file", this.path, error);
        }
      }
    } finally {
      await handle.close().catch(() => {});
    }
    // The file's new name is an entry of the directory: durable once the
    // directory is.
    if (this.#durable) await this.#syncDirectory("write a session file");
    return key;
  }

  /**
   * Deletes the file of `key`, if any, for good: it leaves a tombstone file
   * (the file's name plus `.gone`) for `staleTempAfter`, which makes any save
   * racing this delete remove its write again, and which `clearExpired()`
   * removes after that.
   *
   * @example
   * ```ts
   * import { FileStore } from "@tessera/sessions";
   *
   * await new FileStore().delete("abcdefgh12345678");
   * ```
   */
  async delete(key: string): Promise<void> {
    if (!isValidKey(key)) return;
    const file = this.fileOf(key);
    // The tombstone first, the file second: a save whose rename lands after
    // the unlink finds the tombstone when it checks after its rename, and
    // one that lands before is undone by the unlink.
    this.#markLoggedOut(file);
    this.#removeLoggedOut(file);
    if (this.#durable) await this.#syncDirectory("delete a session file");
  }

  /**
   * Deletes every expired session file and the temp files left by writes
   * that crashed (older than `staleTempAfter`, a minute by default), and
   * returns how many session files it removed. It decides from each file's
   * modification time (its expiry; in Django's format, its last save) and
   * reads only the files that may hold a custom expiry, and never removes a
   * session saved while it runs. Takes the options of {@link sweep}.
   *
   * @returns How many session files it removed (would remove, in a dry run).
   * @throws {Error} when the directory cannot be listed, or when some expired
   * files could not be removed (after trying every other one).
   * @example
   * ```ts
   * import { FileStore } from "@tessera/sessions";
   *
   * const removed = await new FileStore({ path: Deno.makeTempDirSync() }).clearExpired();
   * ```
   */
  async clearExpired(options: SweepOptions = {}): Promise<number> {
    const report = await this.sweep(options);
    if (report.failed > 0) {
      throw new Error(
        `Cannot clear the expired sessions in '${this.path}' as ${report.failed} ${
          report.failed === 1 ? "file" : "files"
        } failed; the first: ${report.errors[0]}`,
      );
    }
    return report.removed;
  }

  /**
   * Sweeps the directory as {@link clearExpired} does and reports what it
   * removed and kept. A file that cannot be checked or removed is counted in
   * `failed` and the sweep goes on. On Deno the directory is read as a
   * stream, so memory hardly grows with the number of files; Bun has no
   * streaming directory reader, so there the list of names is read at once.
   *
   * The expiry of a file is its modification time, which FileStore sets to
   * it. A file whose modification time was reset by something else (a copy,
   * `touch`, a restore) has its expiry read from its first line instead;
   * a file without a readable expiry there either expires `cookieAge`
   * seconds after its modification time, as in Django.
   *
   * In Django's format the modification time is the last save: a file
   * expires `cookieAge` seconds after it unless its data holds a custom
   * expiry. Only the files past that age are read, for the custom expiry;
   * a younger one is kept unread (at worst until its age has passed, never
   * removed early).
   *
   * @throws {Error} when the directory cannot be listed.
   * @throws {TypeError} for options of the wrong type.
   * @throws {RangeError} for a `cookieAge` that is not a whole number of seconds.
   * @example Counting without removing
   * ```ts
   * import assert from "node:assert/strict";
   * import { FileStore } from "@tessera/sessions";
   *
   * const store = new FileStore({ path: Deno.makeTempDirSync() });
   * await store.create({ data: "{}", expiresAt: Date.now() + 60_000 });
   * const report = await store.sweep({ dryRun: true });
   * assert.deepEqual(report, { removed: 0, kept: 1, tempRemoved: 0, failed: 0, errors: [] });
   * ```
   */
  async sweep(options: SweepOptions = {}): Promise<SweepReport> {
    checkSweepOptions(options);
    return await sweepFiles({
      path: this.path,
      prefix: this.#prefix,
      tempMark: TEMP_MARK,
      tombstoneMark: TOMBSTONE_MARK,
      staleTempAfter: this.#staleTempAfter,
      cookieAge: this.#cookieAge,
      logger: this.#logger,
      django: this.#django,
    }, options);
  }

  // Django's file engine: the file holds session_data alone; the session
  // expires at its custom expiry, else at the file's mtime plus cookieAge.
  async #loadDjango(key: string): Promise<StoredSession | null> {
    const file = this.fileOf(key);
    const read = readTrustedFileSync(file, this.path, await this.#user(), true);
    if (read === "missing") return null;
    if (read === "untrusted") {
      this.#logger.warn(untrustedWarning(this.path));
      return null;
    }
    const decoded = await decodeDjangoSession(read.text, {
      secrets: this.#secrets,
      logger: this.#logger,
    });
    if (decoded === null) return null;
    const expiresAt = djangoFileExpiresAt(
      decoded.expiry,
      read.mtimeMs,
      this.#cookieAge,
    );
    if (expiresAt <= Date.now()) return null;
    if (this.#isLoggedOut(key)) {
      // Django knows no tombstones: its save racing a logout here can put
      // the file back. The logout stands, for Django too.
      this.#removeLoggedOut(file);
      return null;
    }
    return djangoStoredSession(decoded, expiresAt);
  }

  #user(): Promise<number | null> {
    return processUser(
      () => this.#tempOf(this.fileOf(generateKey())),
      this.path,
    );
  }

  #tempOf(file: string): string {
    return `${file}${TEMP_MARK}${generateKey().slice(0, 12)}`;
  }

  // Anything at the tombstone's name counts, whatever it is: a name that is
  // taken cannot be made a tombstone, but it must not let a logout be undone.
  #isLoggedOut(key: string): boolean {
    try {
      return syncFs.lstat(this.fileOf(key) + TOMBSTONE_MARK) !== null;
    } catch (error) {
      throw fileError("check a session file", this.path, error);
    }
  }

  async #isLoggedOutAsync(key: string): Promise<boolean> {
    try {
      await lstat(this.fileOf(key) + TOMBSTONE_MARK);
      return true;
    } catch (error) {
      if (isMissing(error)) return false;
      throw fileError("check a session file", this.path, error);
    }
  }

  #markLoggedOut(file: string): void {
    let fd: number;
    try {
      fd = openSync(file + TOMBSTONE_MARK, TOMBSTONE_FLAGS, 0o600);
    } catch (error) {
      // A symlink, FIFO or directory planted at the name still counts as a
      // tombstone (see #isLoggedOut).
      const code = errorCode(error);
      if (
        code === "ELOOP" || code === "ENXIO" || code === "EISDIR" ||
        code === "EMLINK"
      ) return;
      throw fileError("delete a session file", this.path, error);
    }
    try {
      // A tombstone left by an earlier logout of the key counts from now.
      const now = Date.now() / 1000;
      futimesSync(fd, now, now);
    } catch (error) {
      throw fileError("delete a session file", this.path, error);
    } finally {
      closeSync(fd);
    }
  }

  async #syncDirectory(action: string): Promise<void> {
    let handle;
    try {
      handle = await open(this.path, "r");
      await handle.sync();
    } catch (error) {
      throw fileError(action, this.path, error);
    } finally {
      await handle?.close().catch(() => {});
    }
  }

  #removeLoggedOut(file: string): void {
    try {
      syncFs.unlink(file);
    } catch (error) {
      if (!isMissing(error)) {
        throw fileError("delete a session file", this.path, error);
      }
    }
  }

  // A record in the native format; in Django's, the file's text alone, and
  // the mtime stays the time of the write, as Django keeps it.
  #writeTempSync(
    file: string,
    record: StoredSession | string,
  ): { temp: string; written: WrittenFile } {
    const temp = this.#tempOf(file);
    try {
      const text = typeof record === "string" ? record : `${record.expiresAt}\n${record.data}`;
      return { temp, written: syncFs.writeNew(temp, text) };
    } catch (error) {
      throw fileError("write a session file", this.path, error);
    }
  }

  async #writeTemp(
    file: string,
    record: StoredSession | string,
  ): Promise<{ temp: string; handle: FileHandle }> {
    const temp = this.#tempOf(file);
    let handle;
    try {
      handle = await open(temp, "wx", 0o600);
    } catch (error) {
      throw fileError("write a session file", this.path, error);
    }
    try {
      await handle.writeFile(
        typeof record === "string" ? record : `${record.expiresAt}\n${record.data}`,
      );
      if (this.#durable) await handle.sync();
    } catch (error) {
      await handle.close().catch(() => {});
      await unlink(temp).catch(() => {});
      throw fileError("write a session file", this.path, error);
    }
    return { temp, handle };
  }
}

function removeQuietly(file: string): void {
  try {
    syncFs.unlink(file);
  } catch {
    // gone already, or left for the sweeper (staleTempAfter)
  }
}

// On Deno a promise-based node:fs call costs 15-20 µs of CPU, several times
// the syscall, and a synchronous save held a cheap endpoint's p99 where the
// asynchronous one did on a journaled disk; Bun's promise-based calls cost
// about 5 µs and run on its thread pool, which gave the better p99 and as
// many saves a second there (docs/benchmarks.md).
const SYNC_WRITES_BY_DEFAULT = typeof (globalThis as { Deno?: unknown }).Deno === "object";

// The sweeper removes only names of the forms the engine writes, prefix + key
// and its suffixes: an empty prefix would make it judge other programs' files
// whose names look like keys (such as "tmpk3j2l1x8" in the temp dir).
function checkPrefix(prefix: string, option: "prefix" | "cookieName"): void {
  const subject = option === "prefix"
    ? "create a FileStore as 'prefix'"
    : "use 'cookieName' as the session file prefix as it";
  if (prefix === "") {
    throw new TypeError(
      `Cannot ${subject} must not be empty, as the sweeper removes only files named prefix + key: current value is ""`,
    );
  }
  if (/[/\\\0]/.test(prefix)) {
    throw new TypeError(
      `Cannot ${subject} must not hold '/', '\\' or NUL: current value is ${
        JSON.stringify(prefix)
      }`,
    );
  }
  const bytes = new TextEncoder().encode(prefix).length;
  if (bytes > LONGEST_PREFIX) {
    throw new RangeError(
      `Cannot ${subject} must be at most ${LONGEST_PREFIX} bytes, so that the longest file name the engine builds (the prefix, a ${LONGEST_KEY}-character key and a ${LONGEST_SUFFIX}-byte suffix) fits in ${NAME_MAX} bytes: current value is ${bytes} bytes`,
    );
  }
}

function parseRecord(text: string): StoredSession | null {
  const newline = text.indexOf("\n");
  if (newline <= 0) return null;
  const expiresAt = Number(text.slice(0, newline));
  if (!Number.isFinite(expiresAt)) return null;
  return { data: text.slice(newline + 1), expiresAt };
}

function checkSweepOptions(options: SweepOptions): void {
  const { dryRun, onProgress, now, cookieAge } = options;
  if (dryRun !== undefined && typeof dryRun !== "boolean") {
    throw new TypeError(
      `Cannot sweep as 'dryRun' must be true or false: current value is ${dryRun}`,
    );
  }
  if (onProgress !== undefined && typeof onProgress !== "function") {
    throw new TypeError("Cannot sweep as 'onProgress' must be a function");
  }
  if (now !== undefined && !Number.isFinite(now)) {
    throw new TypeError(
      `Cannot sweep as 'now' must be a number of milliseconds since the epoch: current value is ${now}`,
    );
  }
  if (
    cookieAge !== undefined &&
    (!Number.isSafeInteger(cookieAge) || cookieAge < 0)
  ) {
    throw new RangeError(
      `Cannot sweep as 'cookieAge' must be a non-negative whole number of seconds: current value is ${cookieAge}`,
    );
  }
}
