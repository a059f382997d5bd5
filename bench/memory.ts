/**
 * Is resident memory flat under overload? With backpressure, what the system under test holds is bounded
 * (records admitted for processing, the consumer's fetch buffers, the sink's batches): those reach their
 * working size in the first seconds of the load, and after that resident memory moves only with V8's heap
 * sizing and GC timing. Without backpressure the backlog would queue in the process, and memory would grow
 * with the lag for as long as the load lasts. Pure, so the rule is tested on made-up samples.
 */

export interface MemorySample {
  /** Seconds since the load started. */
  readonly atS: number;
  readonly rssBytes: number;
  readonly lag: number;
  readonly phase: 'load' | 'catch-up';
}

export type MemoryVerdict = 'flat' | 'growing' | 'inconclusive' | 'not judged';

export interface MemoryJudgement {
  /** The first sample, a second into the load. */
  readonly startBytes: number;
  /** The peak over the first `referenceS` of the load: buffers and heap at their working size. */
  readonly referenceBytes: number;
  readonly referenceS: number;
  /** The peak over the second half of the load. */
  readonly secondHalfPeakBytes: number;
  /** The peak over the whole run, catch-up included. */
  readonly peakBytes: number;
  /** The last sample, when the catch-up ended. */
  readonly endBytes: number;
  /** Least-squares slope over the second half of the load. */
  readonly slopeMiBPerMin: number;
  /** secondHalfPeakBytes − referenceBytes. */
  readonly growthBytes: number;
  readonly toleranceBytes: number;
  /**
   * The least an in-process queue would have grown by over the second half: the raw bytes of the records
   * the lag grew by (a queue of decoded records takes more). The check can tell a queue from noise only
   * when this is well above the tolerance.
   */
  readonly queueGrowthBytes: number;
  readonly verdict: MemoryVerdict;
  readonly why: string;
}

export const REFERENCE_S = 10;
/**
 * 10% of the reference, at least 24 MiB: in the runs behind this rule (Verdict on Kafka, 4 to 192
 * partitions, 30,000 events/s offered) the process's RSS moved within about 20 MiB once its first seconds
 * were over, as V8 resized its heap and collections came and went, with no trend.
 */
export const TOLERANCE_SHARE = 0.1;
export const TOLERANCE_FLOOR_BYTES = 24 * 2 ** 20;

/** Least-squares slope of y over x. */
export function slope(points: ReadonlyArray<readonly [number, number]>): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

const MiB = 2 ** 20;
const mib = (b: number): string => `${Math.round(b / MiB)} MiB`;

/**
 * `notJudged`: why this process's memory says nothing about backpressure (the embedded target's process
 * also holds the log); the figures are still reported.
 */
export function judgeMemory(
  samples: readonly MemorySample[],
  o: { readonly durationS: number; readonly recordBytes: number; readonly notJudged?: string },
): MemoryJudgement {
  const measured = samples.filter((s) => s.rssBytes > 0);
  const load = measured.filter((s) => s.phase === 'load');
  const referenceS = Math.min(REFERENCE_S, o.durationS / 2);
  const peak = (xs: readonly MemorySample[]): number => Math.max(0, ...xs.map((s) => s.rssBytes));
  const referenceBytes = peak(load.filter((s) => s.atS <= referenceS));
  const secondHalf = load.filter((s) => s.atS > o.durationS / 2);
  const secondHalfPeakBytes = peak(secondHalf);
  const growthBytes = secondHalfPeakBytes - referenceBytes;
  const toleranceBytes = Math.max(TOLERANCE_SHARE * referenceBytes, TOLERANCE_FLOOR_BYTES);
  const lagGrowth = Math.max(0, ...secondHalf.map((s) => s.lag)) - (secondHalf[0]?.lag ?? 0);
  const queueGrowthBytes = Math.max(0, lagGrowth) * o.recordBytes;
  const slopeMiBPerMin = Math.round(slope(secondHalf.map((s) => [s.atS / 60, s.rssBytes / MiB] as const)) * 100) / 100;
  // Within the tolerance now, but rising fast enough to leave it had the second half lasted twice as long.
  const rising = growthBytes + slopeMiBPerMin * MiB * (o.durationS / 2 / 60) > toleranceBytes;

  let verdict: MemoryVerdict;
  let why: string;
  if (o.notJudged !== undefined) {
    verdict = 'not judged';
    why = o.notJudged;
  } else if (referenceBytes === 0 || secondHalf.length === 0) {
    verdict = 'inconclusive';
    why = 'too few memory samples';
  } else if (growthBytes > toleranceBytes) {
    verdict = 'growing';
    why = `the second half's peak is ${mib(growthBytes)} above the first ${referenceS} s's, more than the ${mib(toleranceBytes)} tolerance`;
  } else if (queueGrowthBytes < 2 * toleranceBytes) {
    verdict = 'inconclusive';
    why = `within the ${mib(toleranceBytes)} tolerance, but the lag grew by only ${mib(queueGrowthBytes)} of records over the second half: too little to tell a queue from noise`;
  } else {
    verdict = 'flat';
    why = `the second half's peak is within ${mib(toleranceBytes)} of the first ${referenceS} s's (${growthBytes >= 0 ? '+' : ''}${mib(growthBytes)}), while the lag grew by ${mib(queueGrowthBytes)} of records`
      + (rising ? `; but it still rose ${Math.round(slopeMiBPerMin)} MiB/min over the second half, so a longer overload would tell whether it levels off` : '');
  }
  return {
    startBytes: measured[0]?.rssBytes ?? 0,
    referenceBytes,
    referenceS,
    secondHalfPeakBytes,
    peakBytes: peak(measured),
    endBytes: measured.at(-1)?.rssBytes ?? 0,
    slopeMiBPerMin,
    growthBytes,
    toleranceBytes,
    queueGrowthBytes,
    verdict,
    why,
  };
}
