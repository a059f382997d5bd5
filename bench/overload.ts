/**
 * The overload check: a target at (typically) twice its saturation rate for a while, then no load until it
 * has caught up. Resident memory, lag and (on Kafka) the broker's log start offsets are sampled every
 * second throughout. What should hold: memory stays flat (backpressure keeps the backlog in the broker,
 * not in the process), lag grows, nothing is lost, and the target catches up once the load stops.
 *
 * The check is only valid if the broker kept the whole backlog: records its retention deleted before the
 * system under test read them are reported apart from records the system lost, and make the run invalid.
 */
import { asyncScheduler, type SchedulerAction, type SchedulerLike } from 'rxjs';
import type { DrainStop } from './drain.js';
import { judgeMemory, type MemoryJudgement, type MemorySample } from './memory.js';
import { judgeBounds, type OverloadBounds } from './overload-bounds.js';
import { RECORD_BATCH_OVERHEAD_BYTES } from './retention.js';
import { runLevel, type LevelContext, type LevelResult } from './run-level.js';
import type { SutMetrics } from './sut-metrics.js';

export interface OverloadPlan {
  readonly rate: number;
  readonly durationS: number;
  readonly catchUpTimeoutS: number;
  /** Give up the catch-up when no output at all arrived for this long. */
  readonly stallS: number;
  readonly sampleS: number;
  readonly tickMs?: number;
  /** Mean bytes of one input record: what an in-process queue would hold at least per record of lag. */
  readonly recordBytes: number;
  /** Why memory is not judged on this target (embedded: the process also holds the log). */
  readonly memoryNotJudged?: string;
  /** Records a fetch under way may add past stream.maxBuffered (see BoundsContext). */
  readonly inflightAllowance: number;
  /** The broker's retention per partition, bytes, to hold the busiest partition's unread records against; null: unknown. */
  readonly retentionBytesPerPartition: number | null;
  /** Live notes for the progress display. */
  readonly note?: (text: string) => void;
}

export interface OverloadSample extends MemorySample {
  /** Partitions where broker retention had deleted records the consumer group had not committed; null: cannot tell. */
  readonly overtakenPartitions: number | null;
  /** The most unread records in one input partition; null: cannot tell. */
  readonly busiestUnread: number | null;
  /** From the system under test's own endpoint (null when it has none or the scrape failed). */
  readonly heapUsedBytes: number | null;
  readonly inflight: number | null;
  readonly admitted: number | null;
  readonly pausedPartitions: number | null;
  /** Rows waiting in every model mailbox together. */
  readonly mailboxDepth: number | null;
  /** Partitions backpressure has paused since the system under test started (a counter). */
  readonly backpressurePauses: number | null;
}

/** How much of the broker's per-partition retention the busiest partition's unread records took, at their peak. */
export interface RetentionUse {
  readonly busiestUnreadMax: number;
  /** Those records' bytes in record batches: records × mean record bytes, plus a batch header per generator tick they span. */
  readonly bytes: number;
  readonly retentionBytesPerPartition: number;
  readonly fill: number;
  /** 1 − fill: how much more backlog the busiest partition could have held. */
  readonly headroom: number;
}

export interface OverloadResult {
  readonly rate: number;
  readonly durationS: number;
  readonly level: LevelResult;
  readonly samples: readonly OverloadSample[];
  readonly memory: MemoryJudgement;
  readonly lagMax: number;
  readonly sent: number;
  /** Events without an output when the catch-up ended (all causes). */
  readonly lost: number;
  /** Of those: deleted by broker retention before the system under test read them. */
  readonly deletedByBroker: number;
  /** Of those: never accepted by the broker (the load producer's send failed). */
  readonly neverAccepted: number;
  /** Of those: what the system under test itself failed to answer (still in the broker, or deleted after
   * it had committed past them); null when the target cannot tell the two apart. */
  readonly lostBySut: number | null;
  /** When a sample first saw the broker's log start offset pass the consumer group's committed offset. */
  readonly retentionOvertookAtS: number | null;
  /** System-under-test resident memory just before the load and just after the catch-up (its own endpoint, else the target's rss()). */
  readonly rssBeforeBytes: number | null;
  readonly rssAfterBytes: number | null;
  /** Queues and in-flight counts against their bounds, backpressure's pauses and resumes; null when the target has no endpoint. */
  readonly bounds: OverloadBounds | null;
  /** Measured retention use; null when the retention or the unread counts are unknown. */
  readonly retention: RetentionUse | null;
  /** Outputs per event answered more than once (at-least-once redelivery; counted apart, not as loss). */
  readonly duplicates: number;
  /** From the end of the load to the last output; null when the target did not catch up. */
  readonly catchUpS: number | null;
  readonly catchUpEnd: DrainStop;
  readonly checks: {
    readonly nothingLost: boolean;
    readonly lagGrew: boolean;
    readonly caughtUp: boolean;
    /** Null when memory is not judged or the judgement is inconclusive. */
    readonly memoryFlat: boolean | null;
    /** The broker kept every unread record; null when the target cannot tell. */
    readonly brokerKeptBacklog: boolean | null;
    /** Every sampled queue and in-flight count within its bound; null when not measured. */
    readonly withinBounds: boolean | null;
    /** Backpressure paused partitions and resumed them; null when not measured. */
    readonly pausedAndResumed: boolean | null;
  };
  /** Why the run says nothing about the system under test, if it does not. */
  readonly invalidBecause: string | null;
}

