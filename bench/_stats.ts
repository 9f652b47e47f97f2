// The arithmetic of the results: medians, CPU use from /proc, ratios.

/** The median of `values` (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) {
    throw new RangeError("Cannot take the median of no values");
  }
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/**
 * The CPU time a process has used, in clock ticks (user + system), from the
 * text of `/proc/<pid>/stat`. The command name in parentheses may hold
 * spaces and parentheses, so fields are counted after its last `)`.
 *
 * @throws {Error} when the text is not a stat line.
 */
export function cpuTicks(stat: string): number {
  const close = stat.lastIndexOf(")");
  // After ")": state (field 3) ... utime is field 14, stime field 15.
  const fields = stat.slice(close + 1).trim().split(/\s+/);
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (close === -1 || !Number.isFinite(utime) || !Number.isFinite(stime)) {
    throw new Error(
      `Cannot read CPU time from a /proc stat line: ${stat.slice(0, 80)}`,
    );
  }
  return utime + stime;
}

/** CPU use in percent of one core over `seconds` of wall time. */
export function cpuPercent(
  ticks: number,
  ticksPerSecond: number,
  seconds: number,
): number {
  return seconds > 0 ? (ticks / ticksPerSecond / seconds) * 100 : 0;
}

/** A value in kibibytes from the text of `/proc/<pid>/status` (`VmRSS`, `VmHWM`). */
export function statusKib(status: string, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
  if (match === null) throw new Error(`Cannot read ${field} from /proc status`);
  return Number(match[1]);
}

/**
 * How a row compares with another, each divided by the bare server of its
 * own runtime first: on one runtime it is the plain ratio of req/s, and
 * across runtimes it leaves out what the runtimes differ by.
 */
export function normalizedRatio(
  rowRps: number,
  rowBareRps: number,
  otherRps: number,
  otherBareRps: number,
): number {
  return (rowRps / rowBareRps) / (otherRps / otherBareRps);
}

/** A figure of one round. */
export interface RoundValue {
  round: number;
  value: number;
}

/**
 * The median, over the rounds both sides have, of `row`'s figure over
 * `base`'s: `null` when no round has both (or only zero bases). Each ratio
 * is taken within one round, so that load that came and went between rounds
 * moves both sides of it alike.
 */
export function medianRoundRatio(
  row: readonly RoundValue[],
  base: readonly RoundValue[],
): number | null {
  const ratios: number[] = [];
  for (const { round, value } of row) {
    const other = base.find((candidate) => candidate.round === round);
    if (other !== undefined && other.value > 0) {
      ratios.push(value / other.value);
    }
  }
  return ratios.length === 0 ? null : median(ratios);
}
