// The results as rows, the markdown table, the targets and the README block.
import {
  engineClass,
  FLOOR_TARGETS,
  PEER_TARGET,
  PEERS,
  type Runtime,
  type ServerSpec,
  TARGETS,
  type Workload,
  WORKLOADS,
} from "./_plan.ts";
import { median, medianRoundRatio, normalizedRatio } from "./_stats.ts";

/** One measured run. */
export interface RunResult {
  /** The round it belongs to: ratios are taken between runs of one round. */
  round: number;
  rps: number;
  p99Ms: number;
  cpuPercent: number;
  /** The server's CPU time per answered request, in microseconds. */
  cpuUsPerRequest: number;
}

/** All runs of one server and workload, or why it was not measured. */
export interface PairResult {
  server: ServerSpec;
  workload: Workload | null;
  runs: RunResult[];
  /** Why the pair failed (its check, its start, a run's errors), or `null`. */
  failure: string | null;
}

/** A table row: the medians and the ratios. */
export interface Row {
  result: PairResult;
  rps: number;
  minRps: number;
  maxRps: number;
  p99Ms: number;
  cpuPercent: number;
  cpuUsPerRequest: number;
  /**
   * req/s over the bare server of the same runtime, the median of the
   * rounds' ratios; `null` when either is missing.
   */
  vsBare: number | null;
  /**
   * The bare server's CPU time per request over this row's (median of the
   * rounds): the same ratio when both servers use their core fully, and
   * steadier when other work on the machine takes part of it.
   */
  cpuVsBare: number | null;
  /** For Tessera: its floor's row (see FLOORS), when measured. */
  floor: Row | null;
  /** req/s over the floor's, the median of the rounds' ratios. */
  vsFloor: number | null;
  /** The floor's CPU time per request over this row's, the median of the rounds'. */
  cpuVsFloor: number | null;
  /** For Tessera: the ratio to its peer (see PEERS), with the peer row. */
  vsPeer: { ratio: number; peer: Row } | null;
}

const RUNTIME_NAMES: Record<Runtime, string> = {
  deno: "Deno",
  bun: "Bun",
  node: "Node",
};

/** Rows in the table's order: the servers without sessions, then each workload. */
export function buildRows(results: readonly PairResult[]): Row[] {
  const rows = results.map((result): Row => {
    const ok = result.failure === null && result.runs.length > 0;
    const rpss = result.runs.map((run) => run.rps);
    return {
      result,
      rps: ok ? median(rpss) : 0,
      minRps: ok ? Math.min(...rpss) : 0,
      maxRps: ok ? Math.max(...rpss) : 0,
      p99Ms: ok ? median(result.runs.map((run) => run.p99Ms)) : 0,
      cpuPercent: ok ? median(result.runs.map((run) => run.cpuPercent)) : 0,
      cpuUsPerRequest: ok ? median(result.runs.map((run) => run.cpuUsPerRequest)) : 0,
      vsBare: null,
      cpuVsBare: null,
      floor: null,
      vsFloor: null,
      cpuVsFloor: null,
      vsPeer: null,
    };
  });
  const measured = (row: Row | undefined): row is Row => row !== undefined && row.rps > 0;
  const bareOf = (runtime: Runtime) =>
    rows.find((row) => row.result.server.kind === "bare" && row.result.server.runtime === runtime);
  const rpsOf = (row: Row) => row.result.runs.map((run) => ({ round: run.round, value: run.rps }));
  // CPU time per request inverted, so that a ratio of these is base / row.
  const speedOf = (row: Row) =>
    row.result.runs.filter((run) => run.cpuUsPerRequest > 0).map((run) => ({
      round: run.round,
      value: 1 / run.cpuUsPerRequest,
    }));
  for (const row of rows) {
    const bare = bareOf(row.result.server.runtime);
    if (measured(row) && measured(bare)) {
      row.vsBare = medianRoundRatio(rpsOf(row), rpsOf(bare));
      row.cpuVsBare = medianRoundRatio(speedOf(row), speedOf(bare));
    }
    const floorId = row.result.server.floor;
    const floor = floorId === undefined
      ? undefined
      : rows.find((other) =>
        other.result.server.id === floorId &&
        other.result.workload === row.result.workload
      );
    if (measured(row) && measured(floor)) {
      row.floor = floor;
      row.vsFloor = medianRoundRatio(rpsOf(row), rpsOf(floor));
      row.cpuVsFloor = medianRoundRatio(speedOf(row), speedOf(floor));
    }
  }
  for (const row of rows) {
    const { server, workload } = row.result;
    const peerName = server.engine === undefined ? undefined : PEERS[server.engine];
    if (server.kind !== "tessera" || peerName === undefined || !measured(row)) {
      continue;
    }
    const candidates = rows.filter((other) =>
      other.result.server.name === peerName &&
      other.result.workload === workload
    );
    const peer = candidates.find((other) => other.result.server.runtime === server.runtime) ??
      candidates[0];
    const rowBare = bareOf(server.runtime);
    const peerBare = peer === undefined ? undefined : bareOf(peer.result.server.runtime);
    if (measured(peer) && measured(rowBare) && measured(peerBare)) {
      row.vsPeer = {
        ratio: normalizedRatio(row.rps, rowBare.rps, peer.rps, peerBare.rps),
        peer,
      };
    }
  }
  const order = (row: Row): number =>
    row.result.workload === null ? -1 : WORKLOADS.indexOf(row.result.workload);
  return rows
    .map((row, index) => ({ row, index }))
    .sort((a, b) => order(a.row) - order(b.row) || a.index - b.index)
    .map(({ row }) => row);
}

