#!/usr/bin/env -S deno run --allow-read --allow-write --allow-env=TMPDIR,TMP,TEMP
/**
 * `clearsessions`: removes expired sessions, as Django's
 * `python manage.py clearsessions` does, for cron, a systemd timer or
 * `Deno.cron`. It sweeps the store of the application's own options (a
 * `--config` module), or a file store given by `--dir` and `--prefix`.
 *
 * ```sh
 * deno run --allow-read --allow-write --allow-env jsr:@tessera/sessions/clearsessions --dir ./sessions
 * bun ./clearsessions.ts --config ./sessions.config.ts  # Bun: a three-line file calling main()
 * ```
 *
 * @example Sweeping a directory from code
 * ```ts
 * import assert from "node:assert/strict";
 * import { main } from "@tessera/sessions/clearsessions";
 *
 * const out: string[] = [];
 * const code = await main(["--dir", Deno.makeTempDirSync(), "--json"], {
 *   write: (text) => out.push(text),
 *   writeError: (text) => out.push(text),
 *   isTerminal: false,
 * });
 * assert.equal(code, 0);
 * assert.equal(JSON.parse(out.join("")).removed, 0);
 * ```
 *
 * @module
 */

import { stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import process from "node:process";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { resolveOptions, type SessionOptions } from "../options.ts";
import { FileStore } from "../stores/file.ts";
import type { SessionStore, SweepReport } from "../stores/store.ts";

/**
 * The command's help text.
 *
 * @example
 * ```ts
 * import { USAGE } from "@tessera/sessions/clearsessions";
 *
 * console.log(USAGE);
 * ```
 */
export const USAGE: string = `clearsessions
  Removes expired sessions, as Django's "manage.py clearsessions" does. Run it
  from cron, a systemd timer or Deno.cron. A session saved while it runs is
  never removed.

USAGE:
  clearsessions [OPTIONS]

  Without --config or --dir it sweeps the default engine: the session files
  named sessionid<key> in the OS temp dir.

OPTIONS:
  --config <MODULE>    A module whose "options" export, or default export, is
                       the options object given to withSessions: its store is
                       swept, set up exactly as withSessions sets it up
  --dir <PATH>         The file engine's directory, without --config
                       (default: the OS temp dir)
  --prefix <PREFIX>    The session files' name prefix, without --config
                       (default: "sessionid", the default cookie name)
  --cookie-age <SECS>  How many seconds a session file without a readable
                       expiry lives after its last modification (default: the
                       options' cookieAge, 1209600)
  --dry-run            Count what would be removed; remove nothing
  --json               Print one JSON object instead of text
  -h, --help           Print this help

EXIT CODES:
  0  Swept, or nothing to sweep (a store whose sessions expire on their own)
  1  A bad configuration, or an error met while sweeping
  2  A bad command line
`;

/**
 * Where the command writes, and whether its output is a terminal (which
 * turns on the progress line of a long run).
 *
 * @example Capturing the output
 * ```ts
 * import type { CommandIo } from "@tessera/sessions/clearsessions";
 *
 * const out: string[] = [];
 * const io: CommandIo = {
 *   write: (text) => out.push(text),
 *   writeError: (text) => out.push(text),
 *   isTerminal: false,
 * };
 * ```
 */
export interface CommandIo {
  /**
   * Writes to standard output.
   *
   * @example
   * ```ts
   * const write = (text: string) => console.log(text);
   * ```
   */
  write(text: string): void;
  /**
   * Writes to standard error.
   *
   * @example
   * ```ts
   * const writeError = (text: string) => console.error(text);
   * ```
   */
  writeError(text: string): void;
  /**
   * Whether standard output is a terminal.
   */
  isTerminal: boolean;
  /**
   * Milliseconds a sweep runs before it shows progress on a terminal.
   *
   * @default {500}
   */
  progressAfter?: number;
}

/**
 * The object `--json` prints: every key is always present.
 *
 * @example
 * ```ts
 * import type { Summary } from "@tessera/sessions/clearsessions";
 *
 * const summary: Summary = JSON.parse(
 *   '{"ok":true,"engine":"FileStore","directory":"/tmp","prefix":"sessionid","dryRun":false,' +
 *     '"expiresOnItsOwn":false,"removed":1,"kept":2,"tempRemoved":0,"failed":0,"errors":[],' +
 *     '"elapsedMs":3,"error":null}',
 * );
 * ```
 */
export interface Summary {
  /**
   * Whether the sweep ran and met no error (the exit code is 0).
   */
  ok: boolean;
  /**
   * The store's class name, or `null` if the configuration failed before one was built.
   */
  engine: string | null;
  /**
   * The file engine's directory (`null` for other engines).
   */
  directory: string | null;
  /**
   * The file engine's file name prefix (`null` for other engines).
   */
  prefix: string | null;
  /**
   * Whether this was a dry run (the counts are what would have been removed).
   */
  dryRun: boolean;
  /**
   * Whether the store expires sessions on its own, so nothing was swept.
   */
  expiresOnItsOwn: boolean;
  /**
   * Expired sessions removed (`null` if the sweep did not run).
   */
  removed: number | null;
  /**
   * Live sessions kept (`null` for a store that does not count them).
   */
  kept: number | null;
  /**
   * Leftovers of interrupted writes removed (`null` for a store that has none).
   */
  tempRemoved: number | null;
  /**
   * Entries that could not be checked or removed.
   */
  failed: number;
  /**
   * The first few of those failures' messages.
   */
  errors: string[];
  /**
   * How long the run took, in milliseconds.
   */
  elapsedMs: number;
  /**
   * Why the run failed before or instead of sweeping, else `null`.
   */
  error: string | null;
}

interface Flags {
  config: string | undefined;
  dir: string | undefined;
  prefix: string | undefined;
  cookieAge: number | undefined;
  dryRun: boolean;
  json: boolean;
  help: boolean;
}

const PROGRESS_EVERY_MS = 100;

/**
 * Runs the command with `args` (the arguments after the program name) and
 * resolves to its exit code: 0 when it swept (or there was nothing to sweep),
 * 1 for a bad configuration or an error met while sweeping, 2 for a bad
 * command line. It never calls `process.exit()` itself.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { main } from "@tessera/sessions/clearsessions";
 *
 * const io = { write: () => {}, writeError: () => {}, isTerminal: false };
 * assert.equal(await main(["--no-such-flag"], io), 2);
 * ```
 */
export async function main(args: string[], io: CommandIo = processIo()): Promise<number> {
  let flags: Flags;
  try {
    flags = parseFlags(args);
  } catch (error) {
    io.writeError(`clearsessions: ${messageOf(error)}\nRun "clearsessions --help" for usage.\n`);
    return 2;
  }
  if (flags.help) {
    io.write(USAGE);
    return 0;
  }

  const started = performance.now();
  const summary: Summary = {
    ok: false,
    engine: null,
    directory: null,
    prefix: null,
    dryRun: flags.dryRun,
    expiresOnItsOwn: false,
    removed: null,
    kept: null,
    tempRemoved: null,
    failed: 0,
    errors: [],
    elapsedMs: 0,
    error: null,
  };
  const progress = new ProgressLine(io, flags.json, started);
  try {
    const store: SessionStore = await buildStore(flags);
    summary.engine = store.constructor?.name || "store";
    const files = store instanceof FileStore ? store : null;
    summary.directory = files?.path ?? null;
    summary.prefix = files?.prefix ?? null;
    if (files !== null) checkDenoAccess(files.path, flags.dryRun);
    if (store.expiresOnItsOwn === true) {
      summary.expiresOnItsOwn = true;
      summary.removed = 0;
    } else if (typeof store.sweep === "function") {
      const report: SweepReport = await store.sweep({
        dryRun: flags.dryRun,
        onProgress: (checked) => progress.show(checked),
        ...(flags.cookieAge !== undefined ? { cookieAge: flags.cookieAge } : {}),
      });
      Object.assign(summary, report);
    } else if (flags.dryRun) {
      throw new Error(
        `Cannot do a dry run with ${summary.engine}: it can remove expired sessions but not count them`,
      );
    } else {
      summary.removed = await store.clearExpired();
    }
    summary.ok = summary.failed === 0;
    if (!summary.ok) {
      summary.error = `${summary.failed} ${
        summary.failed === 1 ? "entry" : "entries"
      } could not be checked or removed`;
    }
  } catch (error) {
    summary.error = messageOf(error);
  }
  progress.clear();
  summary.elapsedMs = Math.round(performance.now() - started);

  if (flags.json) {
    io.write(`${JSON.stringify(summary)}\n`);
  } else if (summary.removed !== null) {
    io.write(describe(summary));
  }
  if (summary.error !== null) io.writeError(`clearsessions: ${summary.error}\n`);
  return summary.ok ? 0 : 1;
}

function parseFlags(args: string[]): Flags {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: "string" },
      dir: { type: "string" },
      prefix: { type: "string" },
      "cookie-age": { type: "string" },
      "dry-run": { type: "boolean" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.config !== undefined && (values.dir !== undefined || values.prefix !== undefined)) {
    throw new TypeError(
      "--dir and --prefix describe a file store, which --config takes from the module: give one or the other",
    );
  }
  let cookieAge: number | undefined;
  const age = values["cookie-age"];
  if (age !== undefined) {
    cookieAge = /^\d+$/.test(age) ? Number(age) : NaN;
    if (!Number.isSafeInteger(cookieAge)) {
      throw new TypeError(
        `--cookie-age must be a whole number of seconds: current value is ${JSON.stringify(age)}`,
      );
    }
  }
  return {
    config: values.config,
    dir: values.dir,
    prefix: values.prefix,
    cookieAge,
    dryRun: values["dry-run"] ?? false,
    json: values.json ?? false,
    help: values.help ?? false,
  };
}

