// The arithmetic of the clearsessions bench: the ratios of FileStore's sweep
// to its floor and to Django's way, and how its memory grows with the number
// of files, against the targets of issue 14.
import { median } from "./_stats.ts";

/** FileStore's protected sweep may take at most this times the unprotected one. */
export const FLOOR_TARGET = 1.3;
/** ... and at most this times Django's way (read and decode every file). */
export const DJANGO_TARGET = 0.5;
/**
 * The most the peak RSS may grow per 100,000 files: Bun keeps the list of
 * names (it has no streaming directory reader); on Deno it should not grow.
 */
export const GROWTH_TARGET_MB = 20;

/** One sweep's figures. */
export interface SweepResult {
  ms: number;
  peakRss: number;
  removed: number;
  kept: number;
}

/** The three sweeps of one round, on identical copies of the same files. */
export interface SweepRound {
  fileStore: SweepResult;
  floor: SweepResult;
  django: SweepResult;
}

/** One scenario's rounds, summed up. */
export interface SweepSummary {
  fileStoreMs: number;
  floorMs: number;
  djangoMs: number;
  /** FileStore's time over the floor's, the median of the rounds' ratios. */
  vsFloor: number;
  /** FileStore's time over Django's way, the median of the rounds' ratios. */
  vsDjango: number;
  fileStorePeakMb: number;
  meetsFloor: boolean;
  meetsDjango: boolean;
}

/**
 * Medians of the rounds: each ratio is taken within a round, whose three
 * sweeps ran back to back, so that load that came and went between rounds
 * moves both sides alike.
 *
 * @throws {RangeError} for no rounds.
 */
export function summarize(rounds: readonly SweepRound[]): SweepSummary {
  const vsFloor = median(
    rounds.map((round) => round.fileStore.ms / round.floor.ms),
  );
  const vsDjango = median(
    rounds.map((round) => round.fileStore.ms / round.django.ms),
  );
  return {
    fileStoreMs: median(rounds.map((round) => round.fileStore.ms)),
    floorMs: median(rounds.map((round) => round.floor.ms)),
    djangoMs: median(rounds.map((round) => round.django.ms)),
    vsFloor,
    vsDjango,
    fileStorePeakMb: Math.max(...rounds.map((round) => round.fileStore.peakRss)) / 1e6,
    meetsFloor: vsFloor <= FLOOR_TARGET,
    meetsDjango: vsDjango <= DJANGO_TARGET,
  };
}

/**
 * How much the peak RSS grows per 100,000 files, from the peaks at two or
 * more numbers of files (a least-squares slope); `null` with fewer than two
 * distinct numbers.
 */
export function growthPer100k(
  points: readonly { files: number; peakMb: number }[],
): number | null {
  const sizes = new Set(points.map((point) => point.files));
  if (sizes.size < 2) return null;
  const meanFiles = points.reduce((sum, point) => sum + point.files, 0) /
    points.length;
  const meanMb = points.reduce((sum, point) => sum + point.peakMb, 0) /
    points.length;
  let covariance = 0;
  let variance = 0;
  for (const point of points) {
    covariance += (point.files - meanFiles) * (point.peakMb - meanMb);
    variance += (point.files - meanFiles) ** 2;
  }
  return (covariance / variance) * 100_000;
}

/**
 * What counts as not growing: the peak RSS of one process moves by about
 * this much between runs, with the garbage collector's timing.
 */
export const GROWTH_NOISE_MB = 2;

/** Whether a growth per 100,000 files meets the target: Bun's list of names, or flat. */
export function meetsGrowth(growthMb: number, bun: boolean): boolean {
  return growthMb <= (bun ? GROWTH_TARGET_MB : GROWTH_NOISE_MB);
}