/** A whole number with thin thousands separators: `12,345`. */
export function formatCount(value: number): string {
  return Math.round(value).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** A ratio with two significant figures at least: `0.62`, `12.3`. */
export function formatRatio(value: number): string {
  if (value >= 100) return value.toFixed(0);
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/** The runtime as the table names it. */
export function runtimeName(runtime: Runtime): string {
  return RUNTIME_NAMES[runtime];
}

/**
 * A markdown table with every column padded to its widest cell, as
 * `deno fmt` writes tables.
 */
export function markdownTable(
  header: string[],
  body: string[][],
  right: boolean[],
): string {
  const widths = header.map((cell, column) =>
    Math.max(3, cell.length, ...body.map((line) => (line[column] ?? "").length))
  );
  const pad = (cell: string, column: number) =>
    right[column] ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!);
  const line = (cells: string[]) => `| ${cells.map(pad).join(" | ")} |`;
  const rule = widths.map((width, column) =>
    right[column] ? `${"-".repeat(width - 1)}:` : "-".repeat(width)
  );
  return [line(header), `| ${rule.join(" | ")} |`, ...body.map(line)].join(
    "\n",
  );
}

/** The results table. */
export function resultsTable(rows: readonly Row[]): string {
  const header = [
    "server",
    "runtime",
    "workload",
    "req/s",
    "min-max",
    "p99 ms",
    "CPU",
    "CPU µs/req",
    "vs bare",
    "vs bare (CPU)",
    "vs floor",
    "vs floor (CPU)",
    "vs peer",
  ];
  const body = rows.map((row) => {
    const { server, workload } = row.result;
    const start = [server.name, runtimeName(server.runtime), workload ?? "-"];
    if (row.result.failure !== null || row.rps === 0) {
      return [...start, "failed", "", "", "", "", "", "", "", "", ""];
    }
    const ratio = (value: number | null) => value === null ? "" : formatRatio(value);
    return [
      ...start,
      formatCount(row.rps),
      `${formatCount(row.minRps)}-${formatCount(row.maxRps)}`,
      row.p99Ms.toFixed(2),
      `${row.cpuPercent.toFixed(0)}%`,
      row.cpuUsPerRequest.toFixed(0),
      ratio(row.vsBare),
      ratio(row.cpuVsBare),
      ratio(row.vsFloor),
      ratio(row.cpuVsFloor),
      row.vsPeer === null ? "" : `${formatRatio(row.vsPeer.ratio)}x`,
    ];
  });
  // The server, the runtime and the workload are text; the rest are figures.
  return markdownTable(header, body, header.map((_, column) => column >= 3));
}

/** One target and whether the run met it. */
export interface TargetCheck {
  row: Row;
  what: string;
  goal: number;
  actual: number | null;
  met: boolean;
}

/** Every target that applies to the measured Tessera rows. */
export function checkTargets(rows: readonly Row[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  for (const row of rows) {
    const { server, workload } = row.result;
    if (
      server.kind !== "tessera" || server.engine === undefined ||
      workload === null
    ) continue;
    const floorGoal = FLOOR_TARGETS[server.engine]?.[workload];
    if (floorGoal !== undefined && server.floor !== undefined) {
      checks.push({
        row,
        what: "vs floor",
        goal: floorGoal,
        actual: row.vsFloor,
        met: row.vsFloor !== null && row.vsFloor >= floorGoal,
      });
    }
    // The older targets, against the bare server and the peers, are for
    // the recommended configuration only.
    if (server.signed === false) continue;
    const goal = TARGETS[server.engine]?.[workload];
    if (goal !== undefined) {
      checks.push({
        row,
        what: "vs bare",
        goal,
        actual: row.vsBare,
        met: row.vsBare !== null && row.vsBare >= goal,
      });
    }
    // A peer that was not part of the run (--only) is not a missed target;
    // one that failed is.
    const peerName = PEERS[server.engine];
    if (
      peerName !== undefined &&
      rows.some((other) => other.result.server.name === peerName)
    ) {
      const actual = row.vsPeer?.ratio ?? null;
      checks.push({
        row,
        what: "vs peer",
        goal: PEER_TARGET,
        actual,
        met: actual !== null && actual >= PEER_TARGET,
      });
    }
  }
  return checks;
}

/** The targets as a list: met ones first line, missed ones with their figure. */
export function targetsText(checks: readonly TargetCheck[]): string {
  const describe = (check: TargetCheck) => {
    const { server, workload } = check.row.result;
    const goal = check.what === "vs peer" ? `>= ${check.goal}x` : `>= ${check.goal}`;
    const actual = check.actual === null ? "not measured" : formatRatio(check.actual);
    return `${server.name} (${
      runtimeName(server.runtime)
    }) ${workload} ${check.what} ${goal}: ${actual}`;
  };
  const met = checks.filter((check) => check.met);
  const missed = checks.filter((check) => !check.met);
  const lines = [`Targets met: ${met.length} of ${checks.length}.`];
  if (missed.length > 0) {
    lines.push(
      "",
      "Missed:",
      "",
      ...missed.map((check) => `- ${describe(check)}`),
    );
  }
  return lines.join("\n");
}

/** The pairs that failed and why, as a list; empty when none did. */
export function failuresText(rows: readonly Row[]): string {
  const failed = rows.filter((row) => row.result.failure !== null);
  if (failed.length === 0) return "";
  return [
    "Failed, so not measured:",
    "",
    ...failed.map(({ result }) =>
      `- ${result.server.name} (${runtimeName(result.server.runtime)}) ${
        result.workload ?? "-"
      }: ${result.failure}`
    ),
  ].join("\n");
}

/** Which peer each Tessera engine is compared with, as a sentence. */
export function peersText(engines: readonly string[]): string {
  const pairs = engines
    .filter((engine) => PEERS[engine] !== undefined)
    .map((engine) => `${engineClass(engine)} with ${PEERS[engine]}`);
  return `"vs peer" compares ${pairs.join(", ")}; each figure is first divided by the bare ` +
    `server of its own runtime, so a peer on another runtime (session-file-store runs on ` +
    `Node) is compared without the difference between the runtimes.`;
}

/** The memory flood of one runtime. */
export interface FloodResult {
  runtime: Runtime;
  /** RSS in KiB after each step, with the requests answered so far. */
  steps: { requests: number; rssKib: number }[];
  peakKib: number;
  seconds: number;
  failure: string | null;
}

/**
 * How far the RSS at the end may rise above the highest RSS of the flood's
 * first half and still count as flat: garbage collection moves RSS up and
 * down by this much, while a store that keeps every session grows with the
 * number of requests.
 */
export const FLAT_TOLERANCE = 0.25;

/**
 * Whether the RSS of a flood stayed flat: the RSS at the end is within
 * FLAT_TOLERANCE of the highest RSS of the first half of the steps.
 */
export function isBounded(steps: readonly { rssKib: number }[]): boolean {
  const last = steps[steps.length - 1];
  if (last === undefined) return false;
  const firstHalf = steps.slice(0, Math.max(1, Math.ceil(steps.length / 2)));
  return last.rssKib <=
    Math.max(...firstHalf.map((step) => step.rssKib)) * (1 + FLAT_TOLERANCE);
}

/** The flood as a table: RSS after the first step, at the end, the peak, and the verdict. */
export function floodTable(floods: readonly FloodResult[]): string {
  const mib = (kib: number) => `${(kib / 1024).toFixed(0)} MiB`;
  const body = floods.map((flood) => {
    const first = flood.steps[0];
    const last = flood.steps[flood.steps.length - 1];
    if (flood.failure !== null || first === undefined || last === undefined) {
      return [runtimeName(flood.runtime), "failed", "", "", "", "", ""];
    }
    const growth = last.rssKib / first.rssKib - 1;
    return [
      runtimeName(flood.runtime),
      `${mib(first.rssKib)} (${formatCount(first.requests)})`,
      `${mib(last.rssKib)} (${formatCount(last.requests)})`,
      mib(flood.peakKib),
      `${growth >= 0 ? "+" : ""}${(growth * 100).toFixed(0)}%`,
      `${flood.seconds.toFixed(0)} s`,
      isBounded(flood.steps) ? "bounded" : "growing",
    ];
  });
  return markdownTable(
    [
      "runtime",
      "RSS after first step",
      "RSS at the end",
      "peak RSS",
      "growth",
      "time",
      "verdict",
    ],
    body,
    [false, true, true, true, true, true, false],
  );
}

/** Replaces what stands between `<!-- bench:start -->` and `<!-- bench:end -->`. */
export function replaceBlock(text: string, block: string): string {
  const start = "<!-- bench:start -->";
  const end = "<!-- bench:end -->";
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  if (from === -1 || to === -1 || to < from) {
    throw new Error(
      `Cannot update the README as it lacks the ${start} and ${end} markers`,
    );
  }
  return `${text.slice(0, from + start.length)}\n${block.trim()}\n${text.slice(to)}`;
}
