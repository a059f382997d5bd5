/**
 * The overload check: a target at (typically) twice its saturation rate for a while, then no load until it
 * has caught up. Resident memory and lag are sampled every second throughout. What should hold: memory
 * stays flat (backpressure keeps the backlog in the broker, not in the process), lag grows, nothing is
 * lost, and the target catches up once the load stops.
 */
import { asyncScheduler, type SchedulerAction, type SchedulerLike } from 'rxjs';
import { runLevel, type LevelContext, type LevelResult } from './run-level.js';

export interface OverloadPlan {
  readonly rate: number;
  readonly durationS: number;
  readonly catchUpTimeoutS: number;
  readonly sampleS: number;
  readonly tickMs?: number;
}

export interface OverloadSample {
  readonly atS: number;
  readonly rssBytes: number;
  readonly lag: number;
  readonly phase: 'load' | 'catch-up';
}

export interface OverloadResult {
  readonly rate: number;
  readonly durationS: number;
  readonly level: LevelResult;
  readonly samples: readonly OverloadSample[];
  readonly rss: {
    readonly minBytes: number;
    readonly maxBytes: number;
    readonly firstHalfMaxBytes: number;
    readonly secondHalfMaxBytes: number;
    /** Over the second half of the load. */
    readonly slopeMiBPerMin: number;
  };
  readonly lagMax: number;
  readonly lost: number;
  /** From the end of the load to the last output; null when the target had not caught up by the timeout. */
  readonly catchUpS: number | null;
  readonly checks: {
    readonly nothingLost: boolean;
    readonly lagGrew: boolean;
    readonly caughtUp: boolean;
    /** The second half of the load raised resident memory by at most 10% over the first half's peak. */
    readonly memoryFlat: boolean;
  };
}

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

export async function runOverload(plan: OverloadPlan, ctx: LevelContext & { readonly scheduler?: SchedulerLike }): Promise<OverloadResult> {
  const scheduler = ctx.scheduler ?? asyncScheduler;
  const now = ctx.now ?? (() => performance.now());
  const start = now();
  const samples: OverloadSample[] = [];
  const target = ctx.target;
  const sampler = scheduler.schedule(function sample(this: SchedulerAction<undefined>) {
    const atS = (now() - start) / 1000;
    void Promise.all([target.rss(), target.lag()]).then(([rssBytes, lag]) => {
      samples.push({ atS, rssBytes, lag, phase: atS <= plan.durationS ? 'load' : 'catch-up' });
    }, () => undefined);
    this.schedule(undefined, plan.sampleS * 1000);
  }, plan.sampleS * 1000);

  const level = await runLevel({
    offeredRate: plan.rate, durationS: plan.durationS, warmupS: 0, windowS: plan.sampleS,
    maxBacklogS: Infinity, drainTimeoutS: plan.catchUpTimeoutS,
    ...(plan.tickMs === undefined ? {} : { tickMs: plan.tickMs }),
  }, ctx);
  sampler.unsubscribe();
  samples.sort((a, b) => a.atS - b.atS);

  const during = samples.filter((s) => s.phase === 'load');
  // The first half of the load is the ramp (heap and buffers grow to their working size); memory is flat
  // when the second half adds no more than 10% to the first half's peak.
  const firstHalf = during.filter((s) => s.atS <= plan.durationS / 2).map((s) => s.rssBytes);
  const secondHalf = during.filter((s) => s.atS > plan.durationS / 2);
  const rssValues = samples.map((s) => s.rssBytes).filter((b) => b > 0);
  const firstHalfMax = Math.max(0, ...firstHalf);
  const secondHalfMax = Math.max(0, ...secondHalf.map((s) => s.rssBytes));
  const lagMax = Math.max(0, ...samples.map((s) => s.lag));
  const caughtUp = level.lost === 0;
  return {
    rate: plan.rate,
    durationS: plan.durationS,
    level,
    samples,
    rss: {
      minBytes: rssValues.length === 0 ? 0 : Math.min(...rssValues),
      maxBytes: Math.max(0, ...rssValues),
      firstHalfMaxBytes: firstHalfMax,
      secondHalfMaxBytes: secondHalfMax,
      slopeMiBPerMin: Math.round(slope(secondHalf.map((s) => [s.atS / 60, s.rssBytes / 2 ** 20] as const)) * 100) / 100,
    },
    lagMax,
    lost: level.lost,
    catchUpS: caughtUp ? level.drainS : null,
    checks: {
      nothingLost: level.lost === 0,
      lagGrew: lagMax > (during[0]?.lag ?? 0),
      caughtUp,
      memoryFlat: firstHalfMax > 0 && secondHalfMax <= 1.1 * firstHalfMax,
    },
  };
}
