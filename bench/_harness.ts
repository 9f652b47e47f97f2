// Starting a benchmark server, seeding it with sessions, and checking that
// it answers what its workload says before anything is timed (as Hono's
// benchmarks check each contender's output): run.ts uses it for every
// visit and for `--quick`, and the tests for every floor.
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Pair, Runtime, ServerSpec, Workload } from "./_plan.ts";
import { cpuTicks, statusKib } from "./_stats.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BENCH = join(ROOT, "bench");

/** The core servers are pinned to; wrk gets the other. */
export const SERVER_CORE = "0";

/** The runtimes' binaries: this checkout's Deno and Bun, the system's Node. */
export const BINARIES: Record<Runtime, string> = {
  deno: join(ROOT, "node_modules", ".bin", "deno"),
  bun: join(ROOT, "node_modules", ".bin", "bun"),
  node: "node",
};

/** A server process pinned to its core, and the port it listens on. */
export class Server {
  readonly #child: ChildProcess;
  readonly #log: string[] = [];
  #exited: Promise<void>;
  port = 0;

  /** Starts `spec` with `args`, pinned to SERVER_CORE unless `pin` is false. */
  constructor(spec: ServerSpec, args: string[], pin = true) {
    const file = join(BENCH, "servers", spec.file);
    const command = spec.runtime === "deno"
      ? [BINARIES.deno, "run", "-A", file]
      : [BINARIES[spec.runtime], file];
    const [program, ...rest] = pin
      ? ["taskset", "-c", SERVER_CORE, ...command, ...args]
      : [...command, ...args];
    this.#child = spawn(program!, rest, {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.#exited = new Promise((resolve) => this.#child.once("exit", () => resolve()));
    // Keep reading, or a server that logs would block on a full pipe.
    for (const stream of [this.#child.stdout!, this.#child.stderr!]) {
      stream.setEncoding("utf8");
      stream.on("data", (text: string) => {
        this.#log.push(text);
        if (this.#log.length > 50) this.#log.shift();
      });
    }
  }

  get pid(): number {
    return this.#child.pid!;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/`;
  }

  /** What the server printed last, for an error message. */
  get log(): string {
    return this.#log.join("").slice(-2000).trim();
  }

  /** Waits for the "listening on 127.0.0.1:<port>" line. */
  async ready(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(this.#log.join(""));
      if (match !== null) {
        this.port = Number(match[1]);
        return;
      }
      if (this.#child.exitCode !== null || this.#child.signalCode !== null) {
        break;
      }
      await sleep(20);
    }
    throw new Error(`the server did not start:\n${this.log}`);
  }

  /** The CPU time the server has used, in clock ticks. */
  cpuTicks(): number {
    return cpuTicks(readFileSync(`/proc/${this.pid}/stat`, "utf8"));
  }

  /** A field of /proc/<pid>/status in KiB. */
  memoryKib(field: "VmRSS" | "VmHWM"): number {
    return statusKib(readFileSync(`/proc/${this.pid}/status`, "utf8"), field);
  }

  /** Stops the server by its pid: SIGTERM, then SIGKILL after 5 s. */
  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) {
      return;
    }
    this.#child.kill("SIGTERM");
    const stopped = await Promise.race([
      this.#exited.then(() => true),
      sleep(5000),
    ]);
    if (stopped !== true) {
      this.#child.kill("SIGKILL");
      await this.#exited;
    }
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------- HTTP

/** What a server answered: the status, the body and the session cookie it set. */
export interface Answer {
  status: number;
  body: string;
  cookie: string | null;
}

/** A GET with `cookie` (a `name=value` pair) or none. */
export async function get(url: string, cookie: string | null): Promise<Answer> {
  const response = await fetch(
    url,
    cookie === null ? {} : { headers: { cookie } },
  );
  const body = await response.text();
  // A browser keeps the last of several cookies of one name in a response.
  const setCookie = response.headers.getSetCookie().at(-1);
  return {
    status: response.status,
    body,
    cookie: setCookie?.split(";")[0] ?? null,
  };
}

/** Creates `count` sessions through the server and returns their cookies. */
export async function seed(url: string, count: number): Promise<string[]> {
  const cookies: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      const answer = await get(url, null);
      if (
        answer.status !== 200 || answer.body !== "new 1" ||
        answer.cookie === null
      ) {
        throw new Error(
          `seeding a session got ${answer.status} "${answer.body.slice(0, 80)}" ${
            answer.cookie === null ? "without" : "with"
          } a cookie, not 200 "new 1" with a cookie`,
        );
      }
      cookies.push(answer.cookie);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  return cookies;
}

/**
 * Confirms the server does what the workload measures, following the
 * cookies it sets as a browser would: a read finds the seeded counter and
 * leaves it, a write moves it by one, a new session is stored.
 *
 * @throws {Error} saying what the server answered instead.
 */
export async function check(
  url: string,
  workload: Workload | null,
  cookies: string[],
): Promise<void> {
  const expect = (answer: Answer, body: string, what: string) => {
    if (answer.status !== 200 || answer.body !== body) {
      throw new Error(
        `${what}: expected 200 "${body}", got ${answer.status} "${answer.body.slice(0, 80)}"`,
      );
    }
  };
  if (workload === null) {
    expect(await get(url, null), "ok", "GET /");
    return;
  }
  if (workload === "new") {
    const first = await get(url, null);
    expect(first, "new 1", "a request without a cookie");
    if (first.cookie === null) throw new Error("a new session got no cookie");
    expect(await get(url, first.cookie), "read 1", "the new session read back");
    return;
  }
  let cookie = cookies[cookies.length - 1]!;
  const first = await get(url, cookie);
  cookie = first.cookie ?? cookie;
  if (workload === "read") {
    expect(first, "read 1", "a seeded session read");
    expect(await get(url, cookie), "read 1", "the same session read again");
    return;
  }
  const count = Number(/^write (\d+)$/.exec(first.body)?.[1]);
  if (!(count >= 2)) expect(first, "write 2", "a seeded session written");
  expect(
    await get(url, cookie),
    `write ${count + 1}`,
    "the same session written again",
  );
}

/** The arguments a pair's server is started with: the spec's, then the workload. */
export function serverArgs(pair: Pair): string[] {
  return [
    ...pair.server.args,
    ...(pair.workload === null ? [] : [pair.workload]),
  ];
}

/**
 * Starts a pair's server, seeds it with `sessions` sessions, checks its
 * answers, and stops it: the `--quick` mode, timing nothing.
 *
 * @returns `null` when the server answered as its workload says, or why not.
 */
export async function smoke(pair: Pair, sessions = 3): Promise<string | null> {
  const server = new Server(pair.server, serverArgs(pair), false);
  try {
    await server.ready();
    const cookies = pair.workload === null ? [] : await seed(server.url, sessions);
    await check(server.url, pair.workload, cookies);
    return null;
  } catch (error) {
    const log = server.log;
    return `${(error as Error).message}${log === "" ? "" : `\n  server said:\n${log}`}`;
  } finally {
    await server.stop();
  }
}
