// A private redis-server for tests: installed with apt-get when missing,
// started on a free 127.0.0.1 port without persistence, stopped by its pid.
// Tests never assume a running Redis and never skip.

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { connect, createServer } from "node:net";
import { Redis as IoRedis } from "ioredis";
import { createClient } from "redis";
import type { RedisCommandClient } from "../mod.ts";

/** A redis-server this process started. */
export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** The pid of the running redis-server, or null while it is stopped. */
  readonly pid: number | null;
  /** Stops the server (SIGTERM to its pid) and waits until it has exited. */
  stop(): Promise<void>;
  /** Starts the server again on the same port (after stop()). */
  restart(): Promise<void>;
}

let installed: boolean | undefined;

function hasRedisServer(): boolean {
  return spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status === 0;
}

/** Installs redis-server with apt-get unless it is already on the PATH. */
export function ensureRedisServer(): void {
  if (installed ?? hasRedisServer()) {
    installed = true;
    return;
  }
  // Another apt-get may hold the lock: wait for it rather than fail.
  const lock = ["-o", "DPkg::Lock::Timeout=600"];
  for (
    const args of [
      ["update", "-qq", ...lock],
      ["install", "-y", "-qq", "--no-install-recommends", ...lock, "redis-server"],
    ]
  ) {
    const result = spawnSync("apt-get", args, {
      stdio: ["ignore", "ignore", "inherit"],
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
    if (result.status !== 0) {
      throw new Error(
        `Cannot install redis-server: apt-get ${args[0]} exited with ${result.status}`,
      );
    }
  }
  if (!hasRedisServer()) throw new Error("Cannot find redis-server after installing it");
  installed = true;
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

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    let reply = "";
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once("error", () => done(false));
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.on("data", (chunk) => {
      reply += chunk.toString();
      if (reply.includes("\r\n")) done(reply.startsWith("+PONG"));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

interface Running {
  child: ChildProcess;
  exited: Promise<void>;
}

// The server runs under a small shell that ends when the server does, and
// whose reader stops the server if our end of its stdin closes first: a
// test process that dies without stopping its server leaves none behind.
const GUARD = [
  // An asynchronous command's stdin is /dev/null: the reader gets ours as fd 3.
  "exec 3<&0",
  'redis-server "$@" & pid=$!',
  // The shell's own job messages ("Terminated") are noise; the server keeps stderr.
  "exec 2>/dev/null",
  'echo "$pid"',
  '{ read -r _ <&3; kill "$pid"; } & reader=$!',
  'wait "$pid"',
  'kill -KILL "$reader"',
].join("\n");

async function launch(port: number): Promise<{ running: Running; pid: number } | null> {
  const child = spawn("sh", [
    "-c",
    GUARD,
    "sh",
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--save",
    "",
    "--appendonly",
    "no",
    "--daemonize",
    "no",
    "--loglevel",
    "warning",
  ], { stdio: ["pipe", "pipe", "inherit"] });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const pid = await new Promise<number>((resolve) => {
    let out = "";
    child.stdout!.on("data", (chunk) => {
      out += chunk.toString();
      const line = out.split("\n")[0];
      if (out.includes("\n")) resolve(Number(line));
    });
    child.once("exit", () => resolve(0));
  });
  const running = { child, exited };
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && child.exitCode === null) {
    if (await ping(port)) return { running, pid };
    await sleep(20);
  }
  await terminate(running, pid);
  return null;
}

// The pid stays the server's until the guard shell has reaped it, which is
// when the shell exits: it is never signalled after that.
async function terminate(running: Running, pid: number): Promise<void> {
  const { child, exited } = running;
  if (child.exitCode === null && child.signalCode === null && pid > 0) {
    process.kill(pid, "SIGTERM");
    const timer = new Promise((resolve) => setTimeout(resolve, 5000, "timeout"));
    if (await Promise.race([exited, timer]) === "timeout") process.kill(pid, "SIGKILL");
  }
  child.stdin?.end();
  await exited;
}

/** Starts a redis-server of its own on a free 127.0.0.1 port. */
export async function startRedis(): Promise<RedisServer> {
  ensureRedisServer();
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const first = await launch(port);
    if (first === null) continue; // the port was taken meanwhile
    let current: { running: Running; pid: number } | null = first;
    return {
      port,
      url: `redis://127.0.0.1:${port}`,
      get pid() {
        return current?.pid ?? null;
      },
      async stop() {
        if (current === null) return;
        const stopping = current;
        current = null;
        await terminate(stopping.running, stopping.pid);
      },
      async restart() {
        if (current !== null) throw new Error("Cannot restart a running redis-server");
        for (let tries = 0; tries < 50 && current === null; tries++) {
          current = await launch(port);
          if (current === null) await sleep(100);
        }
        if (current === null) throw new Error(`Cannot restart redis-server on port ${port}`);
      },
    };
  }
  throw new Error("Cannot start redis-server on a free port after 5 attempts");
}

/** A connected client of one kind, and how to close it. */
export interface RedisClientHandle {
  readonly client: RedisCommandClient;
  close(): Promise<void>;
}

/** One Redis client library, as docs/engines.md tells users to configure it. */
export interface RedisClientKind {
  readonly name: string;
  connect(url: string): Promise<RedisClientHandle>;
}

// The settings docs/engines.md recommends: fail a command at once while
// disconnected (no offline queue) and keep reconnecting, quickly here.
const NODE_REDIS: RedisClientKind = {
  name: "node-redis",
  async connect(url) {
    const client = createClient({
      url,
      disableOfflineQueue: true,
      socket: { connectTimeout: 1000, reconnectStrategy: (retries) => Math.min(retries * 20, 200) },
    });
    // node-redis emits connection errors as events; unheard, they would end the process.
    client.on("error", () => {});
    await client.connect();
    return {
      client,
      close: async () => {
        if (client.isOpen) await client.close();
      },
    };
  },
};

const IOREDIS: RedisClientKind = {
  name: "ioredis",
  async connect(url) {
    const client = new IoRedis(url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 1000,
      retryStrategy: (times) => Math.min(times * 20, 200),
    });
    client.on("error", () => {});
    await client.connect();
    return {
      client,
      close: async () => {
        client.disconnect();
        await Promise.resolve();
      },
    };
  },
};

interface BunRedisClient {
  send(command: string, args: string[]): Promise<unknown>;
  connect(): Promise<void>;
  close(): void;
}
type BunRedisConstructor = new (url: string, options: Record<string, unknown>) => BunRedisClient;

const BUN_REDIS: RedisClientKind = {
  name: "Bun RedisClient",
  async connect(url) {
    const Client = (globalThis as { Bun?: { RedisClient: BunRedisConstructor } }).Bun!.RedisClient;
    const client = new Client(url, {
      enableOfflineQueue: false,
      autoReconnect: true,
      maxRetries: 1_000_000,
      connectionTimeout: 1000,
    });
    await client.connect();
    return {
      client,
      close: () => {
        client.close();
        return Promise.resolve();
      },
    };
  },
};

/**
 * The clients that run on this runtime: node-redis and ioredis everywhere,
 * Bun's built-in RedisClient on Bun (Deno has no built-in client).
 */
export const REDIS_CLIENTS: readonly RedisClientKind[] = "Bun" in globalThis
  ? [NODE_REDIS, IOREDIS, BUN_REDIS]
  : [NODE_REDIS, IOREDIS];
