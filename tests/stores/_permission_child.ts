// Uses a FileStore on the directory given, in a Deno process started without
// some permission, and prints what the user would see: "ok" or the error's
// message, for each step.
//
// args: <session dir>

import process from "node:process";
import { FileStore } from "../../mod.ts";

const path = process.argv[2]!;
let store: FileStore;
try {
  store = new FileStore({ path });
  console.log("construct: ok");
} catch (error) {
  console.log(`construct: ${(error as Error).message}`);
  process.exit(0);
}
for (
  const [step, run] of [
    ["create", () => store.create({ data: "{}", expiresAt: Date.now() + 60_000 })],
    ["load", () => store.load("abcdefgh12345678")],
    ["sweep", () => store.clearExpired()],
  ] as const
) {
  try {
    await run();
    console.log(`${step}: ok`);
  } catch (error) {
    console.log(`${step}: ${(error as Error).message}`);
  }
}