// The store as withSessions would set it up: the same validation, and
// configure() called with the same settings (the file prefix follows the
// cookie name).
async function buildStore(flags: Flags): Promise<SessionStore> {
  if (flags.config === undefined) {
    checkDenoAccess(flags.dir ?? tmpdir(), flags.dryRun);
    if (flags.dir !== undefined && !(await stat(flags.dir).catch(() => null))?.isDirectory()) {
      throw new Error(`Cannot sweep '${flags.dir}' as it is not an existing directory`);
    }
    try {
      const store = new FileStore({
        ...(flags.dir !== undefined ? { path: flags.dir } : {}),
        ...(flags.prefix !== undefined ? { prefix: flags.prefix } : {}),
      });
      return resolveOptions({ store }).engine;
    } catch (error) {
      throw new Error(messageOf(error));
    }
  }
  const config = flags.config;
  let module: Record<string, unknown>;
  try {
    module = await import(toSpecifier(config));
  } catch (error) {
    throw new Error(`Cannot load the config module '${config}': ${messageOf(error)}`);
  }
  const options = module.options ?? module.default;
  if (options === undefined) {
    throw new Error(
      `Cannot sweep as '${config}' exports no options: export the options object given to withSessions as 'options' or as the default export`,
    );
  }
  const store = (options as SessionOptions | null)?.store as Partial<SessionStore> | undefined;
  if (typeof store === "object" && store !== null && typeof store.clearExpired !== "function") {
    throw new Error(
      `Cannot sweep the store of '${config}' (${
        store.constructor?.name || "an object"
      }) as it has no clearExpired() method: this engine cannot remove expired sessions`,
    );
  }
  try {
    return resolveOptions(options as SessionOptions).engine;
  } catch (error) {
    throw new Error(`Cannot use the options of '${config}': ${messageOf(error)}`);
  }
}

