/**
 * The soak: one target at a steady rate (by default half its saturation rate) for minutes or hours, open
 * loop, with the system under test sampled every `sampleS`: resident memory and V8 heap, its main thread's
 * event-loop delay, the consumer lag; and, per window of the same length, the p99 latency (intended send
 * → output read) and the throughput. What should hold: none of them trends upward once the warm-up is
 * over. Least-squares slopes per hour say whether they do (soak-trend.ts).
 *
 * On Kafka targets every figure of the system under test comes from its own Prometheus endpoint, scraped
 * over HTTP as an operator would (prom-client resets its event-loop histogram at each scrape, so each
 * sample's p99 covers the interval since the previous one). On embedded targets the system under test is
 * the harness process, and its figures include the generator and the reader.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { asyncScheduler, type SchedulerAction, type SchedulerLike } from 'rxjs';
import { runLevel, type LevelContext, type LevelResult } from './run-level.js';
import { LATENCY_RULE, MEMORY_RULE, trendOf, type Trend, type TrendRule } from './soak-trend.js';

export interface SoakPlan {
  readonly rate: number;
  readonly durationS: number;
  /** Sampling interval, and the length of each latency window. */
  readonly sampleS: number;
  /** Left out of the slopes: heap sizing, JIT and fetch sizes settle first. */
  readonly warmupS: number;
  readonly tickMs: number;
  /** Stop the soak when this many seconds of load wait unanswered: the rate was not sustainable. */
  readonly maxBacklogS: number;
  readonly drainTimeoutS: number;
  readonly drainIdleS: number;
  /** Live notes for the progress display. */
  readonly note?: (text: string) => void;
}

export interface SoakSample {
  /** Seconds since the load started. */
  readonly atS: number;
  readonly rssBytes: number | null;
  readonly heapUsedBytes: number | null;
  /** The system under test's main-thread event-loop delay p99 over the last interval, ms. */
  readonly eventLoopP99Ms: number | null;
  readonly lag: number | null;
}

export interface SoakWindow {
  /** Seconds since the load started, at the window's end. */
  readonly atS: number;
  readonly p99Ms: number;
  readonly throughput: number;
}

export type SoakSeries = 'rssBytes' | 'heapUsedBytes' | 'eventLoopP99Ms' | 'latencyP99Ms' | 'throughput' | 'lag';

export interface SoakResult {
  readonly rate: number;
  readonly durationS: number;
  readonly sampleS: number;
  readonly warmupS: number;
  /** Where the memory and event-loop figures come from. */
  readonly measuredIn: string;
  readonly samples: readonly SoakSample[];
  readonly windows: readonly SoakWindow[];
  /** Per series: slope per hour after the warm-up, with its verdict (throughput and lag are not judged). */
  readonly trends: Readonly<Record<SoakSeries, Trend>>;
  /** The rules the verdicts used, with why. */
  readonly rules: readonly string[];
  /** The level the soak ran as: totals, latency over the whole run after the warm-up, loss, drain. */
  readonly level: Omit<LevelResult, 'windows'>;
  /** Flat when every judged series is; else the worst verdict among them. */
  readonly verdict: Trend['verdict'];
}

/** Throughput and lag are reported with a slope but not judged: at a fixed offered rate they only follow it. */
const REPORTED_ONLY: TrendRule = { maxRelativeSlopePerHour: Infinity, why: 'not judged' };

