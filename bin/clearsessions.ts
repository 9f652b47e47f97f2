#!/usr/bin/env bun
// The package's `tessera-clearsessions` command (`bunx tessera-clearsessions`):
// the same command as `deno run jsr:@tessera/sessions/clearsessions`, on Bun.
import process from "node:process";
import { main } from "../src/cli/clearsessions.ts";

process.exit(await main(process.argv.slice(2)));