interface DenoPermissions {
  permissions: {
    querySync(descriptor: { name: "read" | "write"; path: string }): { state: string };
  };
}

// Without --allow-read, Deno makes every file look missing, and without
// --allow-write every removal fails on its own: one message naming the flag
// and the path says what to do instead. A permission Deno would prompt for
// counts as missing, since the command runs from cron, not a terminal.
function checkDenoAccess(path: string, dryRun: boolean): void {
  const deno = (globalThis as { Deno?: DenoPermissions }).Deno;
  if (deno?.permissions?.querySync === undefined) return;
  for (const name of dryRun ? ["read" as const] : ["read" as const, "write" as const]) {
    if (deno.permissions.querySync({ name, path }).state !== "granted") {
      throw new Error(
        `Cannot sweep '${path}' as Deno's --allow-${name} does not cover it: run again with --allow-${name}=${path}`,
      );
    }
  }
}

// A path is taken from the working directory; a URL (file:, https:, jsr:,
// npm:) is imported as it is. One letter before ':' is a Windows drive.
function toSpecifier(config: string): string {
  return /^[a-z][a-z0-9+.-]+:/i.test(config) ? config : pathToFileURL(resolve(config)).href;
}

function describe(summary: Summary): string {
  const took = formatDuration(summary.elapsedMs);
  const engine = summary.directory !== null
    ? `${summary.engine} sessions in '${summary.directory}' (files ${summary.prefix}<key>)`
    : `${summary.engine} sessions`;
  if (summary.expiresOnItsOwn) {
    return `${summary.engine}: sessions expire on their own, nothing to sweep.\n`;
  }
  const dry = summary.dryRun;
  const lines = [
    dry ? `Dry run over ${engine} in ${took}; nothing was removed:` : `Swept ${engine} in ${took}:`,
    `  ${dry ? "would remove" : "removed"} ${count(summary.removed, "expired session")}`,
  ];
  if (summary.kept !== null) {
    lines.push(`  ${dry ? "would keep" : "kept"} ${count(summary.kept, "live session")}`);
  }
  if (summary.tempRemoved !== null) {
    lines.push(
      `  ${dry ? "would remove" : "removed"} ${
        count(summary.tempRemoved, "temp file")
      } left by interrupted writes`,
    );
  }
  if (summary.failed > 0) {
    lines.push(`  failed on ${count(summary.failed, "entry", "entries")}:`);
    for (const error of summary.errors) lines.push(`    ${error}`);
  }
  return `${lines.join("\n")}\n`;
}

