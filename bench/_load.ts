// Whether the machine was quiet enough for a run's figures to be published.
//
// A server and wrk each want a core to themselves: other work on the machine
// takes from both, unevenly, and a ratio taken on a busy machine says more
// about that work than about the servers. The published benchmark of
// 2026-11-23 started at a load average of 3.11 on 2 cores, and its bare Deno
// server ranged from 31,640 to 123,997 req/s.

/** The most load average per core at the start of a run whose figures are published. */
export const BUSY_LOAD_PER_CORE = 0.5;

/** What a run may do with its figures, given the machine's load at its start. */
export interface LoadVerdict {
  /** The 1-minute load average over the number of cores. */
  perCore: number;
  /** Above BUSY_LOAD_PER_CORE. */
  busy: boolean;
  /** Whether the figures may go to bench/results/ and the README. */
  publish: boolean;
  /** A sentence to print and, for a published busy run, to show beside the figures. */
  text: string;
}

/**
 * The verdict on a run that started at the 1-minute load average `load` on
 * `cores` cores: a complete run publishes its figures when the machine was
 * quiet, or when `force` is given, and then says so beside them.
 */
export function judgeLoad(
  load: number,
  cores: number,
  complete: boolean,
  force: boolean,
): LoadVerdict {
  const perCore = load / Math.max(1, cores);
  const busy = perCore > BUSY_LOAD_PER_CORE;
  const publish = complete && (!busy || force);
  const measured = `load average ${load.toFixed(2)} at the start on ${cores} ${
    cores === 1 ? "core" : "cores"
  } (${perCore.toFixed(2)} per core)`;
  let text: string;
  if (!busy) text = `Quiet machine: ${measured}.`;
  else if (publish) {
    text = `Forced run on a busy machine: ${measured}, above ${BUSY_LOAD_PER_CORE} per core; ` +
      "other work took part of the cores, so these figures understate the servers.";
  } else {
    text = `Busy machine: ${measured}, above ${BUSY_LOAD_PER_CORE} per core${
      complete ? "; results not published (pass --force to publish them anyway)" : ""
    }.`;
  }
  return { perCore, busy, publish, text };
}
