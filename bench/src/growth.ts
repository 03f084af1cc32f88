/**
 * Is a series of samples (RSS, fds) growing in a sustained way? Used by the soak to fail on a
 * leak without failing on warm-up (JIT, pools, caches) or on one spike.
 *
 * The first `warmupFraction` of the samples is ignored. Of the rest, the first and the last
 * `windowFraction` are compared by their medians: growth is "sustained" when the last window's
 * median exceeds the first's by more than `maxAbsolute` AND by more than `maxRatio` of it, AND
 * the last window never dips to the first window's median (a spike that went away is not a leak).
 */

import { median } from './report.js';

export interface GrowthLimits {
  /** Fraction of the samples skipped at the start (0–1). */
  readonly warmupFraction: number;
  /** Fraction of the samples in each compared window (0–0.5). */
  readonly windowFraction: number;
  /** Largest tolerated growth in the series' unit (KiB, fds). */
  readonly maxAbsolute: number;
  /** Largest tolerated growth relative to the first window (0.25 = +25 %). */
  readonly maxRatio: number;
}

export interface Growth {
  /** Median of the window after warm-up. */
  readonly first: number;
  /** Median of the last window. */
  readonly last: number;
  readonly growth: number;
  /** growth / first (0 when first is 0 and nothing grew). */
  readonly ratio: number;
  readonly sustained: boolean;
}

/** Fewest samples that let warm-up and two windows each hold at least one. */
export const MIN_SAMPLES = 5;

export function detectGrowth(samples: readonly number[], limits: GrowthLimits): Growth | undefined {
  if (samples.length < MIN_SAMPLES) return undefined;
  const rest = samples.slice(Math.floor(samples.length * limits.warmupFraction));
  const size = Math.max(1, Math.floor(rest.length * limits.windowFraction));
  const firstWindow = rest.slice(0, size);
  const lastWindow = rest.slice(rest.length - size);
  const first = median(firstWindow);
  const last = median(lastWindow);
  const growth = last - first;
  const ratio = first > 0 ? growth / first : growth > 0 ? Number.POSITIVE_INFINITY : 0;
  const sustained =
    growth > limits.maxAbsolute && ratio > limits.maxRatio && Math.min(...lastWindow) > first;
  return { first, last, growth, ratio, sustained };
}
