// Which files an engine that keeps sessions in files may believe: only a
// regular file owned by this process's user, with no permission bits for the
// group or others, which is how the engine writes them. Anything else at a
// session's name (a FIFO, socket, device, symlink, directory, or a file
// another user planted or could have edited) is not a session. It is opened
// with O_NOFOLLOW, so a symlink is never followed, and O_NONBLOCK, so a FIFO
// or a device never blocks the open; then fstat decides before a byte is read.

import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  openSync,
  readSync,
  type Stats,
} from "node:fs";
import { lstat, open, unlink } from "node:fs/promises";
import process from "node:process";
import { type ReadHandle, syncFs } from "./_file_io.ts";
import { errorCode, fileError, isMissing, missingDenoPermission } from "./_file_errors.ts";

// Windows has neither flag, nor owners or modes to check.
const OPEN_FLAGS = (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);
const READ_FLAGS = constants.O_RDONLY | OPEN_FLAGS;

const utf8 = new TextDecoder();

// This process's uid once known; null where the platform has no owners.
let user: number | null | undefined;

/**
 * The uid of this process's user, which owns the files it writes; null where
 * the platform has no owners (Windows). Deno asks for --allow-sys=uid to tell
 * it, which a server that stores sessions in files should not need: without
 * it, the uid is read from a probe file written (and removed) at the name
 * `probe()` gives, one of the engine's temp file form in the session directory.
 *
 * @throws {Error} when neither way is allowed, saying which permission to give.
 */
export async function processUser(
  probe: () => string,
  directory: string,
): Promise<number | null> {
  if (user !== undefined) return user;
  if (process.getuid === undefined) return user = null;
  try {
    return user = process.getuid();
  } catch (error) {
    if (missingDenoPermission(error, "read") === undefined) throw error;
  }
  const file = probe();
  let handle;
  try {
    handle = await open(file, "wx", 0o600);
  } catch (error) {
    throw new Error(
      `Cannot check who owns the session files in '${directory}' as Deno may neither tell this process's uid nor write there: run again with --allow-sys=uid or --allow-write=${directory}`,
      { cause: fileError("write a session file", directory, error) },
    );
  }
  try {
    user = (await handle.stat()).uid;
  } finally {
    await handle.close().catch(() => {});
    await unlink(file).catch(() => {});
  }
  return user;
}

/** What the trust rule looks at, from `lstat` or `fstat`. */
export interface Ownership {
  isFile: boolean;
  /** The owner's uid; null where the runtime reports none (Windows). */
  uid: number | null;
  /** The permission bits; null where the runtime reports none (Windows). */
  mode: number | null;
}

/** Whether a file is one the engine, run by `owner`, could have written. */
export function isTrusted(facts: Ownership, owner: number | null): boolean {
  return facts.isFile &&
    (owner === null || facts.uid === null || facts.uid === owner) &&
    (facts.mode === null || (facts.mode & 0o077) === 0);
}

/** The ownership facts of node:fs `Stats`. */
export function ownershipOf(stats: Stats): Ownership {
  return { isFile: stats.isFile(), uid: stats.uid, mode: stats.mode };
}

/**
 * The security warning for `count` ignored files in `directory`. It names
 * no file: a file's name holds a session key.
 */
export function untrustedWarning(directory: string, count = 1): string {
  const what = count === 1
    ? "A session file in '" + directory + "' was ignored as it is not"
    : `${count} session files in '${directory}' were ignored as they are not`;
  return `${what} a regular file owned by this user with mode 0600 (a planted file, a FIFO, socket, device, symlink or directory): remove ${
    count === 1 ? "it" : "them"
  }, or keep sessions in a directory only the server's user can write`;
}

/** Why a session file was not read. */
export type Unread = "missing" | "untrusted";

/**
 * The contents of `file`, or why it was not read. Never blocks on a FIFO or
 * a device, never follows a symlink, never reads a file the trust rule
 * refuses.
 *
 * @throws {Error} for a file system error other than a missing or untrusted file.
 */
export async function readTrusted(
  file: string,
  directory: string,
  owner: number | null,
): Promise<string | Unread> {
  const read = await readTrustedFile(file, directory, owner);
  return typeof read === "string" ? read : read.text;
}

/** A trusted file's contents and modification time. */
export interface TrustedText {
  text: string;
  /** The modification time of the file read (from fstat), in milliseconds since the epoch. */
  mtimeMs: number;
}

/**
 * The contents and modification time of `file`, as {@link readTrusted}; both
 * come from the one file opened, so a rename racing the read cannot pair the
 * contents of one file with the time of another.
 *
 * `placeholders`: a regular, empty file of this user is taken whatever its
 * mode (as `{ text: "" }`) instead of being refused, for Django's file
 * engine, which creates a session's file empty with the mode its umask
 * gives, then renames the written 0600 file over it.
 *
 * @throws {Error} for a file system error other than a missing or untrusted file.
 */
