/**
 * Is a series flat over a soak? A least-squares line through the samples after the warm-up, its slope per
 * hour with the slope's standard error, judged against a threshold relative to the series' mean. Pure, so
 * the rule is tested on made-up series.
 *
 * The rule is an equivalence test, not a bare comparison: a series is flat when even the upper end of its
 * slope's ≈95% interval (slope + 2 standard errors) is within the threshold, rising when even the lower end
 * (slope − 2 SE) is beyond it, falling when even the upper end is below minus the threshold (not a leak,
 * but not a settled run either: the warm-up was too short, or the load changed), and inconclusive in
 * between: a noisy run cannot tell. Fewer than `MIN_JUDGED_SPAN_S` seconds of samples are too short to judge. The standard
 * error assumes independent residuals; consecutive samples of a GC'd heap or a tail latency are correlated,
 * so it is optimistic, and a verdict near the boundary deserves a longer run.
 */

export type TrendVerdict = 'flat' | 'rising' | 'falling' | 'inconclusive' | 'too short' | 'no data';

/**
 * The shortest span of samples (after the warm-up) a slope per hour is judged on: 5 minutes. A line through
 * 30 s of samples extrapolated to an hour says more about the noise of those 30 s (a collection, a heap
 * resize) than about a trend.
 */
export const MIN_JUDGED_SPAN_S = 300;

export interface TrendRule {
  /** Flat: slope per hour within this share of the series' mean (after the warm-up). */
  readonly maxRelativeSlopePerHour: number;
  /** Why this threshold, for the report. */
  readonly why: string;
}

/**
 * Memory (RSS, heap): 1% of the mean per hour. A leak of 1%/h grows a daemon by a quarter a day, which
 * matters within a deploy cycle; it is also about the smallest slope a 30-minute run on a shared 2-core
 * machine resolves (RSS noise of a few MiB as V8 resizes its heap and collections come and go gives a
 * standard error of 1–2 MiB/h on ~200 MiB over 180 samples).
 */
export const MEMORY_RULE: TrendRule = {
  maxRelativeSlopePerHour: 0.01,
  why: 'memory: at most 1% of its mean per hour (a leak that size grows the process by a quarter a day; a 30-minute run cannot resolve much less)',
};

/**
 * Latency and event-loop delay: 10% of the mean per hour. Tail statistics per 10-s window are noisy (a
 * neighbour's burst of work on the shared cores moves a window's p99 by tens of percent); a degradation
 * that matters, such as a structure scanned per event that keeps growing, doubles the figure within hours.
 */
export const LATENCY_RULE: TrendRule = {
  maxRelativeSlopePerHour: 0.1,
  why: 'latency and event-loop delay: at most 10% of the mean per hour (per-window p99s are noisy; a degradation that matters doubles them within hours)',
};

export interface Trend {
  readonly unit: string;
  /** Points after the warm-up that the line was fitted to. */
  readonly points: number;
  readonly mean: number;
  readonly slopePerHour: number;
  /** Standard error of the slope (same unit per hour). */
  readonly slopeStdErrPerHour: number;
  /** slopePerHour / mean. */
  readonly relativeSlopePerHour: number;
  /** The threshold, in the series' unit per hour: rule × mean. */
  readonly thresholdPerHour: number;
  readonly verdict: TrendVerdict;
  readonly why: string;
}

/** Least-squares fit of y over x: slope, intercept and the slope's standard error. */
export function fitLine(points: ReadonlyArray<readonly [number, number]>): { slope: number; intercept: number; slopeStdErr: number } {
  const n = points.length;
  if (n < 2) return { slope: 0, intercept: points[0]?.[1] ?? 0, slopeStdErr: Infinity };
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const [x, y] of points) {
    sxy += (x - mx) * (y - my);
    sxx += (x - mx) ** 2;
  }
  if (sxx === 0) return { slope: 0, intercept: my, slopeStdErr: Infinity };
  const slope = sxy / sxx;
  const intercept = my - slope * mx;
  const ssr = points.reduce((s, [x, y]) => s + (y - (intercept + slope * x)) ** 2, 0);
  const slopeStdErr = n > 2 ? Math.sqrt(ssr / (n - 2) / sxx) : Infinity;
  return { slope, intercept, slopeStdErr };
}

const round = (x: number, digits: number): number => (Number.isFinite(x) ? Number(x.toPrecision(digits)) : x);

/**
 * The trend of `points` ([seconds since the load started, value]) from `fromS` on, judged by `rule`.
 * `unit` names the value's unit (the slope is that per hour).
 */
export function trendOf(points: ReadonlyArray<readonly [number, number]>, fromS: number, unit: string, rule: TrendRule): Trend {
  const used = points.filter(([t, v]) => t >= fromS && Number.isFinite(v));
  const n = used.length;
  const mean = n === 0 ? 0 : used.reduce((s, [, v]) => s + v, 0) / n;
  const fit = fitLine(used.map(([t, v]) => [t / 3600, v] as const));
  const threshold = rule.maxRelativeSlopePerHour * Math.abs(mean);
  const base = {
    unit, points: n, mean: round(mean, 4), slopePerHour: round(fit.slope, 4), slopeStdErrPerHour: round(fit.slopeStdErr, 3),
    relativeSlopePerHour: mean === 0 ? 0 : round(fit.slope / Math.abs(mean), 3), thresholdPerHour: round(threshold, 3),
  };
  if (n < 3 || !Number.isFinite(fit.slopeStdErr)) return { ...base, verdict: 'no data', why: `${n} samples after the warm-up: too few to fit a line` };
  const spanS = used[n - 1]![0] - used[0]![0];
  if (spanS < MIN_JUDGED_SPAN_S) {
    return { ...base, verdict: 'too short', why: `${round(spanS, 3)} s of samples after the warm-up: at least ${MIN_JUDGED_SPAN_S} s are needed to judge a slope per hour` };
  }
  const pct = (x: number): string => `${round(x * 100, 2)}%`;
  const rel = mean === 0 ? 0 : 1 / Math.abs(mean);
  const upper = fit.slope + 2 * fit.slopeStdErr;
  const lower = fit.slope - 2 * fit.slopeStdErr;
  const range = `${pct(lower * rel)} to ${pct(upper * rel)} of the mean per hour (slope ± 2 SE)`;
  if (upper < -threshold) return { ...base, verdict: 'falling', why: `${range}: falls by more than ${pct(rule.maxRelativeSlopePerHour)} (not a leak; the run had not settled: a longer warm-up would tell)` };
  if (upper <= threshold) return { ...base, verdict: 'flat', why: `${range}: rises by at most ${pct(rule.maxRelativeSlopePerHour)}, and does not surely fall by more` };
  if (lower > threshold) return { ...base, verdict: 'rising', why: `${range}: beyond ${pct(rule.maxRelativeSlopePerHour)}` };
  return { ...base, verdict: 'inconclusive', why: `${range}: straddles ${pct(rule.maxRelativeSlopePerHour)}; a longer or quieter run would tell` };
}