export async function runSoak(plan: SoakPlan, ctx: LevelContext & { readonly scheduler?: SchedulerLike }): Promise<SoakResult> {
  const scheduler = ctx.scheduler ?? asyncScheduler;
  const now = ctx.now ?? (() => performance.now());
  const { target } = ctx;
  const samples: SoakSample[] = [];
  const pendingSamples: Promise<void>[] = [];
  // Embedded targets run in this process: its own event loop is theirs.
  const local = target.sutMetrics === undefined ? monitorEventLoopDelay({ resolution: 5 }) : undefined;
  local?.enable();
  const start = now();
  const sampler = scheduler.schedule(function sample(this: SchedulerAction<undefined>) {
    const atS = (now() - start) / 1000;
    pendingSamples.push(takeSample(ctx, atS, local).then((s) => { samples.push(s); }, () => undefined));
    this.schedule(undefined, plan.sampleS * 1000);
  }, plan.sampleS * 1000);

  let windowsSeen = 0;
  const level = await runLevel({
    offeredRate: plan.rate, durationS: plan.durationS - plan.warmupS, warmupS: plan.warmupS, windowS: plan.sampleS,
    maxBacklogS: plan.maxBacklogS, drainTimeoutS: plan.drainTimeoutS, drainIdleS: plan.drainIdleS, tickMs: plan.tickMs,
  }, {
    ...ctx,
    onWindow: (w) => {
      // A line a minute: the soak is long, and a window every few seconds would flood the terminal.
      if (++windowsSeen % Math.max(1, Math.round(60 / plan.sampleS)) === 0) {
        plan.note?.(`  soak ${Math.round((w.atS + plan.warmupS) / 60)} min: ${Math.round(w.throughput)}/s, p99 ${w.p99Ms.toFixed(1)} ms, lag ${w.lag}, RSS ${Math.round(w.rssBytes / 2 ** 20)} MiB`);
      }
    },
  });
  sampler.unsubscribe();
  await Promise.all(pendingSamples);
  local?.disable();
  samples.sort((a, b) => a.atS - b.atS);

  const { windows: levelWindows, ...totals } = level;
  // Windows count from the end of the warm-up; the soak's clock from the start of the load.
  const windows = levelWindows.map((w) => ({ atS: w.atS + plan.warmupS, p99Ms: w.p99Ms, throughput: w.throughput }));
  const of = (f: (s: SoakSample) => number | null): Array<readonly [number, number]> =>
    samples.flatMap((s) => { const v = f(s); return v === null ? [] : [[s.atS, v] as const]; });
  const from = plan.warmupS;
  const trends: Record<SoakSeries, Trend> = {
    rssBytes: trendOf(of((s) => s.rssBytes), from, 'bytes', MEMORY_RULE),
    heapUsedBytes: trendOf(of((s) => s.heapUsedBytes), from, 'bytes', MEMORY_RULE),
    eventLoopP99Ms: trendOf(of((s) => s.eventLoopP99Ms), from, 'ms', LATENCY_RULE),
    // A window's p99 is 0 when no output arrived in it: a stall, which the drain and the loss figures
    // report; a zero is not a latency.
    latencyP99Ms: trendOf(windows.filter((w) => w.throughput > 0).map((w) => [w.atS, w.p99Ms] as const), from, 'ms', LATENCY_RULE),
    throughput: trendOf(windows.map((w) => [w.atS, w.throughput] as const), from, 'events/s', REPORTED_ONLY),
    lag: trendOf(of((s) => s.lag), from, 'records', REPORTED_ONLY),
  };
  const judged = [trends.rssBytes, trends.heapUsedBytes, trends.eventLoopP99Ms, trends.latencyP99Ms];
  const order: readonly Trend['verdict'][] = ['rising', 'inconclusive', 'too short', 'no data', 'falling', 'flat'];
  const verdict = order.find((v) => judged.some((t) => t.verdict === v)) ?? 'flat';
  return {
    rate: plan.rate,
    durationS: plan.durationS,
    sampleS: plan.sampleS,
    warmupS: plan.warmupS,
    measuredIn: target.sutMetrics === undefined
      ? 'the harness process (embedded target: it is also the generator and the output reader)'
      : 'the system under test\'s own process (child process), scraped from its Prometheus endpoint',
    samples,
    windows,
    trends,
    rules: [MEMORY_RULE.why, LATENCY_RULE.why, 'throughput and lag: reported, not judged (at a fixed offered rate they follow it)'],
    level: totals,
    verdict,
  };
}

async function takeSample(ctx: LevelContext, atS: number, local: ReturnType<typeof monitorEventLoopDelay> | undefined): Promise<SoakSample> {
  const { target } = ctx;
  const lag = target.lag().catch(() => null);
  if (target.sutMetrics !== undefined) {
    const m = await target.sutMetrics();
    return { atS, rssBytes: m?.rssBytes ?? null, heapUsedBytes: m?.heapUsedBytes ?? null, eventLoopP99Ms: m?.eventLoopP99Ms ?? null, lag: await lag };
  }
  const p99 = local === undefined ? null : Math.round(local.percentile(99) / 1e4) / 100;
  local?.reset();
  const memory = process.memoryUsage();
  return { atS, rssBytes: memory.rss, heapUsedBytes: memory.heapUsed, eventLoopP99Ms: p99, lag: await lag };
}
