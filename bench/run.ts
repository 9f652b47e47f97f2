// The benchmark suite: `npm run bench` (see USAGE in _plan.ts and the
// The benchmark suite: `npm run bench` (see USAGE in _plan.ts and
// docs/benchmarks.md). Runs on Deno.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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
  type Place,
  planPairs,
  type Runtime,
  schedule,
  USAGE,
  WORKLOADS,
} from "./_plan.ts";
import { BINARIES, check, seed, Server, serverArgs, smoke } from "./_harness.ts";
import { judgeLoad, type LoadVerdict } from "./_load.ts";
import { findPlaces } from "./_places.ts";
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
import { cpuPercent } from "./_stats.ts";
import { barChart, type BarGroup } from "./_svg.ts";
import { parseWrk, requestsPerSecond, wrkArgs, wrkProblem } from "./_wrk.ts";
import { ENGINES } from "./servers/engines.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BENCH = join(ROOT, "bench");
const CLIENT_CORE = "1";

// ---------------------------------------------------------------- setup

function install(withWrk: boolean): void {
  if (withWrk && spawnSync("sh", ["-c", "command -v wrk"]).status !== 0) {
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

/** One visit: a fresh server, seeded, checked, warmed up, then one measured run of `round`. */
async function measure(
  pair: Pair,
  round: number,
  options: Options,
  ticksPerSecond: number,
): Promise<PairResult> {
  const result: PairResult = {
    server: pair.server,
    workload: pair.workload,
    runs: [],
    failure: null,
  };
  const server = new Server(pair.server, serverArgs(pair));
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
    {
      const ticks = server.cpuTicks();
      const started = performance.now();
      const wrkResult = parseWrk(
        await wrk({ ...run, seconds: options.duration }),
      );
      const seconds = (performance.now() - started) / 1000;
      const problem = wrkProblem(wrkResult);
      if (problem !== null) throw new Error(`round ${round + 1}: ${problem}`);
      const usedTicks = server.cpuTicks() - ticks;
      result.runs.push({
        round,
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
    // A run with --no-install may measure no peer, and then has none installed.
    const version = existsSync(manifest)
      ? (JSON.parse(readFileSync(manifest, "utf8")) as { version: string })
        .version
      : "not installed";
    lines.push(`${name}\t${version}`);
  }
  return `${lines.join("\n")}\n`;
}

function cpuModel(): string {
  const match = /^model name\s*:\s*(.+)$/m.exec(
    readFileSync("/proc/cpuinfo", "utf8"),
  );
  return match?.[1]?.trim() ?? cpus()[0]?.model ?? "unknown CPU";
}

/** The runtimes' versions, as one line for the summary. */
function runtimeVersions(): string {
  const deno = /deno (\S+)/.exec(output(BINARIES.deno, ["--version"]))?.[1] ??
    "?";
  return `Deno ${deno}, Bun ${output(BINARIES.bun, ["--version"])}, Node ${
    output("node", ["--version"]).replace(/^v/, "")
  }`;
}

function machine(
  loadAtStart: number[],
  verdict: LoadVerdict,
  places: readonly Place[],
): string {
  return [
    `cpu\t${cpuModel()}`,
    `cores\t${cpus().length}`,
    `kernel\tLinux ${release()}`,
    `memory\t${(totalmem() / 2 ** 30).toFixed(0)} GiB`,
    `runtimes\t${runtimeVersions()}`,
    ...places.map((place) => `place ${place.name}\t${place.dir}`),
    `load average at start\t${loadAtStart.map((load) => load.toFixed(2)).join(" ")}`,
    `load per core at start\t${verdict.perCore.toFixed(2)}`,
    `load average at end\t${loadavg().map((load) => load.toFixed(2)).join(" ")}`,
    `published\t${verdict.publish ? (verdict.busy ? "yes, forced" : "yes") : "no"}`,
  ].join("\n") + "\n";
}

function resultsTsv(results: readonly PairResult[]): string {
  const lines = [
    "server_id\tserver\truntime\tworkload\tround\treq_per_s\tp99_ms\tcpu_percent\tcpu_us_per_req\tfailure",
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
    result.runs.forEach((run) =>
      lines.push([
        ...start,
        run.round + 1,
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
  verdict: LoadVerdict,
  places: readonly Place[],
  chartLink = `${directory}/ratios.svg`,
): string {
  const engines = Object.keys(ENGINES);
  const parts = [
    ...(verdict.busy ? [`**${verdict.text}**`] : []),
    `Measured on ${date} with \`npm run bench\`: ${options.runs} rounds, each measuring every server and workload once for ${options.duration} s after a ${options.warmup} s warm-up, ${options.connections} connections, ${options.sessions} sessions seeded; each server pinned to one core and wrk to the other. File sessions in ${
      places.map((place) => `${place.dir} (${place.name})`).join(" and ")
    }. Machine: ${cpuModel()}, ${cpus().length} cores, Linux ${release()}, ${runtimeVersions()}; ${
      verdict.text.replace(/^[^:]*: /, "")
    } Raw results, versions and machine: \`${directory}/\` in the repository.`,
    `![req/s as a share of the bare server of the same runtime](${chartLink})`,
    resultsTable(rows),
    failuresText(rows),
    `"req/s" is the median of the rounds and "min-max" their range; "p99 ms", "CPU" (the server's use of its core) and "CPU µs/req" (the server's CPU time per request, which other load on the machine disturbs less than req/s) are medians too. "vs bare" divides req/s by the bare server of the same runtime in the same round, and is the median of the rounds' ratios; "vs bare (CPU)" divides the bare server's CPU time per request by the row's, which is the same ratio when both servers use their whole core, and holds up better when other work on the machine takes part of it. "vs floor" and "vs floor (CPU)" do the same with the row's floor: a bare server doing the I/O the workload cannot avoid with no session logic (bench/servers/floor.ts), signed as the row is. ${
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

/** `--quick`: every planned server started, seeded and checked, nothing timed. */
async function quick(
  pairs: readonly Pair[],
  options: Options,
): Promise<number> {
  let failed = 0;
  for (const pair of pairs) {
    const failure = await smoke(pair, Math.min(options.sessions, 3));
    if (failure !== null) failed++;
    console.log(
      `${failure === null ? "ok    " : "FAILED"} ${pairLabel(pair)}${
        failure === null ? "" : `: ${failure}`
      }`,
    );
  }
  console.log(
    `${pairs.length - failed} of ${pairs.length} servers answered as their workload says`,
  );
  return failed === 0 ? 0 : 1;
}

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
  let places: Place[];
  try {
    places = findPlaces(options.roots);
  } catch (error) {
    console.error((error as Error).message);
    return 2;
  }
  const pairs = planPairs(
    allServers(Object.keys(ENGINES), places),
    options.only,
  );
  if (options.install) install(!options.quick);
  if (options.quick) return await quick(pairs, options);

  const loadAtStart = loadavg();
  const verdict = judgeLoad(
    loadAtStart[0]!,
    cpus().length,
    options.complete,
    options.force,
  );
  console.log(verdict.text);
  const versionsAtStart = versions();
  const ticksPerSecond = Number(output("getconf", ["CLK_TCK"])) || 100;
  const floodRuntimes = options.floodOn.filter((runtime) =>
    options.flood > 0 &&
    (options.only === null || options.only.test(`memory flood ${runtime}`))
  );
  const started = performance.now();
  // One result per pair, in the plan's order, collecting the run of every round.
  const results = new Map<Pair, PairResult>();
  const visits = schedule(pairs, options.runs);
  for (const [index, visit] of visits.entries()) {
    const elapsed = (performance.now() - started) / 1000;
    console.log(
      `[${index + 1}/${visits.length}, round ${visit.round + 1}, ${elapsed.toFixed(0)} s] ${
        pairLabel(visit.pair)
      }`,
    );
    const result = await measure(
      visit.pair,
      visit.round,
      options,
      ticksPerSecond,
    );
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
  const directory = verdict.publish
    ? join(BENCH, "results", date)
    : mkdtempSync(join(tmpdir(), `tessera-bench-${date}-`));
  mkdirSync(directory, { recursive: true });
  const shown = relative(ROOT, directory).startsWith("..") ? directory : relative(ROOT, directory);
  const measured = pairs.flatMap((pair) => results.get(pair) ?? []);
  const rows = buildRows(measured);
  const text = summary(rows, floods, options, date, shown, verdict, places);
  writeFileSync(join(directory, "results.tsv"), resultsTsv(measured));
  if (floods.length > 0) {
    writeFileSync(join(directory, "memory.tsv"), floodTsv(floods));
  }
  writeFileSync(join(directory, "table.md"), text);
  writeFileSync(join(directory, "ratios.svg"), chart(rows));
  writeFileSync(join(directory, "versions.tsv"), versionsAtStart);
  writeFileSync(
    join(directory, "machine.tsv"),
    machine(loadAtStart, verdict, places),
  );
  if (verdict.publish) {
    // docs/ is published; bench/results/ is not, so the page shows its own copy of the chart.
    const page = join(ROOT, "docs", "benchmarks.md");
    const docsText = summary(
      rows,
      floods,
      options,
      date,
      shown,
      verdict,
      places,
      "benchmarks.svg",
    );
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
      verdict.publish
        ? " and docs/benchmarks.md"
        : options.complete
        ? " (a busy machine: docs/ left as it was)"
        : " (a partial run: docs/ left as it was)"
    }.`,
  );
  return measured.some((result) => result.failure !== null) ||
      floods.some((flood) => flood.failure !== null)
    ? 1
    : 0;
}

if (import.meta.main) process.exit(await main(process.argv.slice(2)));