function count(value: number | null, noun: string, plural = `${noun}s`): string {
  return `${value} ${value === 1 ? noun : plural}`;
}

function formatDuration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(2)} s`;
}

// One line, rewritten in place, once a sweep has run for a while on a terminal.
class ProgressLine {
  readonly #io: CommandIo;
  readonly #enabled: boolean;
  readonly #startAt: number;
  #lastShown = -Infinity;
  #shown = false;

  constructor(io: CommandIo, json: boolean, started: number) {
    this.#io = io;
    this.#enabled = io.isTerminal && !json;
    this.#startAt = started + (io.progressAfter ?? 500);
  }

  show(checked: number): void {
    const now = performance.now();
    if (!this.#enabled || now < this.#startAt || now - this.#lastShown < PROGRESS_EVERY_MS) {
      return;
    }
    this.#lastShown = now;
    this.#shown = true;
    this.#io.write(`\rchecked ${checked} files...`);
  }

  clear(): void {
    if (this.#shown) this.#io.write("\r\x1b[2K");
  }
}

function processIo(): CommandIo {
  return {
    write: (text) => void process.stdout.write(text),
    writeError: (text) => void process.stderr.write(text),
    isTerminal: process.stdout.isTTY === true,
  };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

if (import.meta.main) {
  process.exit(await main(process.argv.slice(2)));
}
