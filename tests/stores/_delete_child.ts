// Deletes one session from a process of its own: a logout on another server
// of the same directory, for tests that must run it synchronously inside one
// of the sweeper's steps.
//
// args: <session dir> <key>

import process from "node:process";
import { FileStore } from "../../mod.ts";

const [path, key] = process.argv.slice(2) as [string, string];
await new FileStore({ path }).delete(key);
