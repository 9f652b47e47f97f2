import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  cpuPercent,
  cpuTicks,
  median,
  medianRoundRatio,
  normalizedRatio,
  statusKib,
} from "../../bench/_stats.ts";

describe("median()", () => {
  it("takes the middle value of an odd count, unsorted", () => {
    assert.equal(median([3, 1, 2]), 2);
  });

  it("takes the mean of the middle two of an even count", () => {
    assert.equal(median([4, 1, 3, 2]), 2.5);
  });

  it("refuses no values", () => {
    assert.throws(() => median([]), RangeError);
  });
});

describe("cpuTicks()", () => {
  it("adds user and system time from a /proc stat line", () => {
    const stat = "4242 (deno) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 56 0 0 20 0 8 0 99 0 0";
    assert.equal(cpuTicks(stat), 1290);
  });

  it("counts fields after the last parenthesis of a name holding spaces and parentheses", () => {
    const stat = "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 10 5 0 0 20 0 1 0 1 0 0";
    assert.equal(cpuTicks(stat), 15);
  });

  it("refuses text that is not a stat line", () => {
    assert.throws(() => cpuTicks("nonsense"), {
      message: /Cannot read CPU time/,
    });
  });
});

describe("cpuPercent()", () => {
  it("is the share of one core over the wall time", () => {
    assert.equal(cpuPercent(250, 100, 5), 50);
  });

  it("is 0 for no wall time", () => {
    assert.equal(cpuPercent(10, 100, 0), 0);
  });
});

describe("statusKib()", () => {
  const status = "Name:\tdeno\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t8\n";

  it("reads a field in kB", () => {
    assert.equal(statusKib(status, "VmRSS"), 102_400);
    assert.equal(statusKib(status, "VmHWM"), 204_800);
  });

  it("refuses a missing field", () => {
    assert.throws(() => statusKib(status, "VmSwap"), { message: /VmSwap/ });
  });
});

describe("normalizedRatio()", () => {
  it("is the plain ratio of req/s on one runtime", () => {
    assert.equal(normalizedRatio(30_000, 60_000, 3_000, 60_000), 10);
  });

  it("divides each side by its own runtime's bare server across runtimes", () => {
    // 50% of Deno's ceiling against 10% of Node's: 5x, whatever the ceilings.
    assert.equal(normalizedRatio(40_000, 80_000, 2_000, 20_000), 5);
  });
});

describe("medianRoundRatio()", () => {
  const rounds = (...values: number[]) => values.map((value, round) => ({ round, value }));

  it("takes the median of the ratios of each round, not the ratio of the medians", () => {
    // Ratios 0.5, 0.66, 0.514; the medians would give 33/60 = 0.55.
    assert.equal(
      medianRoundRatio(rounds(30, 33, 36), rounds(60, 50, 70)),
      36 / 70,
    );
  });

  it("matches rounds by number and skips a round either side lacks", () => {
    const base = [{ round: 2, value: 10 }, { round: 0, value: 10 }];
    assert.equal(medianRoundRatio(rounds(5, 999, 9), base), 0.7);
  });

  it("is null without a shared round or with only zero bases", () => {
    assert.equal(medianRoundRatio(rounds(1), [{ round: 3, value: 1 }]), null);
    assert.equal(medianRoundRatio(rounds(1), rounds(0)), null);
    assert.equal(medianRoundRatio([], rounds(1)), null);
  });
});
