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
import { runLevel, type LevelContext, type LevelResult } from './run-level.js';

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
  /** Live notes for the progress display. */
  readonly note?: (text: string) => void;
}

export interface OverloadSample extends MemorySample {
  /** Partitions where broker retention had deleted records the consumer group had not committed; null: cannot tell. */
  readonly overtakenPartitions: number | null;
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
  const sampler = scheduler.schedule(function sample(this: SchedulerAction<undefined>) {
    const atS = (now() - start) / 1000;
    const log = target.logState?.().catch(() => null) ?? Promise.resolve(null);
    void Promise.all([target.rss(), target.lag(), log]).then(([rssBytes, lag, state]) => {
      const overtakenPartitions = state?.overtakenPartitions ?? null;
      if (overtakenPartitions !== null && overtakenPartitions > 0 && overtookAtS === null) {
        overtookAtS = atS;
        plan.note?.(`  broker retention is deleting records the consumer has not committed (${overtakenPartitions} partitions at ${Math.round(atS)} s): the backlog does not fit`);
      }
      samples.push({ atS, rssBytes, lag, phase: atS <= plan.durationS ? 'load' : 'catch-up', overtakenPartitions });
    }, () => undefined);
    this.schedule(undefined, plan.sampleS * 1000);
  }, plan.sampleS * 1000);

  const level = await runLevel({
    offeredRate: plan.rate, durationS: plan.durationS, warmupS: 0, windowS: plan.sampleS,
    maxBacklogS: Infinity, drainTimeoutS: plan.catchUpTimeoutS, drainIdleS: plan.stallS,
    ...(plan.tickMs === undefined ? {} : { tickMs: plan.tickMs }),
  }, ctx);
  sampler.unsubscribe();
  samples.sort((a, b) => a.atS - b.atS);

  const memory = judgeMemory(samples, {
    durationS: plan.durationS, recordBytes: plan.recordBytes,
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
    catchUpS: caughtUp ? level.drainS : null,
    catchUpEnd: level.drainEnd,
    checks: {
      nothingLost: level.lost === 0,
      lagGrew: lagMax > (during[0]?.lag ?? 0),
      caughtUp,
      memoryFlat: memory.verdict === 'flat' ? true : memory.verdict === 'growing' ? false : null,
      brokerKeptBacklog: loss.brokerKept,
    },
    invalidBecause: loss.brokerKept === false
      ? `broker retention deleted records before the system under test read them (first seen ${Math.round(overtookAtS ?? 0)} s into the load${loss.deletedByBroker > 0 ? `; ${loss.deletedByBroker} events never answered` : ''}): the backlog outgrew the broker, so lag, loss and catch-up describe the broker, not the system`
      : null,
  };
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
