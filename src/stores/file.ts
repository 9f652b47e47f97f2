/**
 * The default engine: one file per session (Django's `backends.file`).
 *
 * @module
 */

import { statSync } from "node:fs";
import { link, open, readdir, readFile, rename, stat, unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateKey, isValidKey } from "../_key.ts";
import { SessionExistsError, SessionInterruptedError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import {
  createWithUniqueKey,
  type SessionStore,
  type StoredSession,
  type StoreSettings,
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
   * @example
   * ```ts
   * const path = "./sessions";
   * ```
   */
  path?: string;
  /**
   * The start of every session file's name.
   *
   * @default {the cookieName given to withSessions, "sessionid" by default}
   * @example
   * ```ts
   * const prefix = "myapp_";
   * ```
   */
  prefix?: string;
  /**
   * Milliseconds after which a temp file counts as left by a write that
   * crashed, for `clearExpired()` to remove. A live write's temp file exists
   * for well under a second.
   *
   * @default {60000}
   * @example
   * ```ts
   * const staleTempAfter = 5 * 60_000;
   * ```
   */
  staleTempAfter?: number;
}

// A temp file is named after its target plus this and a random suffix; the
// dot keeps it from ever being read as a session (keys are a-z0-9 only).
const TEMP_MARK = ".tmp-";

/**
 * Sessions as files, one per key, named prefix + key, in one directory.
 *
 * A file holds the expiry instant on its first line and the serialized data
 * after it, and its modification time is set to the expiry instant, so the
 * sweeper decides with a `stat`. Files are created with mode `0600`. Writes
 * go to a temp file in the same directory that is then linked (a new key:
 * fails if the key exists) or renamed (an update) into place, so a reader
 * or a crash never sees a torn file. An update of a file that a concurrent
 * logout removed fails instead of bringing the session back.
 *
 * @example Sessions in a directory of their own
 * ```ts
 * import { FileStore, withSessions } from "@tessera/sessions";
 *
 * const store = new FileStore({ path: Deno.makeTempDirSync() });
 * const handler = withSessions(() => new Response("ok"), { store });
 * ```
 */
export class FileStore implements SessionStore {
  /**
   * The directory of the session files.
   *
   * @example
   * ```ts
   * import { FileStore } from "@tessera/sessions";
   *
   * console.log(new FileStore().path);
   * ```
   */
  readonly path: string;
  #prefix: string;
  readonly #prefixGiven: boolean;
  readonly #staleTempAfter: number;
  #logger: Logger = console;

  /**
   * A store in `options.path` (default: the OS temp dir).
   *
   * @throws {Error} when the directory does not exist.
   * @throws {TypeError} when the prefix could make a path leave the directory.
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
    } catch {
      // reported below, with the path
    }
    if (!isDirectory) {
      throw new Error(
        `Cannot store sessions in '${path}' as it is not an existing directory: create it or pass another 'path' to FileStore`,
      );
    }
    if (options.prefix !== undefined && !/^[A-Za-z0-9_-]*$/.test(options.prefix)) {
      throw new TypeError(
        `Cannot create a FileStore as 'prefix' must hold only letters, digits, '_' and '-': current value is ${
          JSON.stringify(options.prefix)
        }`,
      );
    }
    const staleTempAfter = options.staleTempAfter ?? 60_000;
    if (!Number.isFinite(staleTempAfter) || staleTempAfter < 0) {
      throw new RangeError(
        `Cannot create a FileStore as 'staleTempAfter' must be a non-negative number of milliseconds: current value is ${staleTempAfter}`,
      );
    }
    this.#staleTempAfter = staleTempAfter;
    this.path = path;
    this.#prefix = options.prefix ?? "sessionid";
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
   * Takes the cookie name as the file prefix, unless a prefix was given, as
   * Django's `file_prefix = SESSION_COOKIE_NAME`.
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
    if (!this.#prefixGiven) this.#prefix = settings.cookieName;
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
      throw new TypeError("Cannot build a session file name as the key is not a session key");
    }
    return join(this.path, this.#prefix + key);
  }

  /**
   * The live session stored under `key`, or `null`.
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
    let text: string;
    try {
      text = await readFile(this.fileOf(key), "utf8");
    } catch (error) {
      if (isMissing(error)) return null;
      throw fileError("read a session file", this.path, error);
    }
    const record = parseRecord(text);
    if (record === null) {
      this.#logger.warn(`A corrupt session file in '${this.path}' was ignored`);
      return null;
    }
    return record.expiresAt > Date.now() ? record : null;
  }

  /**
   * Whether a file exists for `key`.
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
    try {
      await stat(this.fileOf(key));
      return true;
    } catch (error) {
      if (isMissing(error)) return false;
      throw fileError("check a session file", this.path, error);
    }
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
  async save(key: string, record: StoredSession, mustCreate = false): Promise<string> {
    const file = this.fileOf(key);
    const temp = await this.#writeTemp(file, record);
    let tempInPlace = false;
    try {
      if (mustCreate) {
        // link() fails if the name exists: an exclusive create that, unlike
        // open(O_EXCL), never shows an empty file to a reader.
        await link(temp, file);
      } else {
        // Django's UpdateError: a session another request deleted stays deleted.
        await stat(file);
        await rename(temp, file);
        tempInPlace = true;
      }
    } catch (error) {
      if (mustCreate && errorCode(error) === "EEXIST") throw new SessionExistsError();
      if (!mustCreate && isMissing(error)) throw new SessionInterruptedError();
      throw fileError("write a session file", this.path, error);
    } finally {
      if (!tempInPlace) await unlink(temp).catch(() => {});
    }
    return key;
  }

  /**
   * Deletes the file of `key`, if any.
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
    try {
      await unlink(this.fileOf(key));
    } catch (error) {
      if (!isMissing(error)) throw fileError("delete a session file", this.path, error);
    }
  }

  /**
   * Deletes every expired session file, deciding from each file's
   * modification time (its expiry) without reading it, and temp files left
   * by writes that crashed (older than `staleTempAfter`, a minute by default). A session saved while
   * the sweep runs is kept.
   *
   * @returns How many session files it removed.
   * @example
   * ```ts
   * import { FileStore } from "@tessera/sessions";
   *
   * const removed = await new FileStore({ path: Deno.makeTempDirSync() }).clearExpired();
   * ```
   */
  async clearExpired(): Promise<number> {
    let removed = 0;
    const names = await readdir(this.path).catch((error) => {
      throw fileError("list the session directory", this.path, error);
    });
    for (const name of names) {
      if (!name.startsWith(this.#prefix)) continue;
      const rest = name.slice(this.#prefix.length);
      const file = join(this.path, name);
      if (isValidKey(rest)) {
        if (await this.#removeIfExpired(file)) removed++;
      } else if (rest.includes(TEMP_MARK)) {
        await removeStaleTemp(file, this.#staleTempAfter);
      }
    }
    return removed;
  }

  // Rename the file aside, look again, and put it back if a save made it
  // live between the first look and the rename: a rename or a link moves a
  // whole inode, so the second look sees exactly what was taken.
  async #removeIfExpired(file: string): Promise<boolean> {
    const now = Date.now();
    const before = await stat(file).catch(() => null);
    // Only a regular file is a session: a directory that carries a session's
    // name is not the sweeper's to move or remove.
    if (before === null || !before.isFile() || before.mtimeMs > now) return false;
    const aside = `${file}${TEMP_MARK}sweep${generateKey().slice(0, 8)}`;
    // The file system's own errors name the file, and so the key.
    const fail = (error: unknown): never => {
      throw fileError("remove an expired session file", this.path, error);
    };
    try {
      await rename(file, aside);
    } catch (error) {
      if (isMissing(error)) return false;
      fail(error);
    }
    const taken = await stat(aside).catch(fail);
    if (taken.mtimeMs <= now) {
      await unlink(aside).catch(fail);
      return true;
    }
    try {
      // A newer save may already stand at the name; link() never replaces it.
      await link(aside, file);
    } catch (error) {
      if (errorCode(error) !== "EEXIST") {
        throw fileError("restore a live session file", this.path, error);
      }
    }
    await unlink(aside).catch(fail);
    return false;
  }

  async #writeTemp(file: string, record: StoredSession): Promise<string> {
    const temp = `${file}${TEMP_MARK}${generateKey().slice(0, 12)}`;
    let handle;
    try {
      handle = await open(temp, "wx", 0o600);
    } catch (error) {
      throw fileError("write a session file", this.path, error);
    }
    try {
      await handle.writeFile(`${record.expiresAt}\n${record.data}`);
      const seconds = record.expiresAt / 1000;
      await handle.utimes(Date.now() / 1000, seconds);
      await handle.close();
    } catch (error) {
      await handle.close().catch(() => {});
      await unlink(temp).catch(() => {});
      throw fileError("write a session file", this.path, error);
    }
    return temp;
  }
}

function parseRecord(text: string): StoredSession | null {
  const newline = text.indexOf("\n");
  if (newline <= 0) return null;
  const expiresAt = Number(text.slice(0, newline));
  if (!Number.isFinite(expiresAt)) return null;
  return { data: text.slice(newline + 1), expiresAt };
}

async function removeStaleTemp(file: string, staleAfter: number): Promise<void> {
  const info = await stat(file).catch(() => null);
  // ctime, not mtime: a temp file's mtime is already set to the expiry.
  if (info !== null && info.ctimeMs <= Date.now() - staleAfter) {
    await unlink(file).catch(() => {});
  }
}

function errorCode(error: unknown): string | undefined {
  return (error as { code?: unknown } | null)?.code as string | undefined;
}

function isMissing(error: unknown): boolean {
  const code = errorCode(error);
  return code === "ENOENT" || code === "ENOTDIR";
}

// The file system's own message names the file, and so the session key: it
// is replaced by one that names only the directory and the error code.
function fileError(action: string, directory: string, error: unknown): Error {
  const code = errorCode(error) ?? "unknown error";
  const wrapped = new Error(`Cannot ${action} in '${directory}': ${code}`);
  (wrapped as Error & { code?: string }).code = code;
  return wrapped;
}
