/**
 * Verdict's own share of a level's latency, next to what the harness measured end to end.
 *
 * The harness measures each event from its intended send time to its output being read back: the
 * generator's tick, the load producer, the broker, the system's consumer, the system itself, its producer
 * and the output reader. The system under test's own histograms (scraped from its `/metrics`, as an
 * operator's Prometheus would) say how much of that it spent itself: `verdict_end_to_end_seconds`, from a
 * record read to its outcome acknowledged by the brokers (so its own produce round trip is in it), and
 * `verdict_stage_seconds`, each block's time in ingest, models and decision. The rest is transport (broker
 * hops and fetch waits) and harness (tick, reader).
 *
 * The histograms are cumulative: a level's share is the difference of a scrape at the end of its warm-up
 * and one after its drain, so it counts the events the system acknowledged in between. Their percentiles
 * are interpolated within Prometheus buckets (100 µs … 5 s, core/metrics.ts), as `histogram_quantile` does;
 * the means (sum / count) are exact.
 */
import { asyncScheduler, type SchedulerLike } from 'rxjs';
import { runLevel, type LevelContext, type LevelPlan, type LevelResult } from './run-level.js';
import { histogramDelta, histogramQuantile, type SutLatencyHistograms } from './sut-histograms.js';

/** A level's latency split: the harness's end-to-end figures beside the system's own. ms throughout. */
export interface VerdictShare {
  /** Outcomes the system acknowledged between the two scrapes (what its figures cover). */
  readonly events: number;
  /** Read → outcome acknowledged, per event (`verdict_end_to_end_seconds`). */
  readonly inProcess: { readonly p50Ms: number; readonly p99Ms: number; readonly meanMs: number };
  /** Mean time of a block in each stage (`verdict_stage_seconds`). */
  readonly stageMeanMs: Readonly<Record<string, number>>;
  /** The harness's end-to-end figures less the system's, at p50 and p99: transport and harness. */
  readonly restP50Ms: number;
  readonly restP99Ms: number;
  /** The system's p50 over the end-to-end p50, 0..1 (null when that is 0). */
  readonly shareAtP50: number | null;
}

const ms2 = (seconds: number): number => Math.round(seconds * 1e5) / 100;

/**
 * The split of one level: the harness's p50 and p99 (ms) beside the system's own between two scrapes. Null
 * when the system has no end-to-end histogram (a baseline) or acknowledged nothing in between.
 */
export function verdictShare(e2e: { readonly p50Ms: number; readonly p99Ms: number }, start: SutLatencyHistograms | null, end: SutLatencyHistograms | null): VerdictShare | null {
  if (end === null || end.endToEnd === null) return null;
  const own = histogramDelta(end.endToEnd, start?.endToEnd ?? null);
  const p50 = histogramQuantile(own, 0.5);
  const p99 = histogramQuantile(own, 0.99);
  if (own.count <= 0 || p50 === null || p99 === null) return null;
  const stageMeanMs: Record<string, number> = {};
  for (const [stage, h] of Object.entries(end.stages)) {
    const d = histogramDelta(h, start?.stages[stage] ?? null);
    if (d.count > 0) stageMeanMs[stage] = ms2(d.sum / d.count);
  }
  const inProcess = { p50Ms: ms2(p50), p99Ms: ms2(p99), meanMs: ms2(own.sum / own.count) };
  return {
    events: own.count,
    inProcess,
    stageMeanMs,
    restP50Ms: Math.round((e2e.p50Ms - inProcess.p50Ms) * 100) / 100,
    restP99Ms: Math.round((e2e.p99Ms - inProcess.p99Ms) * 100) / 100,
    shareAtP50: e2e.p50Ms > 0 ? Math.round((inProcess.p50Ms / e2e.p50Ms) * 1000) / 1000 : null,
  };
}

/** A level's result with Verdict's share of its latency (null where the target cannot tell: see verdictShare). */
export type SharedLevelResult = LevelResult & { readonly verdictShare: VerdictShare | null };

/**
 * Runs a level as `runLevel` does, scraping the system under test's latency histograms at the end of the
 * warm-up and after the drain. Targets without an endpoint of their own (embedded) get a null share.
 */
export async function runLevelWithShare(plan: LevelPlan, ctx: LevelContext): Promise<SharedLevelResult> {
  const { target } = ctx;
  if (target.sutMetrics === undefined) return { ...(await runLevel(plan, ctx)), verdictShare: null };
  const scrape = async (): Promise<SutLatencyHistograms | null> => (await target.sutMetrics?.().catch(() => null))?.latency ?? null;
  const scheduler: SchedulerLike = ctx.scheduler ?? asyncScheduler;
  // runLevel starts its warm-up clock as it is called, so this fires at the end of its warm-up.
  let start: Promise<SutLatencyHistograms | null> = Promise.resolve(null);
  const timer = scheduler.schedule(() => { start = scrape(); }, plan.warmupS * 1000);
  const result = await runLevel(plan, ctx);
  timer.unsubscribe();
  const [before, after] = [await start, await scrape()];
  return { ...result, verdictShare: verdictShare(result.latency, before, after) };
}