export async function runOverload(plan: OverloadPlan, ctx: LevelContext & { readonly scheduler?: SchedulerLike }): Promise<OverloadResult> {
  const scheduler = ctx.scheduler ?? asyncScheduler;
  const now = ctx.now ?? (() => performance.now());
  const start = now();
  const samples: OverloadSample[] = [];
  const target = ctx.target;
  let overtookAtS: number | null = null;
  const scrape = (): Promise<SutMetrics | null> => target.sutMetrics?.().catch(() => null) ?? Promise.resolve(null);
  const before = await scrape();
  const rssBefore = before?.rssBytes ?? await target.rss().catch(() => null);
  const scrapes: Array<SutMetrics | null> = [];
  const pending: Promise<void>[] = [];
  const sampler = scheduler.schedule(function sample(this: SchedulerAction<undefined>) {
    const atS = (now() - start) / 1000;
    const log = target.logState?.().catch(() => null) ?? Promise.resolve(null);
    pending.push(Promise.all([target.rss(), target.lag(), log, scrape()]).then(([rss, lag, state, sut]) => {
      const overtakenPartitions = state?.overtakenPartitions ?? null;
      if (overtakenPartitions !== null && overtakenPartitions > 0 && overtookAtS === null) {
        overtookAtS = atS;
        plan.note?.(`  broker retention is deleting records the consumer has not committed (${overtakenPartitions} partitions at ${Math.round(atS)} s): the backlog does not fit`);
      }
      scrapes.push(sut);
      const mailboxes = sut === null ? [] : Object.values(sut.mailboxes);
      samples.push({
        atS, rssBytes: sut?.rssBytes ?? rss, lag, phase: atS <= plan.durationS ? 'load' : 'catch-up', overtakenPartitions,
        busiestUnread: state?.busiestUnread ?? null,
        heapUsedBytes: sut?.heapUsedBytes ?? null, inflight: sut?.inflight ?? null, admitted: sut?.admitted ?? null,
        pausedPartitions: sut?.pausedPartitions ?? null, mailboxDepth: sut === null ? null : mailboxes.reduce((sum, m) => sum + m.depth, 0),
        backpressurePauses: sut?.backpressurePauses ?? null,
      });
    }, () => undefined));
    this.schedule(undefined, plan.sampleS * 1000);
  }, plan.sampleS * 1000);

  const level = await runLevel({
    offeredRate: plan.rate, durationS: plan.durationS, warmupS: 0, windowS: plan.sampleS,
    maxBacklogS: Infinity, drainTimeoutS: plan.catchUpTimeoutS, drainIdleS: plan.stallS,
    ...(plan.tickMs === undefined ? {} : { tickMs: plan.tickMs }),
  }, ctx);
  sampler.unsubscribe();
  await Promise.all(pending);
  const after = await scrape();
  const rssAfter = after?.rssBytes ?? await target.rss().catch(() => null);
  samples.sort((a, b) => a.atS - b.atS);
  const bounds = target.sutMetrics === undefined ? null : judgeBounds(before, scrapes, after, { inflightAllowance: plan.inflightAllowance });

  const memory = judgeMemory(samples, {
    durationS: plan.durationS, recordBytes: plan.recordBytes,
    ...(target.sutMetrics === undefined ? {} : { buffersFullAtS: buffersFullAt(samples, before?.backpressurePauses ?? null) }),
    ...(plan.memoryNotJudged === undefined ? {} : { notJudged: plan.memoryNotJudged }),
  });
  const during = samples.filter((s) => s.phase === 'load');
  const lagMax = Math.max(0, ...samples.map((s) => s.lag));
  const loss = attributeLoss(target.logState === undefined ? null : level.lostWhere ?? NOTHING_LOST, overtookAtS);
  const caughtUp = level.lost === 0;
  return {
    rate: plan.rate,
    durationS: plan.durationS,
    level,
    samples,
    memory,
    lagMax,
    sent: level.sent,
    lost: level.lost,
    deletedByBroker: loss.deletedByBroker,
    neverAccepted: loss.neverAccepted,
    lostBySut: loss.lostBySut,
    retentionOvertookAtS: overtookAtS,
    rssBeforeBytes: rssBefore,
    rssAfterBytes: rssAfter,
    bounds,
    retention: retentionUse(samples, plan),
    duplicates: level.duplicates,
    catchUpS: caughtUp ? level.drainS : null,
    catchUpEnd: level.drainEnd,
    checks: {
      nothingLost: level.lost === 0,
      lagGrew: lagMax > (during[0]?.lag ?? 0),
      caughtUp,
      memoryFlat: memory.verdict === 'flat' ? true : memory.verdict === 'growing' ? false : null,
      brokerKeptBacklog: loss.brokerKept,
      withinBounds: bounds?.withinBounds ?? null,
      pausedAndResumed: bounds?.pausedAndResumed ?? null,
    },
    invalidBecause: loss.brokerKept === false
      ? `broker retention deleted records before the system under test read them (first seen ${Math.round(overtookAtS ?? 0)} s into the load${loss.deletedByBroker > 0 ? `; ${loss.deletedByBroker} events never answered` : ''}): the backlog outgrew the broker, so lag, loss and catch-up describe the broker, not the system`
      : null,
  };
}

