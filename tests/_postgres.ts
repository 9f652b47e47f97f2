// A private PostgreSQL cluster for tests: Debian's postgresql installed with
// apt-get when missing, a fresh cluster made by initdb in a temp dir (as the
// `postgres` OS user when the tests run as root, which PostgreSQL refuses),
// started on a free 127.0.0.1 port with its socket in that dir and trust
// authentication, and stopped by its pid. Tests never assume a running
// PostgreSQL and never skip.

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import {
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import postgres from "postgres";
import pg from "pg";
import { generateKey } from "../src/_key.ts";
import type { PostgresClient } from "../mod.ts";

/** A PostgreSQL server this process started. */
export interface PostgresServer {
  readonly port: number;
  /** A connection URL for the `postgres` superuser and database. */
  readonly url: string;
  /** The pid of the running postmaster, or null while it is stopped. */
  readonly pid: number | null;
  /** Stops the server (a fast shutdown, SIGINT to its pid) and waits until it has exited. */
  stop(): Promise<void>;
  /** Starts the server again on the same data and port (after stop()). */
  restart(): Promise<void>;
  /** Stops the server if it runs and removes its cluster. */
  destroy(): Promise<void>;
}

const LIB = "/usr/lib/postgresql";

function binDir(): string | null {
  if (!existsSync(LIB)) return null;
  const versions = readdirSync(LIB).filter((name) => /^\d+$/.test(name))
    .sort((a, b) => Number(b) - Number(a));
  for (const version of versions) {
    const dir = join(LIB, version, "bin");
    if (existsSync(join(dir, "initdb")) && existsSync(join(dir, "postgres"))) return dir;
  }
  return null;
}

let bin: string | undefined;

/** Installs Debian's postgresql with apt-get unless its server binaries are there. */
export function ensurePostgres(): string {
  bin ??= binDir() ?? undefined;
  if (bin !== undefined) return bin;
  // Another apt-get may hold the lock: wait for it rather than fail.
  const lock = ["-o", "DPkg::Lock::Timeout=600"];
  for (
    const args of [
      ["update", "-qq", ...lock],
      ["install", "-y", "-qq", "--no-install-recommends", ...lock, "postgresql"],
    ]
  ) {
    const result = spawnSync("apt-get", args, {
      stdio: ["ignore", "ignore", "inherit"],
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
    if (result.status !== 0) {
      throw new Error(`Cannot install postgresql: apt-get ${args[0]} exited with ${result.status}`);
    }
  }
  bin = binDir() ?? undefined;
  if (bin === undefined) throw new Error(`Cannot find initdb under ${LIB} after installing it`);
  return bin;
}

/** The user the cluster runs as: `postgres` (made if missing) for root, else ourselves. */
function clusterUser(): { uid: number; gid: number; prefix: string[] } | null {
  if (process.getuid?.() !== 0) return null;
  const lookup = () => spawnSync("id", ["-u", "postgres"], { encoding: "utf8" });
  let found = lookup();
  if (found.status !== 0) {
    spawnSync("useradd", [
      "--system",
      "--no-create-home",
      "--shell",
      "/usr/sbin/nologin",
      "postgres",
    ], {
      stdio: "ignore",
    });
    found = lookup();
    if (found.status !== 0) throw new Error("Cannot find or create the postgres OS user");
  }
  const gid = spawnSync("id", ["-g", "postgres"], { encoding: "utf8" });
  return {
    uid: Number(found.stdout.trim()),
    gid: Number(gid.stdout.trim()),
    prefix: ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"],
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

interface Running {
  child: ChildProcess;
  exited: Promise<void>;
  pid: number;
}

// The server runs under a small shell that ends when the server does, and
// whose reader shuts the server down if our end of its stdin closes first:
// a test process that dies without stopping its server leaves none behind.
// The server's log goes to a file in the cluster's dir, shown on failure.
const GUARD = [
  "exec 3<&0",
  'log="$1"; shift',
  '"$@" 2>>"$log" & pid=$!',
  "exec 2>/dev/null",
  'echo "$pid"',
  '{ read -r _ <&3; kill -INT "$pid"; } & reader=$!',
  'wait "$pid"',
  'kill -KILL "$reader"',
].join("\n");

/** The status line of postmaster.pid: "ready" once it accepts connections. */
function status(data: string): string | null {
  try {
    return readFileSync(join(data, "postmaster.pid"), "utf8").split("\n")[7]?.trim() ?? null;
  } catch {
    return null;
  }
}

function logTail(log: string): string {
  try {
    return readFileSync(log, "utf8").split("\n").slice(-15).join("\n");
  } catch {
    return "(no log)";
  }
}

async function launch(
  binPath: string,
  prefix: string[],
  dir: string,
  port: number,
): Promise<Running | null> {
  const data = join(dir, "data");
  const log = join(dir, "postgres.log");
  const child = spawn("sh", [
    "-c",
    GUARD,
    "sh",
    log,
    ...prefix,
    join(binPath, "postgres"),
    "-D",
    data,
    "-p",
    String(port),
    "-k",
    join(dir, "socket"),
    "-c",
    "listen_addresses=127.0.0.1",
    // The tests check what a client is told, not the disk: a clean or
    // crashed server process still leaves every commit in the OS's cache.
    "-c",
    "fsync=off",
    "-c",
    "max_connections=200",
  ], { stdio: ["pipe", "pipe", "ignore"] });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const pid = await new Promise<number>((resolve) => {
    let out = "";
    child.stdout!.on("data", (chunk) => {
      out += chunk.toString();
      if (out.includes("\n")) resolve(Number(out.split("\n")[0]));
    });
    child.once("exit", () => resolve(0));
  });
  const running = { child, exited, pid };
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && child.exitCode === null) {
    if (status(data) === "ready") return running;
    await sleep(20);
  }
  await terminate(running);
  return null;
}

// The pid stays the server's until the guard shell has reaped it, which is
// when the shell exits: it is never signalled after that. A fast shutdown
// ends the clients' sessions, so it does not wait for a pool to let go.
async function terminate(running: Running): Promise<void> {
  const { child, exited, pid } = running;
  if (child.exitCode === null && child.signalCode === null && pid > 0) {
    process.kill(pid, "SIGINT");
    const timer = new Promise((resolve) => setTimeout(resolve, 10_000, "timeout"));
    if (await Promise.race([exited, timer]) === "timeout") process.kill(pid, "SIGKILL");
  }
  child.stdin?.end();
  await exited;
}

/** Makes a cluster in a temp dir and starts it on a free 127.0.0.1 port. */
export async function startPostgres(): Promise<PostgresServer> {
  const binPath = ensurePostgres();
  const user = clusterUser();
  const dir = mkdtempSync(join(tmpdir(), "tessera-pg-"));
  mkdirSync(join(dir, "socket"));
  if (user !== null) {
    for (const path of [dir, join(dir, "socket")]) chownSync(path, user.uid, user.gid);
  }
  const prefix = user?.prefix ?? [];
  const init = spawnSync(prefix[0] ?? join(binPath, "initdb"), [
    ...prefix.slice(1),
    ...(prefix.length > 0 ? [join(binPath, "initdb")] : []),
    "-D",
    join(dir, "data"),
    "-A",
    "trust",
    "-U",
    "postgres",
    "-E",
    "UTF8",
    "--locale=C",
    "--no-sync",
    "--no-instructions",
  ], { encoding: "utf8" });
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(
      `Cannot make a PostgreSQL cluster: initdb exited with ${init.status}: ${init.stderr}`,
    );
  }
  let port = 0;
  let current: Running | null = null;
  for (let attempt = 0; attempt < 5 && current === null; attempt++) {
    port = await freePort();
    current = await launch(binPath, prefix, dir, port); // null: the port was taken meanwhile
  }
  if (current === null) {
    const tail = logTail(join(dir, "postgres.log"));
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`Cannot start PostgreSQL on a free port after 5 attempts:\n${tail}`);
  }
  const server: PostgresServer = {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    get pid() {
      return current?.pid ?? null;
    },
    async stop() {
      if (current === null) return;
      const stopping = current;
      current = null;
      await terminate(stopping);
    },
    async restart() {
      if (current !== null) throw new Error("Cannot restart a running PostgreSQL");
      for (let tries = 0; tries < 20 && current === null; tries++) {
        current = await launch(binPath, prefix, dir, port);
        if (current === null) await sleep(100);
      }
      if (current === null) {
        throw new Error(
          `Cannot restart PostgreSQL on port ${port}:\n${logTail(join(dir, "postgres.log"))}`,
        );
      }
    },
    async destroy() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}

/** A table name no other test uses, so tests on one server never see each other's rows. */
export function freshTable(): string {
  return `sessions_${generateKey().slice(0, 12)}`;
}

/** A connected client of one kind, and how to close it. */
export interface PostgresClientHandle {
  readonly client: PostgresClient;
  close(): Promise<void>;
}

/** One PostgreSQL client library, configured as the docs tell users to. */
export interface PostgresClientKind {
  readonly name: string;
  connect(url: string, max?: number): Promise<PostgresClientHandle>;
}

// The settings the docs recommend: a short connect timeout, so that a
// request fails fast while the server is away, and reconnection on the
// next query, which every one of these pools does by itself.
const POSTGRES_JS: PostgresClientKind = {
  name: "postgres",
  connect(url, max = 10) {
    // postgres waits before each new connection after a failed one, up to
    // 20 s by default (option `backoff`): requests would queue that long.
    const sql = postgres(url, { max, connect_timeout: 2, backoff: () => 0.05, onnotice: () => {} });
    return Promise.resolve({
      client: sql,
      close: () => sql.end({ timeout: 1 }),
    });
  },
};

const PG: PostgresClientKind = {
  name: "pg",
  connect(url, max = 10) {
    const pool = new pg.Pool({ connectionString: url, max, connectionTimeoutMillis: 2000 });
    // An idle connection the server ends is reported as a pool event;
    // unheard, it would end the process.
    pool.on("error", () => {});
    return Promise.resolve({ client: pool, close: () => pool.end() });
  },
};

interface BunSqlClient {
  unsafe(text: string, parameters: string[]): PromiseLike<Record<string, unknown>[]>;
  close(options?: { timeout?: number }): Promise<void>;
}
type BunSqlConstructor = new (url: string, options: Record<string, unknown>) => BunSqlClient;

const BUN_SQL: PostgresClientKind = {
  name: "Bun SQL",
  connect(url, max = 10) {
    const SQL = (globalThis as { Bun?: { SQL: BunSqlConstructor } }).Bun!.SQL;
    const sql = new SQL(url, { max, connectionTimeout: 2 });
    return Promise.resolve({ client: sql, close: () => sql.close({ timeout: 1 }) });
  },
};

/**
 * The clients that run on this runtime: `postgres` and `pg` everywhere,
 * Bun's built-in SQL on Bun (Deno has no built-in client).
 */
export const POSTGRES_CLIENTS: readonly PostgresClientKind[] = "Bun" in globalThis
  ? [POSTGRES_JS, PG, BUN_SQL]
  : [POSTGRES_JS, PG];
