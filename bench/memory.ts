/**
 * Is resident memory flat under overload? With backpressure, what the system under test holds is bounded
 * (records admitted for processing, the consumer's fetch buffers, the sink's batches): those reach their
 * working size in the first seconds of the load, and after that resident memory moves only with V8's heap
 * sizing and GC timing. Without backpressure the backlog would queue in the process, and memory would grow
 * with the lag for as long as the load lasts. Pure, so the rule is tested on made-up samples.
 */
import { fitLine } from './soak-trend.js';

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
  /** Where the judged part of the load starts (s): its second half, or later when the buffers filled later. */
  readonly judgedFromS: number;
  /** The peak over the judged part of the load (its second half unless the buffers filled later). */
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
/** Samples over the judged part needed to call memory levelled off (a slope's error needs a few). */
export const LEVEL_OFF_MIN_SAMPLES = 10;
/** After the read-ahead is full, the seconds V8's heap takes to reach its size for it (GC cycles under load). */
export const BUFFERS_SETTLE_S = 5;
/**
 * 10% of the reference, at least 24 MiB: in the runs behind this rule (Verdict on Kafka, 4 to 192
 * partitions, 30,000 events/s offered) the process's RSS moved within about 20 MiB once its first seconds
 * were over, as V8 resized its heap and collections came and went, with no trend.
 */
export const TOLERANCE_SHARE = 0.1;
export const TOLERANCE_FLOOR_BYTES = 24 * 2 ** 20;

const MiB = 2 ** 20;
const mib = (b: number): string => `${Math.round(b / MiB)} MiB`;

/**
 * `notJudged`: why this process's memory says nothing about backpressure (the embedded target's process
 * also holds the log); the figures are still reported.
 */
export function judgeMemory(
  samples: readonly MemorySample[],
  o: {
    readonly durationS: number;
    readonly recordBytes: number;
    readonly notJudged?: string;
    /**
     * When backpressure first paused a partition (s since the load started): the stream's read-ahead had
     * reached its bound, so its buffers were at their working size. Null: it never did during the load.
     * Absent: not known (the first REFERENCE_S seconds are taken as the buffers' filling time).
     */
    readonly buffersFullAtS?: number | null;
  },
): MemoryJudgement {
  const measured = samples.filter((s) => s.rssBytes > 0);
  const load = measured.filter((s) => s.phase === 'load');
  // The reference runs until the buffers are full (and a few seconds more for the heap to follow), but
  // leaves at least the last quarter of the load to judge.
  const full = o.buffersFullAtS;
  const referenceS = Math.min(
    typeof full === 'number' ? Math.max(REFERENCE_S, full + BUFFERS_SETTLE_S) : REFERENCE_S,
    typeof full === 'number' ? o.durationS * 0.75 : o.durationS / 2,
  );
  const peak = (xs: readonly MemorySample[]): number => Math.max(0, ...xs.map((s) => s.rssBytes));
  const referenceBytes = peak(load.filter((s) => s.atS <= referenceS));
  const judgedFromS = Math.max(o.durationS / 2, referenceS);
  const secondHalf = load.filter((s) => s.atS > judgedFromS);
  const secondHalfPeakBytes = peak(secondHalf);
  const growthBytes = secondHalfPeakBytes - referenceBytes;
  const toleranceBytes = Math.max(TOLERANCE_SHARE * referenceBytes, TOLERANCE_FLOOR_BYTES);
  const lagGrowth = Math.max(0, ...secondHalf.map((s) => s.lag)) - (secondHalf[0]?.lag ?? 0);
  const queueGrowthBytes = Math.max(0, lagGrowth) * o.recordBytes;
  const slopeMiBPerMin = Math.round(fitLine(secondHalf.map((s) => [s.atS / 60, s.rssBytes / MiB] as const)).slope * 100) / 100;
  // Within the tolerance now, but rising fast enough to leave it had the second half lasted twice as long.
  const rising = growthBytes + slopeMiBPerMin * MiB * ((o.durationS - judgedFromS) / 60) > toleranceBytes;
  const judged = judgedFromS === o.durationS / 2 ? 'the second half' : `the load after ${Math.round(judgedFromS)} s`;
  const untilFull = typeof full === 'number' ? ' (until the buffers were full)' : '';
  // A step before the judged part that memory then stays under (V8 growing its heap once, under load) is not
  // a queue: a queue grows with the lag, all through the load. Levelled off: even the slope's upper bound
  // (+ 2 standard errors) over the judged part is not positive.
  const fit = fitLine(secondHalf.map((s) => [s.atS / 60, s.rssBytes / MiB] as const));
  const levelledOff = secondHalf.length >= LEVEL_OFF_MIN_SAMPLES && fit.slope + 2 * fit.slopeStdErr <= 0;

  let verdict: MemoryVerdict;
  let why: string;
  if (o.notJudged !== undefined) {
    verdict = 'not judged';
    why = o.notJudged;
  } else if (referenceBytes === 0 || secondHalf.length === 0) {
    verdict = 'inconclusive';
    why = 'too few memory samples';
  } else if (growthBytes > toleranceBytes && full === null) {
    verdict = 'inconclusive';
    why = `${judged}'s peak is ${mib(growthBytes)} above the first ${referenceS} s's, but backpressure never paused a partition during the load: the stream was still filling its bounded read-ahead (stream.maxBuffered records), so growth was expected`;
  } else if (growthBytes > toleranceBytes && levelledOff) {
    const step = `${judged}'s peak is ${mib(growthBytes)} above the first ${Math.round(referenceS)} s's${untilFull}, but memory levelled off: over ${judged} it moved ${slopeMiBPerMin.toFixed(1)} ± ${(2 * fit.slopeStdErr).toFixed(1)} MiB/min while the lag grew by ${mib(queueGrowthBytes)} of records`;
    verdict = queueGrowthBytes < 2 * toleranceBytes ? 'inconclusive' : 'flat';
    why = verdict === 'flat' ? `${step}: a step (heap sizing), not a queue` : `${step}, too little to tell a queue from noise`;
  } else if (growthBytes > toleranceBytes) {
    verdict = 'growing';
    why = `${judged}'s peak is ${mib(growthBytes)} above the first ${Math.round(referenceS)} s's${untilFull}, more than the ${mib(toleranceBytes)} tolerance`;
  } else if (queueGrowthBytes < 2 * toleranceBytes) {
    verdict = 'inconclusive';
    why = `within the ${mib(toleranceBytes)} tolerance, but the lag grew by only ${mib(queueGrowthBytes)} of records over ${judged}: too little to tell a queue from noise`;
  } else {
    verdict = 'flat';
    why = `${judged}'s peak is within ${mib(toleranceBytes)} of the first ${Math.round(referenceS)} s's${untilFull} (${growthBytes >= 0 ? '+' : ''}${mib(growthBytes)}), while the lag grew by ${mib(queueGrowthBytes)} of records`
      + (rising ? `; but it still rose ${Math.round(slopeMiBPerMin)} MiB/min over ${judged}, so a longer overload would tell whether it levels off` : '');
  }
  return {
    startBytes: measured[0]?.rssBytes ?? 0,
    referenceBytes,
    referenceS,
    judgedFromS,
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
