// Creates, updates and deletes one session in the directory given, for a
// test that counts the fsync calls this process makes (under strace).
//
// args: <session dir> <"durable" or "plain">

import process from "node:process";
import { FileStore } from "../../mod.ts";

const [path, mode] = process.argv.slice(2) as [string, string];
const store = new FileStore({ path, durable: mode === "durable" });
const key = await store.create({ data: "{}", expiresAt: Date.now() + 60_000 });
await store.save(key, { data: '{"n":2}', expiresAt: Date.now() + 60_000 });
await store.delete(key);
console.log("done");
