/**
 * The overload's bounded queues, from the system under test's own metrics scraped once a second: records
 * read and not acknowledged (`verdict_inflight_events`) against `stream.maxBuffered`, records in processing
 * (`verdict_admitted_events`) against `stream.maxInflight`, each model mailbox's depth against its capacity,
 * and how often backpressure paused and resumed partitions. Pure, so the rules are tested on made-up
 * scrapes.
 *
 * Sampling once a second sees each gauge at that moment, not its peak between samples: a bound exceeded
 * for a fraction of a second can go unseen. The counters (pauses, resumes) miss nothing.
 */
import type { SutMetrics } from './sut-metrics.js';

export interface BoundUse {
  /** The largest value any sample saw. */
  readonly max: number;
  /** The configured bound; null when the endpoint does not report it. */
  readonly bound: number | null;
  /** What may pass the bound by design (records, rows). */
  readonly allowance: number;
  /** max ≤ bound + allowance; null without a bound or a sample. */
  readonly within: boolean | null;
  /** What the bound means, and any allowance beyond it. */
  readonly meaning: string;
}

export interface OverloadBounds {
  /** Scrapes that answered, of those asked. */
  readonly samples: number;
  readonly inflight: BoundUse;
  readonly admitted: BoundUse;
  readonly mailboxes: Readonly<Record<string, BoundUse>>;
  readonly pausedPartitionsMax: number | null;
  /** Partitions paused and resumed by backpressure between the scrape before the load and the one after the catch-up. */
  readonly pauses: number | null;
  readonly resumes: number | null;
  readonly withinBounds: boolean | null;
  readonly pausedAndResumed: boolean | null;
}

export interface BoundsContext {
  /**
   * Records a read can add on top of `maxBuffered` before the pause takes effect: the pause is applied
   * after the batch that crossed the mark, and batches the client had fetched already are still handed
   * over (kafkajs: one fetch's worth, at most maxBytesPerPartition per partition).
   */
  readonly inflightAllowance: number;
}

const maxOf = (xs: ReadonlyArray<number | null>): number | null => {
  const known = xs.filter((x): x is number => x !== null);
  return known.length === 0 ? null : Math.max(...known);
};

function use(max: number | null, bound: number | null, allowance: number, meaning: string): BoundUse {
  return { max: max ?? 0, bound, allowance, within: max === null || bound === null ? null : max <= bound + allowance, meaning };
}

/** `before` and `after`: the scrapes just before the load and just after the catch-up; `during`: every one in between. */
export function judgeBounds(before: SutMetrics | null, during: ReadonlyArray<SutMetrics | null>, after: SutMetrics | null, ctx: BoundsContext): OverloadBounds {
  const seen = [before, ...during, after].filter((m): m is SutMetrics => m !== null);
  const bounds = seen.find((m) => m.bounds.maxBuffered !== null)?.bounds ?? { maxInflight: null, maxBuffered: null, maxBufferedPerPartition: null };
  const inflight = use(maxOf(seen.map((m) => m.inflight)), bounds.maxBuffered, ctx.inflightAllowance,
    `records read and not yet acknowledged, against stream.maxBuffered (the mark at which every partition is paused), plus ${ctx.inflightAllowance.toLocaleString('en-US')} records a fetch already under way may add`);
  const admitted = use(maxOf(seen.map((m) => m.admitted)), bounds.maxInflight, 0,
    'records released into processing and not yet acknowledged, against stream.maxInflight');
  const models = new Set(seen.flatMap((m) => Object.keys(m.mailboxes)));
  const mailboxes: Record<string, BoundUse> = {};
  for (const model of models) {
    const depth = maxOf(seen.map((m) => m.mailboxes[model]?.depth ?? null));
    const capacity = maxOf(seen.map((m) => m.mailboxes[model]?.capacity ?? null));
    mailboxes[model] = use(depth, capacity, 0, 'rows waiting in the model actor mailbox (all threads), against its capacity');
  }
  const delta = (f: (m: SutMetrics) => number | null): number | null => {
    const a = before === null ? null : f(before);
    const b = after === null ? null : f(after);
    return a === null || b === null ? null : b - a;
  };
  const pauses = delta((m) => m.backpressurePauses);
  const resumes = delta((m) => m.backpressureResumes);
  const checks = [inflight.within, admitted.within, ...Object.values(mailboxes).map((m) => m.within)];
  return {
    samples: seen.length,
    inflight,
    admitted,
    mailboxes,
    pausedPartitionsMax: maxOf(seen.map((m) => m.pausedPartitions)),
    pauses,
    resumes,
    withinBounds: checks.includes(false) ? false : checks.every((c) => c === true) ? true : null,
    pausedAndResumed: pauses === null || resumes === null ? null : pauses > 0 && resumes > 0,
  };
}
