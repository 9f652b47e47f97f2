// The synchronous-call trade-off (issue 14, part 3): the p99 latency of a
// cheap endpoint that touches no session, served by the same process while
// wrk keeps FileStore saving on the disk, with FileStore's synchronous calls
// and with node:fs's promise-based ones.
//
//   deno run -A bench/event_loop_bench.ts [--root <dir>] [--duration <s>]
//     [--connections <n>] [--rounds <n>] [--runtime deno|bun]
//
// The server is pinned to core 0, wrk and the probe to core 1. The probe
// sends one GET at a time, 2 ms apart, and times each answer.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    root: { type: "string", default: tmpdir() },
    duration: { type: "string", default: "5" },
    connections: { type: "string", default: "16" },
    rounds: { type: "string", default: "2" },
    runtime: { type: "string", multiple: true },
  },
});
const duration = Number(values.duration);
const runtimes = values.runtime ?? ["deno", "bun"];
const BIN = join(import.meta.dirname!, "..", "node_modules", ".bin");
const SERVER = join(import.meta.dirname!, "servers", "event_loop.ts");
const scratch = mkdtempSync(join(tmpdir(), "event-loop-bench-"));
const script = join(scratch, "post.lua");
writeFileSync(script, 'wrk.method = "POST"\n');

interface Row {
  runtime: string;
  mode: string;
  load: string;
  writes: number;
  p50: number;
  p99: number;
  max: number;
}

async function start(runtime: string, mode: string) {
  const command = runtime === "deno"
    ? [
      join(BIN, "deno"),
      "run",
      "--allow-all",
      SERVER,
      mode,
      "--root",
      values.root!,
    ]
    : [join(BIN, "bun"), SERVER, mode, "--root", values.root!];
  const child = spawn("taskset", ["-c", "0", ...command], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let text = "";
    child.stdout!.on("data", (chunk) => {
      text += chunk;
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(text);
      if (match) resolve(Number(match[1]));
    });
    child.on(
      "exit",
      (code) => reject(new Error(`the server exited with ${code}`)),
    );
  });
  return { child, port };
}

async function probe(port: number, seconds: number): Promise<number[]> {
  const times: number[] = [];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    const begin = performance.now();
    const response = await fetch(`http://127.0.0.1:${port}/cheap`);
    await response.text();
    times.push(performance.now() - begin);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  return times.sort((a, b) => a - b);
}

function wrk(port: number, seconds: number): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn("taskset", [
      "-c",
      "1",
      "wrk",
      "-t1",
      `-c${values.connections}`,
      `-d${seconds}s`,
      "-s",
      script,
      `http://127.0.0.1:${port}/write`,
    ], { stdio: ["ignore", "pipe", "inherit"] });
    let text = "";
    child.stdout!.on("data", (chunk) => text += chunk);
    child.on(
      "exit",
      () => resolve(Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? 0)),
    );
  });
}

const at = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
const median = (list: number[]) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)]!;

const rows: Row[] = [];
spawnSync("taskset", ["-p", "-c", "1", String(process.pid)]);
for (let round = 0; round < Number(values.rounds); round++) {
  for (const runtime of runtimes) {
    const modes = round % 2 === 0 ? ["sync", "async"] : ["async", "sync"];
    for (const mode of modes) {
      const { child, port } = await start(runtime, mode);
      for (const load of ["idle", "writes"]) {
        const [writes, times] = await Promise.all([
          load === "writes" ? wrk(port, duration) : Promise.resolve(0),
          probe(port, duration),
        ]);
        const row = {
          runtime,
          mode,
          load,
          writes,
          p50: at(times, 0.5),
          p99: at(times, 0.99),
          max: times[times.length - 1]!,
        };
        rows.push(row);
        console.log(
          `round ${round + 1} ${runtime} ${mode} ${load}: ${
            writes.toFixed(0)
          } writes/s, cheap p50 ${row.p50.toFixed(2)} ms p99 ${row.p99.toFixed(2)} ms max ${
            row.max.toFixed(1)
          } ms (${times.length} probes)`,
        );
      }
      child.kill("SIGTERM");
      await new Promise((resolve) => child.on("exit", resolve));
    }
  }
}
rmSync(scratch, { recursive: true });

console.log(
  `\nMedians of ${values.rounds} rounds, files in ${values.root}, ${values.connections} writers:\n`,
);
console.log(
  "| runtime | calls | load | writes/s | cheap p50 ms | cheap p99 ms | cheap max ms |",
);
console.log("| --- | --- | --- | ---: | ---: | ---: | ---: |");
for (const runtime of runtimes) {
  for (const mode of ["sync", "async"]) {
    for (const load of ["idle", "writes"]) {
      const mine = rows.filter((r) => r.runtime === runtime && r.mode === mode && r.load === load);
      console.log(
        `| ${runtime} | ${mode} | ${load} | ${
          load === "idle" ? "" : median(mine.map((r) => r.writes)).toFixed(0)
        } | ${median(mine.map((r) => r.p50)).toFixed(2)} | ${
          median(mine.map((r) => r.p99)).toFixed(2)
        } | ${median(mine.map((r) => r.max)).toFixed(1)} |`,
      );
    }
  }
}
