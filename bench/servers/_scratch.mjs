// A directory of files for one server process, removed when it stops.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * A fresh, empty directory in `root` (default: the OS temp dir).
 *
 * @param {string} prefix
 * @param {string | undefined} [root]
 * @returns {string}
 */
export function scratchDirectory(prefix, root) {
  return mkdtempSync(join(root ?? tmpdir(), prefix));
}

/**
 * Removes `directory` and everything in it. A write still in flight when the
 * server was told to stop can add a file while the directory is being
 * removed (ENOTEMPTY), so it tries again for up to a second.
 *
 * @param {string} directory
 * @returns {Promise<void>}
 */
export async function removeScratch(directory) {
  for (let attempt = 1;; attempt++) {
    try {
      rmSync(directory, { recursive: true, force: true });
      return;
    } catch (error) {
      if (attempt >= 20) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
