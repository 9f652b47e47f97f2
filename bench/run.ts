// The benchmark suite: `npm run bench` (see USAGE in _plan.ts and the
// docs/benchmarks.md). Runs on Deno.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, tmpdir, totalmem } from "node:os";
import { join, relative } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import {
  allServers,
  type Options,
  type Pair,
  pairLabel,
  parseOptions,
  planPairs,
  type Runtime,
  schedule,
  type ServerSpec,
  USAGE,
  type Workload,
  WORKLOADS,
} from "./_plan.ts";
import {
  buildRows,
  checkTargets,
  failuresText,
  type FloodResult,
  floodTable,
  formatCount,
  type PairResult,
  peersText,
  replaceBlock,
  resultsTable,
  type Row,
  runtimeName,
  targetsText,
} from "./_report.ts";
import { cpuPercent, cpuTicks, statusKib } from "./_stats.ts";
import { barChart, type BarGroup } from "./_svg.ts";
import { parseWrk, requestsPerSecond, wrkArgs, wrkProblem } from "./_wrk.ts";
import { ENGINES } from "./servers/engines.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BENCH = join(ROOT, "bench");
const SERVER_CORE = "0";
const CLIENT_CORE = "1";
const BINARIES: Record<Runtime, string> = {
  deno: join(ROOT, "node_modules", ".bin", "deno"),
  bun: join(ROOT, "node_modules", ".bin", "bun"),
  node: "node",
};

// ---------------------------------------------------------------- setup

function install(): void {
  if (spawnSync("sh", ["-c", "command -v wrk"]).status !== 0) {
    console.log("Installing wrk from Debian's packages...");
    mustRun("apt-get", ["update", "-qq"]);
    mustRun("apt-get", ["install", "-y", "-qq", "wrk"]);
  }
  console.log("Installing the peer libraries (npm ci --prefix bench)...");
  mustRun("npm", [
    "ci",
    "--prefix",
    BENCH,
    "--no-audit",
    "--no-fund",
    "--loglevel=error",
  ]);
}

function mustRun(command: string, args: string[]): void {
  const result = spawnSync(command, args, { stdio: "inherit", cwd: ROOT });
  if (result.status !== 0) {
    throw new Error(
      `Cannot prepare the benchmark as '${command} ${args.join(" ")}' failed`,
    );
  }
}

function output(command: string, args: string[]): string {
  const result = spawnSync(command, args, { cwd: ROOT, encoding: "utf8" });
  return `${result.stdout ?? ""}${result.stderr ?? ""}`.trim();
}

// ---------------------------------------------------------------- servers

/** A server process pinned to its core, and the port it listens on. */
class Server {
  readonly #child: ChildProcess;
  readonly #log: string[] = [];
  #exited: Promise<void>;
  port = 0;

