// A process of its own on one local Deno KV file, for the tests of two
// processes sharing it (kv_test.ts). Deno only:
//   deno run --allow-all --unstable-kv tests/stores/_kv_child.ts serve <file>
//     a session server; prints its port, stops when its stdin closes.
//     Routes: /set?name=value, /get (the items as JSON), /incr, /cycle, /flush.
//   deno run ... _kv_child.ts work <file> <role> <keys file> <start>
//     waits until <start> (milliseconds since the epoch), so that both
//     workers run at once; then
//     role "save": saves every key of <keys file> (one a line) 3 times;
//     role "delete": deletes every key and creates as many new sessions.
//     Prints one JSON line of counts, and the keys it created.
// Every commit that KV refused with "database is locked" is counted (the
// store retries it); the wrapper only observes the real database.

import { readFileSync } from "node:fs";
import {
  type DenoKv,
  type DenoKvAtomicOperation,
  KvStore,
  SessionInterruptedError,
} from "../../mod.ts";
import { serveSessions } from "./_session_server.ts";

let locked = 0;

function counting(kv: DenoKv): DenoKv {
  return {
    get: (key, options) => kv.get(key, options),
    list: (selector, options) => kv.list(selector, options),
    delete: (key) => kv.delete(key),
    close: () => kv.close(),
    atomic() {
      const operation = kv.atomic();
      const observed: DenoKvAtomicOperation = {
        check(...checks) {
          operation.check(...checks);
          return observed;
        },
        set(key, value, options) {
          operation.set(key, value, options);
          return observed;
        },
        delete(key) {
          operation.delete(key);
          return observed;
        },
        async commit() {
          try {
            return await operation.commit();
          } catch (error) {
            if (/database is locked/.test(String(error))) locked++;
            throw error;
          }
        },
      };
      return observed;
    },
  };
}

async function inParallel<T>(items: T[], width: number, task: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) await task(items[next++]!);
  }));
}

async function work(store: KvStore, role: string, keys: string[]): Promise<void> {
  const counts = { saved: 0, interrupted: 0, deleted: 0, created: 0, failed: 0, locked: 0 };
  const created: string[] = [];
  const record = () => ({ data: JSON.stringify({ by: role }), expiresAt: Date.now() + 3_600_000 });
  await inParallel(keys, 16, async (key) => {
    try {
      if (role === "save") {
        for (let round = 0; round < 3; round++) {
          try {
            await store.save(key, record());
            counts.saved++;
          } catch (error) {
            if (!(error instanceof SessionInterruptedError)) throw error;
            counts.interrupted++;
            break;
          }
        }
      } else {
        await store.delete(key);
        counts.deleted++;
        created.push(await store.create(record()));
        counts.created++;
      }
    } catch (error) {
      counts.failed++;
      console.error(String(error));
    }
  });
  counts.locked = locked;
  console.log(JSON.stringify({ counts, created }));
}

async function main(args: string[]): Promise<void> {
  const [mode, file, role, keysFile, start] = args;
  const deno = (globalThis as { Deno?: typeof Deno }).Deno!;
  const kv = await deno.openKv(file!);
  const store = new KvStore({ kv: counting(kv), prefix: ["tessera", "sessions"] });
  if (mode === "serve") {
    serveSessions(store, () => kv.close());
    return;
  }
  if (mode === "work" && role && keysFile) {
    const keys = readFileSync(keysFile, "utf8").split("\n").filter(Boolean);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, Number(start) - Date.now())));
    await work(store, role, keys);
    kv.close();
    return;
  }
  throw new Error(
    "Cannot start: usage is '_kv_child.ts serve <file>' or '... work <file> <role> <keys file> <start>'",
  );
}

if (import.meta.main) await main(process.argv.slice(2));
