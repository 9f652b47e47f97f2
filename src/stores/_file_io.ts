// The file engine's synchronous calls, each through the cheapest API of the
// runtime. A session file is a few hundred bytes in the page cache: reading
// or replacing it costs a few syscalls of microseconds, and a promise-based
// call costs more CPU than the syscall itself (on Deno about 3x, on Bun about
// 6-10x for the whole read or write; docs/benchmarks.md has the figures).
// On Deno, node:fs's synchronous calls still build a full Stats object and
// an exception per missing file, so Deno's own calls are used there, through
// a structural type of their own, wherever they keep the engine's rules.

import {
  closeSync,
  constants,
  existsSync,
  fstatSync,
  futimesSync,
  linkSync,
  lstatSync,
  openSync,
  readSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { isMissing } from "./_file_errors.ts";

/** What the engine looks at in a file's metadata. */
export interface FileFacts {
  isFile: boolean;
  /** The owner's uid; null where the runtime reports none (Windows). */
  uid: number | null;
  /** The permission bits; null where the runtime reports none (Windows). */
  mode: number | null;
  size: number;
  /** Milliseconds since the epoch. */
  mtimeMs: number;
}

/** A file opened for reading. */
export interface ReadHandle {
  stat(): FileFacts;
  /** Reads into `buffer` from the current position; 0 at the end. */
  read(buffer: Uint8Array): number;
  close(): void;
}

/**
 * A file just written and still open: its modification time is set last,
 * through the descriptor, so that it reaches exactly the file written
 * whatever has been renamed over its name since.
 */
export interface WrittenFile {
  /** Sets the modification time (seconds since the epoch) and closes the file. */
  publish(mtimeSeconds: number): void;
  /** Closes the file and leaves its modification time as the write left it. */
  close(): void;
}

/** The synchronous calls of the file engine. */
export interface SyncFs {
  /** Opens `path` read-only with `customFlags` (O_NOFOLLOW, O_NONBLOCK). */
  openRead(path: string, customFlags: number): ReadHandle;
  /**
   * Creates `path` exclusively with mode 0600 and writes `text`, leaving it
   * open. A failure after the create closes and removes the file again.
   */
  writeNew(path: string, text: string): WrittenFile;
  /** Throws when nothing is at `path` (following a symlink). */
  stat(path: string): void;
  /** The facts of `path` itself, or null when nothing is there (ENOENT, ENOTDIR). */
  lstat(path: string): FileFacts | null;
  /**
   * Whether `path` names something, following a symlink: false, never an
   * exception, when nothing is there, which on Deno costs a tenth of a
   * missing file's `lstat` (that builds an error object).
   */
  exists(path: string): boolean;
  rename(from: string, to: string): void;
  link(from: string, to: string): void;
  unlink(path: string): void;
}

interface DenoFileInfo {
  isFile: boolean;
  uid: number | null;
  mode: number | null;
  size: number;
  mtime: Date | null;
}

interface DenoFsFile {
  writeSync(data: Uint8Array): number;
  utimeSync(atime: number, mtime: number): void;
  close(): void;
}

interface DenoFsApi {
  openSync(
    path: string,
    options: { write: true; createNew: true; mode: number },
  ): DenoFsFile;
  statSync(path: string): DenoFileInfo;
  lstatSync(path: string): DenoFileInfo;
  renameSync(from: string, to: string): void;
  linkSync(from: string, to: string): void;
  removeSync(path: string): void;
}

const encoder = new TextEncoder();

function removeQuietly(remove: () => void): void {
  try {
    remove();
  } catch {
    // a temp file left behind is the sweeper's (staleTempAfter)
  }
}

function denoFacts(info: DenoFileInfo): FileFacts {
  return {
    isFile: info.isFile,
    uid: info.uid,
    mode: info.mode,
    size: info.size,
    mtimeMs: info.mtime?.getTime() ?? 0,
  };
}

function denoFs(deno: DenoFsApi): SyncFs {
  return {
    // Deno's open does not pass O_NONBLOCK on (a FIFO would block it), and
    // no Deno call takes a file opened by node:fs: reads go through node:fs.
    openRead: (path, customFlags) => nodeFs.openRead(path, customFlags),
    writeNew(path, text) {
      const file = deno.openSync(path, { write: true, createNew: true, mode: 0o600 });
      try {
        let bytes = encoder.encode(text);
        while (bytes.length > 0) bytes = bytes.subarray(file.writeSync(bytes));
      } catch (error) {
        file.close();
        removeQuietly(() => deno.removeSync(path));
        throw error;
      }
      return {
        publish(mtimeSeconds) {
          try {
            file.utimeSync(Date.now() / 1000, mtimeSeconds);
          } finally {
            file.close();
          }
        },
        close: () => file.close(),
      };
    },
    stat(path) {
      deno.statSync(path);
    },
    lstat(path) {
      try {
        return denoFacts(deno.lstatSync(path));
      } catch (error) {
        if (isMissing(error)) return null;
        throw error;
      }
    },
    exists: existsSync,
    rename: (from, to) => deno.renameSync(from, to),
    link: (from, to) => deno.linkSync(from, to),
    unlink: (path) => deno.removeSync(path),
  };
}

const nodeFs: SyncFs = {
  openRead(path, customFlags) {
    const fd = openSync(path, constants.O_RDONLY | customFlags);
    let position = 0;
    return {
      stat() {
        const stats = fstatSync(fd);
        return {
          isFile: stats.isFile(),
          uid: stats.uid,
          mode: stats.mode,
          size: stats.size,
          mtimeMs: stats.mtimeMs,
        };
      },
      read(buffer) {
        const length = readSync(fd, buffer, 0, buffer.length, position);
        position += length;
        return length;
      },
      close: () => closeSync(fd),
    };
  },
  writeNew(path, text) {
    const fd = openSync(path, "wx", 0o600);
    try {
      let bytes = encoder.encode(text);
      while (bytes.length > 0) bytes = bytes.subarray(writeSync(fd, bytes));
    } catch (error) {
      closeSync(fd);
      removeQuietly(() => unlinkSync(path));
      throw error;
    }
    return {
      publish(mtimeSeconds) {
        try {
          futimesSync(fd, Date.now() / 1000, mtimeSeconds);
        } finally {
          closeSync(fd);
        }
      },
      close: () => closeSync(fd),
    };
  },
  stat(path) {
    statSync(path);
  },
  lstat(path) {
    let stats;
    try {
      stats = lstatSync(path, { throwIfNoEntry: false });
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
    return stats === undefined ? null : {
      isFile: stats.isFile(),
      uid: stats.uid,
      mode: stats.mode,
      size: stats.size,
      mtimeMs: stats.mtimeMs,
    };
  },
  exists: existsSync,
  rename: renameSync,
  link: linkSync,
  unlink: unlinkSync,
};

const deno = (globalThis as { Deno?: Partial<DenoFsApi> }).Deno;

/** The synchronous calls of this runtime: Deno's own on Deno, node:fs elsewhere. */
export const syncFs: SyncFs = typeof deno?.openSync === "function" &&
    typeof deno.lstatSync === "function"
  ? denoFs(deno as DenoFsApi)
  : nodeFs;

/** node:fs's synchronous calls, whatever the runtime (for a comparison). */
export const nodeSyncFs: SyncFs = nodeFs;