export async function readTrustedFile(
  file: string,
  directory: string,
  owner: number | null,
  placeholders = false,
): Promise<TrustedText | Unread> {
  let handle;
  try {
    handle = await open(file, READ_FLAGS);
  } catch (error) {
    return await unopened(file, directory, owner, error);
  }
  try {
    const stats = await handle.stat();
    const facts = ownershipOf(stats);
    if (!isTrusted(facts, owner)) {
      return placeholders && isPlaceholder(facts, stats.size, owner)
        ? { text: "", mtimeMs: stats.mtimeMs }
        : "untrusted";
    }
    return { text: await handle.readFile("utf8"), mtimeMs: stats.mtimeMs };
  } catch (error) {
    throw fileError("read a session file", directory, error);
  } finally {
    await handle.close().catch(() => {});
  }
}

/**
 * {@link readTrustedFile}, synchronous, through the runtime's cheapest calls
 * (`_file_io.ts`): for the engine's loads, whose files are small, and for the
 * sweeper, which judges with synchronous calls.
 */
export function readTrustedFileSync(
  file: string,
  directory: string,
  owner: number | null,
  placeholders = false,
): TrustedText | Unread {
  let handle: ReadHandle;
  try {
    handle = syncFs.openRead(file, OPEN_FLAGS);
  } catch (error) {
    return unopenedSync(file, directory, owner, error);
  }
  try {
    const facts = handle.stat();
    if (!isTrusted(facts, owner)) {
      return placeholders && isPlaceholder(facts, facts.size, owner)
        ? { text: "", mtimeMs: facts.mtimeMs }
        : "untrusted";
    }
    // One read for a file as large as the fstat said; a short read of a
    // regular file is its end.
    const chunks: Uint8Array[] = [];
    let total = 0;
    let size = facts.size + 1;
    while (true) {
      const buffer = new Uint8Array(size);
      const length = handle.read(buffer);
      chunks.push(buffer.subarray(0, length));
      total += length;
      if (length < size) break;
      size *= 2;
    }
    const bytes = chunks.length === 1 ? chunks[0]! : concat(chunks, total);
    return { text: utf8.decode(bytes), mtimeMs: facts.mtimeMs };
  } catch (error) {
    throw fileError("read a session file", directory, error);
  } finally {
    handle.close();
  }
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return bytes;
}

/**
 * Whether a file is the empty placeholder Django's file engine creates
 * before it renames a session's written file over it: a regular file of
 * this user with nothing in it, whatever its mode.
 */
export function isPlaceholder(facts: Ownership, size: number, owner: number | null): boolean {
  return facts.isFile && size === 0 &&
    (owner === null || facts.uid === null || facts.uid === owner);
}

/** The first `bytes` bytes of `file` if it is trusted, as {@link readTrusted}; synchronous. */
export function readStartTrusted(
  file: string,
  directory: string,
  owner: number | null,
  bytes: number,
): string | Unread {
  let fd: number;
  try {
    fd = openSync(file, READ_FLAGS);
  } catch (error) {
    return unopenedSync(file, directory, owner, error);
  }
  try {
    if (!isTrusted(ownershipOf(fstatSync(fd)), owner)) return "untrusted";
    const buffer = new Uint8Array(bytes);
    const length = readSync(fd, buffer, 0, bytes, 0);
    return new TextDecoder().decode(buffer.subarray(0, length));
  } catch (error) {
    throw fileError("read a session file", directory, error);
  } finally {
    closeSync(fd);
  }
}

// ENXIO: a socket, or a device with nothing behind it. ELOOP (EMLINK on
// FreeBSD): a symlink refused by O_NOFOLLOW, or a loop in the directory's own
// path; EACCES, EPERM: another user's file, or a directory this user may not
// search. lstat tells the planted file from the broken directory, which is an
// error to report.
const SUSPECT = new Set(["ELOOP", "EMLINK", "EACCES", "EPERM"]);

async function unopened(
  file: string,
  directory: string,
  owner: number | null,
  error: unknown,
): Promise<Unread> {
  if (isMissing(error)) return "missing";
  const code = errorCode(error);
  if (code === "ENXIO") return "untrusted";
  if (SUSPECT.has(code ?? "")) {
    const facts = await lstat(file).then(ownershipOf, () => null);
    if (facts !== null && !isTrusted(facts, owner)) return "untrusted";
  }
  throw fileError("read a session file", directory, error);
}

function unopenedSync(
  file: string,
  directory: string,
  owner: number | null,
  error: unknown,
): Unread {
  if (isMissing(error)) return "missing";
  const code = errorCode(error);
  if (code === "ENXIO") return "untrusted";
  if (SUSPECT.has(code ?? "")) {
    let facts: Ownership | null = null;
    try {
      facts = ownershipOf(lstatSync(file));
    } catch {
      // reported below as the open's own error
    }
    if (facts !== null && !isTrusted(facts, owner)) return "untrusted";
  }
  throw fileError("read a session file", directory, error);
}
