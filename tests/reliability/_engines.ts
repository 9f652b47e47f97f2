// The engines the reliability tests run against, one line each. Every test
// in this folder that is not about one engine's own medium (files on a full
// disk, a killed process writing files) loops over ENGINES, so a new engine
// joins the load, fuzz and hygiene tests by adding its line here.

import { existsSync, mkdirSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileStore, MemoryStore, type SessionStore } from "../../mod.ts";

/** One engine's store, opened inside a directory the test owns. */
export interface OpenEngine {
  store: SessionStore;
  /**
   * Stores `data` (any bytes) under `key` with the expiry `expiresAt`, the
   * way the engine keeps a record but bypassing the session layer: a
   * tampered file, a corrupted entry. Used by the fuzz tests.
   */
  plant(key: string, data: Uint8Array, expiresAt: number): Promise<void>;
  /** Releases what the engine holds (connections, handles); files stay for the test to check. */
  close(): Promise<void>;
}

/** An engine under test: its name and how to open a fresh, empty store. */
export interface Engine {
  name: string;
  /**
   * A fresh store whose files, if it has any, live under `root/store`: the
   * tests check that nothing else under `root` is read or written.
   */
  open(root: string): OpenEngine;
}

/**
 * Where the load and fuzz tests keep their stores: on Linux the
 * memory-backed /dev/shm. What they check (no lost update, no escaping
 * path) does not depend on the medium, and a write there costs a fraction
 * of a shared disk's; the crash and storage fault tests use real disks.
 */
export const SCRATCH: string = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();

const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

export const ENGINES: readonly Engine[] = [
  {
    name: "FileStore",
    open(root) {
      const path = join(root, "store");
      mkdirSync(path, { recursive: true });
      const store = new FileStore({ path });
      return {
        store,
        plant(key, data, expiresAt) {
          const head = new TextEncoder().encode(`${expiresAt}\n`);
          const file = new Uint8Array(head.length + data.length);
          file.set(head);
          file.set(data, head.length);
          writeFileSync(store.fileOf(key), file);
          // The engine's sweeper reads the expiry from the modification time.
          utimesSync(store.fileOf(key), new Date(), new Date(expiresAt));
          return Promise.resolve();
        },
        close: () => Promise.resolve(),
      };
    },
  },
  {
    name: "MemoryStore",
    open() {
      const store = new MemoryStore({ maxEntries: 100_000 });
      return {
        store,
        // The memory engine keeps the serialized text: the bytes become
        // text as a file's would when read, byte order mark included.
        async plant(key, data, expiresAt) {
          await store.delete(key);
          await store.save(key, { data: decoder.decode(data), expiresAt }, true);
        },
        close: () => Promise.resolve(),
      };
    },
  },
];
