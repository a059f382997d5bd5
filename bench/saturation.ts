/**
 * The saturation search: offered rates step up geometrically until a level is not sustainable, then the
 * gap between the last good and the first bad rate is bisected a few times. The answer is the highest
 * sustainable offered rate seen.
 *
 * A level is sustainable when (all of):
 * - nothing was lost and the load was not cut short;
 * - achieved throughput kept up: at least `minAchievedRatio` of the offered rate (bursts included);
 * - p99 latency (intended send → output) is within the objective;
 * - it was stable: the throughputs of the last `stabilityWindows` windows agree within `stabilityTolerance`
 *   of their mean, as perf_analyzer's stability rule asks of its measurement windows. A system falling
 *   behind shows it here even before p99 crosses the objective. (With bursts, windows should span whole
 *   burst periods, or they differ by design: the CLI sizes them so.)
 *
 * Pure over `runLevel`, so the search itself is tested without running anything.
 */
import type { LevelResult } from './run-level.js';

export interface SaturationOptions {
  readonly startRate: number;
  /** Step-up factor between levels. */
  readonly factor: number;
  readonly maxRate: number;
  /** Below this the search stops stepping down and reports no sustainable rate. */
  readonly minRate: number;
  /** Bisections between the last good and first bad rate. */
  readonly bisectSteps: number;
  readonly maxLevels: number;
  readonly sloP99Ms: number;
  readonly minAchievedRatio: number;
  readonly stabilityWindows: number;
  readonly stabilityTolerance: number;
  /**
   * Runs of a failing rate again before it counts as failed: on a shared machine a neighbour's burst of
   * work can fail one level. A rate passes if any run passes; every run is reported.
   */
  readonly confirmFailures: number;
}

export const defaultSaturationOptions: SaturationOptions = {
  startRate: 1000,
  factor: 2,
  maxRate: 200_000,
  minRate: 50,
  bisectSteps: 3,
  maxLevels: 10,
  sloP99Ms: 50,
  minAchievedRatio: 0.95,
  stabilityWindows: 3,
  stabilityTolerance: 0.1,
  confirmFailures: 1,
};

export type FailureReason = 'lost' | 'cut-short' | 'throughput' | 'slo' | 'unstable';

export interface LevelJudgement {
  readonly sustainable: boolean;
  readonly reasons: readonly FailureReason[];
}

export interface JudgedLevel {
  readonly result: LevelResult;
  readonly judgement: LevelJudgement;
}

export interface SaturationResult {
  /** The highest sustainable offered rate seen; null when even the lowest level tried failed. */
  readonly maxSustainableRate: number | null;
  /** The lowest failing rate above it, if one was run. */
  readonly firstFailingRate: number | null;
  /** What failed at that rate; `max-rate` when the search ran out of rates, `max-levels` out of levels. */
  readonly limitedBy: readonly (FailureReason | 'max-rate' | 'max-levels')[];
  /** Every level run, in the order run. */
  readonly levels: readonly JudgedLevel[];
}

/** Throughputs of the last `n` windows within `tolerance` of their mean (max − min ≤ tolerance × mean). */
export function isStable(throughputs: readonly number[], n: number, tolerance: number): boolean {
  if (throughputs.length < n) return false;
  const last = throughputs.slice(-n);
  const mean = last.reduce((a, b) => a + b, 0) / n;
  if (mean === 0) return false;
  return Math.max(...last) - Math.min(...last) <= tolerance * mean;
}

export function judgeLevel(r: LevelResult, o: Pick<SaturationOptions, 'sloP99Ms' | 'minAchievedRatio' | 'stabilityWindows' | 'stabilityTolerance'>): LevelJudgement {
  const reasons: FailureReason[] = [];
  if (r.lost > 0) reasons.push('lost');
  if (r.cutShort !== null) reasons.push('cut-short');
  if (r.achievedRate < o.minAchievedRatio * r.offeredMeanRate) reasons.push('throughput');
  if (r.latency.p99Ms > o.sloP99Ms) reasons.push('slo');
  // Fewer windows than the rule needs (a very short level) cannot show instability: judge on the rest.
  const windows = r.windows.map((w) => w.throughput);
  if (windows.length >= o.stabilityWindows && !isStable(windows, o.stabilityWindows, o.stabilityTolerance)) reasons.push('unstable');
  return { sustainable: reasons.length === 0, reasons };
}

/** Rates people can read: two significant digits (1500, 2300, 12000). */
export function roundRate(rate: number): number {
  return Number(rate.toPrecision(2));
}

export async function searchSaturation(
  runAt: (rate: number) => Promise<LevelResult>,
  options: SaturationOptions,
  onLevel?: (level: JudgedLevel) => void,
): Promise<SaturationResult> {
  const levels: JudgedLevel[] = [];
  const tried = new Map<number, boolean>();
  const run = async (rate: number): Promise<boolean> => {
    for (let attempt = 0; ; attempt++) {
      const result = await runAt(rate);
      const judged = { result, judgement: judgeLevel(result, options) };
      levels.push(judged);
      onLevel?.(judged);
      if (judged.judgement.sustainable || attempt >= options.confirmFailures || out()) {
        tried.set(rate, judged.judgement.sustainable);
        return judged.judgement.sustainable;
      }
    }
  };
  const out = (): boolean => levels.length >= options.maxLevels;
  let good: number | null = null;
  let bad: number | null = null;

  // Step up from the start rate; if the start rate already fails, step down instead.
  let rate = roundRate(options.startRate);
  if (await run(rate)) {
    good = rate;
    for (;;) {
      const next = roundRate(rate * options.factor);
      if (next > options.maxRate || out()) break;
      rate = next;
      if (await run(rate)) good = rate;
      else { bad = rate; break; }
    }
  } else {
    bad = rate;
    for (;;) {
      const next = roundRate(rate / options.factor);
      if (next < options.minRate || next === rate || out()) break;
      rate = next;
      if (await run(rate)) { good = rate; break; }
      bad = rate;
    }
  }

  // Bisect (geometric midpoint: rates are on a log scale) between the last good and the first bad rate.
  for (let i = 0; i < options.bisectSteps && good !== null && bad !== null && !out(); i++) {
    const mid = roundRate(Math.sqrt(good * bad));
    if (mid <= good || mid >= bad || tried.has(mid)) break;
    if (await run(mid)) good = mid;
    else bad = mid;
  }

  const failing = bad === null ? undefined : [...levels].reverse().find((l) => l.result.offeredRate === bad);
  const limitedBy: SaturationResult['limitedBy'] =
    failing !== undefined ? failing.judgement.reasons : out() ? ['max-levels'] : ['max-rate'];
  return { maxSustainableRate: good, firstFailingRate: bad, limitedBy, levels };
}
