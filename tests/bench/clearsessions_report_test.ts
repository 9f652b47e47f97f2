import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  DJANGO_TARGET,
  FLOOR_TARGET,
  GROWTH_TARGET_MB,
  growthPer100k,
  meetsGrowth,
  summarize,
  type SweepResult,
} from "../../bench/_clearsessions_report.ts";

const sweep = (ms: number, peakMb = 50): SweepResult => ({
  ms,
  peakRss: peakMb * 1e6,
  removed: 50_000,
  kept: 50_000,
});

describe("summarize()", () => {
  it("takes the median of each round's ratio, not the ratio of the medians", () => {
    const summary = summarize([
      { fileStore: sweep(1200), floor: sweep(1000), django: sweep(4000) },
      { fileStore: sweep(3000), floor: sweep(2000), django: sweep(5000) },
      { fileStore: sweep(1100), floor: sweep(1000), django: sweep(3000, 70) },
    ]);
    assert.deepEqual([summary.fileStoreMs, summary.floorMs, summary.djangoMs], [
      1200,
      1000,
      4000,
    ]);
    // Rounds: 1.2, 1.5, 1.1 against the floor; 0.3, 0.6, 0.367 against Django.
    assert.equal(summary.vsFloor, 1.2);
    assert.equal(summary.vsDjango, 1100 / 3000);
    assert.equal(summary.fileStorePeakMb, 50);
    assert.deepEqual([summary.meetsFloor, summary.meetsDjango], [true, true]);
  });

  it("holds the sweep to 1.3x its floor and 0.5x Django's way, limits included", () => {
    assert.deepEqual([FLOOR_TARGET, DJANGO_TARGET], [1.3, 0.5]);
    const at = summarize([{
      fileStore: sweep(1300),
      floor: sweep(1000),
      django: sweep(2600),
    }]);
    assert.deepEqual([at.meetsFloor, at.meetsDjango], [true, true]);
    const over = summarize([{
      fileStore: sweep(1400),
      floor: sweep(1000),
      django: sweep(2000),
    }]);
    assert.deepEqual([over.meetsFloor, over.meetsDjango], [false, false]);
  });

  it("refuses no rounds", () => {
    assert.throws(() => summarize([]), RangeError);
  });
});

describe("growthPer100k() and meetsGrowth()", () => {
  it("fits the slope of the peak RSS over the files, per 100,000", () => {
    const growth = growthPer100k([
      { files: 25_000, peakMb: 60 },
      { files: 50_000, peakMb: 64 },
      { files: 100_000, peakMb: 72 },
    ]);
    assert.ok(Math.abs(growth! - 16) < 1e-9, String(growth));
  });

  it("needs two numbers of files", () => {
    assert.equal(
      growthPer100k([{ files: 100_000, peakMb: 60 }, {
        files: 100_000,
        peakMb: 70,
      }]),
      null,
    );
    assert.equal(growthPer100k([]), null);
  });

  it("allows Bun its list of names and Deno only the collector's noise", () => {
    assert.equal(GROWTH_TARGET_MB, 20);
    assert.equal(meetsGrowth(18, true), true);
    assert.equal(meetsGrowth(21, true), false);
    assert.equal(meetsGrowth(1.5, false), true);
    assert.equal(meetsGrowth(18, false), false);
  });
});