/**
 * The busiest partition's unread records at their peak, in the broker's unit. They were written over the
 * last (unread ÷ its share of the rate) seconds, one batch per generator tick: the same sizing as the
 * forecast (retention.ts), on measured counts.
 */
export function retentionUse(samples: readonly OverloadSample[], plan: Pick<OverloadPlan, 'recordBytes' | 'retentionBytesPerPartition' | 'rate' | 'tickMs'>): RetentionUse | null {
  const retention = plan.retentionBytesPerPartition;
  const peak = samples.reduce<OverloadSample | undefined>((a, s) => (s.busiestUnread !== null && (a === undefined || s.busiestUnread > (a.busiestUnread ?? 0)) ? s : a), undefined);
  if (retention === null || peak === undefined || peak.busiestUnread === null) return null;
  const unread = peak.busiestUnread;
  // The total lag spans lag ÷ rate seconds of load; the busiest partition's unread records span the same.
  const spanS = plan.rate <= 0 ? 0 : peak.lag / plan.rate;
  const batches = Math.min(unread, spanS * (1000 / (plan.tickMs ?? 10)));
  const bytes = Math.round(unread * plan.recordBytes + batches * RECORD_BATCH_OVERHEAD_BYTES);
  const fill = Math.round((bytes / retention) * 1000) / 1000;
  return { busiestUnreadMax: unread, bytes, retentionBytesPerPartition: retention, fill, headroom: Math.round((1 - fill) * 1000) / 1000 };
}

/**
 * When backpressure first paused a partition during the load (its pause counter passed the value before the
 * load): the stream's read-ahead was full. Null when it never did, or when the counter was not read.
 */
export function buffersFullAt(samples: readonly OverloadSample[], pausesBefore: number | null): number | null {
  if (pausesBefore === null) return null;
  return samples.find((s) => s.phase === 'load' && s.backpressurePauses !== null && s.backpressurePauses > pausesBefore)?.atS ?? null;
}

const NOTHING_LOST = { deletedByBroker: 0, neverAccepted: 0, inBroker: 0, outputsDeleted: 0 };

/**
 * Who lost what; `where` null when the target cannot tell. An unanswered event below the log start offset was deleted by the broker; it was deleted
 * unread only if retention was seen overtaking the group's committed offset. If it never was, the group
 * had committed past those records before they were deleted, and they were the system's to answer.
 * Sampling once a second can miss a brief overtaking, so this leans towards blaming the system.
 */
export function attributeLoss(where: LevelResult['lostWhere'], overtookAtS: number | null): { deletedByBroker: number; neverAccepted: number; lostBySut: number | null; brokerKept: boolean | null } {
  if (where === null) return { deletedByBroker: 0, neverAccepted: 0, lostBySut: null, brokerKept: null };
  const deletedUnread = overtookAtS === null ? 0 : where.deletedByBroker;
  return {
    deletedByBroker: deletedUnread,
    neverAccepted: where.neverAccepted,
    lostBySut: where.inBroker + where.deletedByBroker - deletedUnread,
    brokerKept: overtookAtS === null,
  };
}