  constructor(spec: ServerSpec, args: string[]) {
    const file = join(BENCH, "servers", spec.file);
    const command = spec.runtime === "deno"
      ? [BINARIES.deno, "run", "-A", file]
      : [BINARIES[spec.runtime], file];
    this.#child = spawn("taskset", ["-c", SERVER_CORE, ...command, ...args], {
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------- HTTP

interface Answer {
  status: number;
  body: string;
  cookie: string | null;
}

async function get(url: string, cookie: string | null): Promise<Answer> {
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
async function seed(url: string, count: number): Promise<string[]> {
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
async function check(
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

// ---------------------------------------------------------------- wrk

interface WrkRunOptions {
  url: string;
  seconds: number;
  connections: number;
  script: string;
  scriptArgs: string[];
}

/** Runs wrk pinned to the client core; with `until`, ends it by SIGINT once that line appears. */
function wrk(run: WrkRunOptions, until?: string): Promise<string> {
  const args = wrkArgs({ ...run, script: join(BENCH, "wrk", run.script) });
  const child = spawn("taskset", ["-c", CLIENT_CORE, "wrk", ...args], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let text = "";
  for (const stream of [child.stdout, child.stderr]) {
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      const seen = until !== undefined && text.includes(until);
      text += chunk;
      if (!seen && until !== undefined && text.includes(until)) {
        child.kill("SIGINT");
      }
    });
  }
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", () => resolve(text));
  });
}

// ---------------------------------------------------------------- measuring

/** One visit: a fresh server, seeded, checked, warmed up, then `runs` measured runs. */
async function measure(
  pair: Pair,
  runs: number,
  options: Options,
  ticksPerSecond: number,
): Promise<PairResult> {
  const result: PairResult = {
    server: pair.server,
    workload: pair.workload,
    runs: [],
    failure: null,
  };
  const args = [
    ...pair.server.args,
    ...(pair.workload === null ? [] : [pair.workload]),
  ];
  const server = new Server(pair.server, args);
  const scratch = mkdtempSync(join(tmpdir(), "tessera-bench-cookies-"));
  try {
    await server.ready();
    const cookies = pair.workload === null ? [] : await seed(server.url, options.sessions);
    await check(server.url, pair.workload, cookies);
    const cookieFile = join(scratch, "cookies.txt");
    writeFileSync(cookieFile, `${cookies.join("\n")}\n`);
    const withCookies = pair.workload === "read" || pair.workload === "write";
    const run = {
      url: server.url,
      connections: options.connections,
      script: withCookies ? "cookies.lua" : "plain.lua",
      scriptArgs: withCookies ? [cookieFile] : [],
    };
    if (options.warmup > 0) await wrk({ ...run, seconds: options.warmup });
    for (let i = 0; i < runs; i++) {
      const ticks = server.cpuTicks();
      const started = performance.now();
      const wrkResult = parseWrk(
        await wrk({ ...run, seconds: options.duration }),
      );
      const seconds = (performance.now() - started) / 1000;
      const problem = wrkProblem(wrkResult);
      if (problem !== null) throw new Error(`run ${i + 1}: ${problem}`);
      const usedTicks = server.cpuTicks() - ticks;
      result.runs.push({
        rps: requestsPerSecond(wrkResult),
        p99Ms: wrkResult.p99Us / 1000,
        cpuPercent: cpuPercent(usedTicks, ticksPerSecond, seconds),
        cpuUsPerRequest: (usedTicks / ticksPerSecond) * 1e6 /
          wrkResult.requests,
      });
    }
  } catch (error) {
    result.failure = (error as Error).message.split("\n")[0]!;
    const log = server.log;
    console.log(
      `  FAILED: ${(error as Error).message}${log === "" ? "" : `\n  server said:\n${log}`}`,
    );
  } finally {
    await server.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
  return result;
}

async function flood(runtime: Runtime, options: Options): Promise<FloodResult> {
  const spec = allServers().find((server) => server.id === `tessera-memory-${runtime}`)!;
  const result: FloodResult = {
    runtime,
    steps: [],
    peakKib: 0,
    seconds: 0,
    failure: null,
  };
  const server = new Server(spec, [
    "memory",
    "new",
    String(options.floodEntries),
  ]);
  const started = performance.now();
  try {
    await server.ready();
    await check(server.url, "new", []);
    let answered = 0;
    while (answered < options.flood) {
      const step = Math.min(options.floodEntries, options.flood - answered);
      const text = await wrk({
        url: server.url,
        seconds: 600,
        connections: options.connections,
        script: "flood.lua",
        scriptArgs: [String(step)],
      }, "FLOOD_DONE");
      const wrkResult = parseWrk(text);
      const problem = wrkProblem(wrkResult);
      if (!text.includes("FLOOD_DONE")) {
        throw new Error(`the flood stopped early: ${text}`);
      }
      if (problem !== null) throw new Error(problem);
      answered += wrkResult.requests;
      result.steps.push({
        requests: answered,
        rssKib: server.memoryKib("VmRSS"),
      });
      console.log(
        `  ${formatCount(answered)} requests: RSS ${
          (result.steps.at(-1)!.rssKib / 1024).toFixed(0)
        } MiB`,
      );
    }
    result.peakKib = server.memoryKib("VmHWM");
  } catch (error) {
    result.failure = (error as Error).message.split("\n")[0]!;
    console.log(`  FAILED: ${(error as Error).message}\n${server.log}`);
  } finally {
    result.seconds = (performance.now() - started) / 1000;
    await server.stop();
  }
  return result;
}

// ---------------------------------------------------------------- results

function versions(): string {
  const bench = JSON.parse(
    readFileSync(join(BENCH, "package.json"), "utf8"),
  ) as {
    devDependencies: Record<string, string>;
  };
  const own = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
    version: string;
  };
  const commit = output("git", ["rev-parse", "--short", "HEAD"]);
  const dirty = output("git", [
    "status",
    "--porcelain",
    "--",
    "src",
    "mod.ts",
    "bench",
    ":(exclude)bench/results",
  ]) !==
    "";
  const lines = [
    `tessera\t${own.version} (${commit}${dirty ? " with uncommitted changes" : ""})`,
    `deno\t${output(BINARIES.deno, ["--version"]).split("\n")[0]}`,
    `bun\t${output(BINARIES.bun, ["--version"])}`,
    `node\t${output("node", ["--version"])}`,
    `wrk\t${output("wrk", ["-v"]).split("\n")[0]}`,
  ];
  for (const name of Object.keys(bench.devDependencies)) {
    const manifest = join(BENCH, "node_modules", name, "package.json");
    lines.push(
      `${name}\t${
        (JSON.parse(readFileSync(manifest, "utf8")) as { version: string })
          .version
      }`,
    );
  }
  return `${lines.join("\n")}\n`;
}

function cpuModel(): string {
  const match = /^model name\s*:\s*(.+)$/m.exec(
    readFileSync("/proc/cpuinfo", "utf8"),
  );
  return match?.[1]?.trim() ?? cpus()[0]?.model ?? "unknown CPU";
}

function machine(loadAtStart: number[]): string {
  return [
    `cpu\t${cpuModel()}`,
    `cores\t${cpus().length}`,
    `kernel\tLinux ${release()}`,
    `memory\t${(totalmem() / 2 ** 30).toFixed(0)} GiB`,
    `load average at start\t${loadAtStart.map((load) => load.toFixed(2)).join(" ")}`,
    `load average at end\t${loadavg().map((load) => load.toFixed(2)).join(" ")}`,
  ].join("\n") + "\n";
}

function resultsTsv(results: readonly PairResult[]): string {
  const lines = [
    "server_id\tserver\truntime\tworkload\trun\treq_per_s\tp99_ms\tcpu_percent\tcpu_us_per_req\tfailure",
  ];
  for (const result of results) {
    const start = [
      result.server.id,
      result.server.name,
      result.server.runtime,
      result.workload ?? "-",
    ];
    if (result.failure !== null) {
      lines.push([...start, "", "", "", "", "", result.failure].join("\t"));
    }
    result.runs.forEach((run, index) =>
      lines.push([
        ...start,
        index + 1,
        run.rps.toFixed(1),
        run.p99Ms.toFixed(3),
        run.cpuPercent.toFixed(1),
        run.cpuUsPerRequest.toFixed(1),
        "",
      ].join("\t"))
    );
  }
  return `${lines.join("\n")}\n`;
}

function floodTsv(floods: readonly FloodResult[]): string {
  const lines = ["runtime\trequests\trss_kib"];
  for (const flood of floods) {
    for (const step of flood.steps) {
      lines.push(`${flood.runtime}\t${step.requests}\t${step.rssKib}`);
    }
    lines.push(`${flood.runtime}\tpeak\t${flood.peakKib}`);
  }
  return `${lines.join("\n")}\n`;
}

function chart(rows: readonly Row[]): string {
  const label = (row: Row) =>
    `${row.result.server.name} (${runtimeName(row.result.server.runtime)})`;
  const bars = (filter: (row: Row) => boolean) =>
    rows.filter((row) => filter(row) && row.vsBare !== null).map((row) => ({
      label: label(row),
      value: row.vsBare!,
      highlight: row.result.server.kind === "tessera",
    }));
  const groups: BarGroup[] = [
    {
      title: "no session",
      bars: bars((row) => row.result.server.kind === "framework"),
    },
    ...WORKLOADS.map((workload) => ({
      title: workload,
      bars: bars((row) => row.result.workload === workload),
    })),
  ].filter((group) => group.bars.length > 0);
  return barChart(
    "req/s as a share of the bare server of the same runtime (higher is better)",
    groups,
  );
}

function summary(
  rows: readonly Row[],
  floods: readonly FloodResult[],
  options: Options,
  date: string,
  directory: string,
  loadAtStart: number[],
  chartLink = "ratios.svg",
): string {
  const engines = Object.keys(ENGINES);
  const parts = [
    `Measured on ${date} with \`npm run bench\`: ${options.runs} runs of ${options.duration} s after a ${options.warmup} s warm-up, ${options.connections} connections, ${options.sessions} sessions seeded; each server pinned to one core and wrk to the other. Machine: ${cpuModel()}, ${cpus().length} cores, Linux ${release()}; load average at the start ${
      loadAtStart[0]!.toFixed(2)
    }. Raw results, versions and machine: \`${directory}/\` in the repository.`,
    `![req/s as a share of the bare server of the same runtime](${chartLink})`,
    resultsTable(rows),
    failuresText(rows),
    `"req/s" is the median of the runs and "min-max" their range; "p99 ms", "CPU" (the server's use of its core) and "CPU µs/req" (the server's CPU time per request, which other load on the machine disturbs less than req/s) are medians too. "vs bare" divides req/s by the bare server of the same runtime in this run, whose runs are spread over the whole run (the first at its start, the last at its end); "vs bare (CPU)" divides the bare server's CPU time per request by the row's, which is the same ratio when both servers use their whole core, and holds up better when other work on the machine takes part of it. ${
      peersText(engines)
    }`,
    targetsText(checkTargets(rows)),
  ];
  if (floods.length > 0) {
    parts.push(
      `Memory: ${
        formatCount(options.flood)
      } requests without a cookie (one new session each) against \`MemoryStore({ maxEntries: ${
        formatCount(options.floodEntries)
      } })\`; RSS after the first ${
        formatCount(options.floodEntries)
      }, at the end, and the peak (VmHWM).`,
      floodTable(floods),
    );
  }
  return `${parts.filter((part) => part !== "").join("\n\n")}\n`;
}

// ---------------------------------------------------------------- main

async function main(args: string[]): Promise<number> {
  let options: Options | "help";
  try {
    options = parseOptions(args);
  } catch (error) {
    console.error((error as Error).message);
    return 2;
  }
  if (options === "help") {
    console.log(USAGE);
    return 0;
  }
  if (cpus().length < 2) {
    console.log("Warning: one core only; server and wrk share it.");
  }
  if (options.install) install();

  const loadAtStart = loadavg();
  const versionsAtStart = versions();
  const ticksPerSecond = Number(output("getconf", ["CLK_TCK"])) || 100;
  const pairs = planPairs(allServers(), options.only);
  const floodRuntimes = options.floodOn.filter((runtime) =>
    options.flood > 0 &&
    (options.only === null || options.only.test(`memory flood ${runtime}`))
  );
  const started = performance.now();
  // One result per pair, in the plan's order; a pair visited several times
  // (a bare server) collects the runs of every visit.
  const results = new Map<Pair, PairResult>();
  const visits = schedule(pairs, options.runs);
  for (const [index, visit] of visits.entries()) {
    const elapsed = (performance.now() - started) / 1000;
    console.log(
      `[${index + 1}/${visits.length}, ${elapsed.toFixed(0)} s] ${pairLabel(visit.pair)}`,
    );
    const result = await measure(visit.pair, visit.runs, options, ticksPerSecond);
    if (result.failure === null) {
      console.log(
        `  ${result.runs.map((run) => formatCount(run.rps)).join(", ")} req/s`,
      );
    }
    const earlier = results.get(visit.pair);
    if (earlier === undefined) results.set(visit.pair, result);
    else {
      earlier.runs.push(...result.runs);
      earlier.failure ??= result.failure;
    }
  }
  const floods: FloodResult[] = [];
  for (const runtime of floodRuntimes) {
    console.log(
      `[memory flood ${runtime}, ${((performance.now() - started) / 1000).toFixed(0)} s]`,
    );
    floods.push(await flood(runtime, options));
  }

  const date = new Date().toISOString().slice(0, 10);
  const directory = options.complete
    ? join(BENCH, "results", date)
    : mkdtempSync(join(tmpdir(), `tessera-bench-${date}-`));
  mkdirSync(directory, { recursive: true });
  const shown = relative(ROOT, directory).startsWith("..") ? directory : relative(ROOT, directory);
  const measured = pairs.flatMap((pair) => results.get(pair) ?? []);
  const rows = buildRows(measured);
  const text = summary(rows, floods, options, date, shown, loadAtStart);
  writeFileSync(join(directory, "results.tsv"), resultsTsv(measured));
  if (floods.length > 0) {
    writeFileSync(join(directory, "memory.tsv"), floodTsv(floods));
  }
  writeFileSync(join(directory, "table.md"), text);
  writeFileSync(join(directory, "ratios.svg"), chart(rows));
  writeFileSync(join(directory, "versions.tsv"), versionsAtStart);
  writeFileSync(join(directory, "machine.tsv"), machine(loadAtStart));
  if (options.complete) {
    // docs/ is published; bench/results/ is not, so the page shows its own copy of the chart.
    const page = join(ROOT, "docs", "benchmarks.md");
    const docsText = summary(rows, floods, options, date, shown, loadAtStart, "benchmarks.svg");
    writeFileSync(page, replaceBlock(readFileSync(page, "utf8"), docsText));
    writeFileSync(join(ROOT, "docs", "benchmarks.svg"), chart(rows));
    spawnSync(BINARIES.deno, ["fmt", "--quiet", page], {
      cwd: ROOT,
      stdio: "inherit",
    });
  }
  console.log(`\n${text}`);
  console.log(
    `Done in ${((performance.now() - started) / 1000).toFixed(0)} s; results in ${shown}${
      options.complete ? " and docs/benchmarks.md" : " (a partial run: docs/ left as it was)"
    }.`,
  );
  return measured.some((result) => result.failure !== null) ||
      floods.some((flood) => flood.failure !== null)
    ? 1
    : 0;
}

if (import.meta.main) process.exit(await main(process.argv.slice(2)));
