// wrk's command line and the report line that bench/wrk/report.lua prints.

/** One wrk run as its report line gives it; times in microseconds. */
export interface WrkResult {
  requests: number;
  durationUs: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
  errors: {
    connect: number;
    read: number;
    write: number;
    status: number;
    timeout: number;
  };
}

const FIELDS = [
  "requests",
  "duration_us",
  "p50_us",
  "p99_us",
  "max_us",
  "connect",
  "read",
  "write",
  "status",
  "timeout",
] as const;

/**
 * The result in wrk's output, from the `WRK_RESULT key=value ...` line.
 *
 * @throws {Error} when the line is missing or lacks a field, with wrk's
 * output in the message (it says why: a refused connection, a Lua error).
 */
export function parseWrk(output: string): WrkResult {
  const line = output.split("\n").find((text) => text.startsWith("WRK_RESULT "));
  if (line === undefined) {
    throw new Error(
      `Cannot read wrk's result as its output has no WRK_RESULT line:\n${output}`,
    );
  }
  const values = new Map<string, number>();
  for (const pair of line.slice("WRK_RESULT ".length).trim().split(/\s+/)) {
    const [key, value] = pair.split("=");
    if (key !== undefined && value !== undefined && /^\d+$/.test(value)) {
      values.set(key, Number(value));
    }
  }
  const field = (name: (typeof FIELDS)[number]): number => {
    const value = values.get(name);
    if (value === undefined) {
      throw new Error(
        `Cannot read wrk's result as '${name}' is missing from: ${line}`,
      );
    }
    return value;
  };
  return {
    requests: field("requests"),
    durationUs: field("duration_us"),
    p50Us: field("p50_us"),
    p99Us: field("p99_us"),
    maxUs: field("max_us"),
    errors: {
      connect: field("connect"),
      read: field("read"),
      write: field("write"),
      status: field("status"),
      timeout: field("timeout"),
    },
  };
}

/** Requests per second of one run. */
export function requestsPerSecond(result: WrkResult): number {
  return result.durationUs > 0 ? result.requests / (result.durationUs / 1e6) : 0;
}

/**
 * What went wrong in a run, or `null`: socket errors, timeouts and answers
 * other than 2xx/3xx make a run's figure meaningless.
 */
export function wrkProblem(result: WrkResult): string | null {
  const { connect, read, write, status, timeout } = result.errors;
  const problems: string[] = [];
  if (status > 0) problems.push(`${status} answers >= 400`);
  if (connect + read + write > 0) {
    problems.push(`${connect + read + write} socket errors`);
  }
  if (timeout > 0) problems.push(`${timeout} timeouts`);
  if (result.requests === 0) problems.push("no request answered");
  return problems.length === 0 ? null : problems.join(", ");
}

/** What wrk is told for one run. */
export interface WrkRun {
  url: string;
  seconds: number;
  connections: number;
  script: string;
  scriptArgs?: string[];
}

/**
 * wrk's arguments: one thread (wrk has one core to itself), a latency
 * timeout well above any answer a healthy server gives, the Lua script and
 * its arguments after `--`.
 */
export function wrkArgs(run: WrkRun): string[] {
  const args = [
    "-t1",
    `-c${run.connections}`,
    `-d${run.seconds}s`,
    "--timeout",
    "10s",
    "-s",
    run.script,
    run.url,
  ];
  if (run.scriptArgs !== undefined && run.scriptArgs.length > 0) {
    args.push("--", ...run.scriptArgs);
  }
  return args;
}
