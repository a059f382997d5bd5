/**
 * `verdict bench` as a library call: every requested target, one after the other (never two at once: they
 * would compete for the same two cores), on the same pre-generated events, through the same levels or
 * the same saturation search, then the overload check if asked. Returns the report; writing it is
 * report.ts's job.
 */
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { silentLogger, type Logger } from '../core/log.js';
import { EventPool } from './events.js';
import { MOCK_RETENTION_BYTES_PER_PARTITION } from './retention.js';
import { gitInfo, machineInfo } from './machine.js';
import { runOverload } from './overload.js';
import { runSoak } from './soak.js';
import { predictOverload } from './overload-plan.js';
import { Progress, type ProgressSink } from './progress.js';
import { levelAtMax, ratios } from './report.js';
import type { BenchReport, RepeatsReport, ReportedLevel, TargetReport } from './report-types.js';
import { OutputRouter, primeTarget, runLevel, withoutWindows, type LevelContext, type LevelPlan } from './run-level.js';
import { judgeLevel, roundRate, searchSaturation, type SaturationOptions } from './saturation.js';
import { createTarget } from './targets/create-target.js';
import { VERDICT_KAFKA_MAX_BYTES_PER_PARTITION } from './targets/verdict-kafka.js';
import { compileBenchPipeline } from './targets/pipeline.js';
import type { BenchTarget, TargetName } from './targets/target.js';

export interface BenchOptions {
  readonly targets: readonly TargetName[];
  /** Fixed offered rates; absent: the saturation search. */
  readonly rates?: readonly number[];
  readonly saturation: SaturationOptions;
  readonly durationS: number;
  readonly warmupS: number;
  readonly windowS: number;
  readonly burst?: { readonly factor: number; readonly everyMs: number; readonly lengthMs: number };
  readonly maxBacklogS: number;
  readonly drainTimeoutS: number;
  /** See LevelPlan.drainIdleS. */
  readonly drainIdleS: number;
  /**
   * The generator's send interval by transport (see LevelPlan.tickMs). Kafka targets send less often: the
   * mock broker's cost grows with the number of message sets per partition, and each send is one set per
   * partition, so 2 ms ticks would make the broker the bottleneck a few levels into a run.
   */
  readonly tickMs: { readonly embedded: number; readonly kafka: number };
  /** After the search, one more level at half the max sustainable rate: latency with headroom. */
  readonly halfSaturation: boolean;
  readonly pipelinePath: string;
  /** The shadow the verdict-embedded-shadow target adds (see TargetContext.shadow). */
  readonly shadow?: { readonly step: string; readonly model: string };
  readonly partitions: number;
  readonly seed: number;
  readonly poolSize: number;
  readonly poisonRate: number;
  /** An existing Kafka cluster; absent: the mock broker. */
  readonly brokers?: readonly string[];
  /** Events sent (and answered) before a target's first level. */
  readonly primeEvents: number;
  readonly primeTimeoutS: number;
  /**
   * After priming, load the target at `rate` for `durationS`, unmeasured, before its first level: a freshly
   * started system (JIT, worker threads, consumer fetch sizes) would otherwise fail the first level on its
   * cold start and send the search down instead of up. Zero duration: none.
   */
  readonly targetWarmup: { readonly rate: number; readonly durationS: number };
  readonly overload?: OverloadOptions;
  readonly soak?: SoakOptions;
  /**
   * Runs of every target, interleaved (all targets, then all again, every other run in reverse order, so
   * no target always runs first or last); the report adds the medians over the runs. Default 1. Not with
   * an overload or a soak.
   */
  readonly repeat?: number;
  readonly command: string;
  readonly logger?: Logger;
  readonly logLevel?: string;
  readonly progress?: ProgressSink;
}

export interface OverloadOptions {
  readonly target: TargetName;
  /** Absent: twice the target's max sustainable rate. */
  readonly rate?: number;
  readonly durationS: number;
  readonly catchUpTimeoutS: number;
  /** Give up the catch-up after this long without any output. */
  readonly stallS: number;
  /**
   * Input (and output) partitions of the overload target, for all its levels, so its saturation and its
   * overload are measured on the same topics. More partitions hold a longer backlog in the mock broker,
   * whose retention is per partition. Absent: `partitions`.
   */
  readonly partitions?: number;
}

export interface SoakOptions {
  readonly target: TargetName;
  /** Absent: half the target's max sustainable rate, searched first. */
  readonly rate?: number;
  readonly durationS: number;
  readonly sampleS: number;
  /** Left out of the slopes. */
  readonly warmupS: number;
}

/**
 * Input records an embedded log keeps during levels (all partitions together, at least 8,000 a partition).
 * The log lives in the harness process, so every record it keeps is heap that the main thread's garbage
 * collector marks again and again: 100,000 a partition made collections the largest cause of the embedded
 * targets' latency spikes. A level is cut short before its backlog nears this (see `backlogLimit`).
 */
const EMBEDDED_RETENTION_TOTAL = 32_000;
const embeddedRetention = (partitions: number): number => Math.max(8_000, Math.ceil(EMBEDDED_RETENTION_TOTAL / partitions));

const NOTES = [
  'The generator, the output reader and the system under test share the machine: on Kafka targets the system under test runs in a child process of its own, on embedded targets in the harness process. Every figure includes that competition for the cores.',
  'Latency runs from each event\'s intended send time (open-loop schedule) to the moment its output (decision or dead letter) was read from the output topic, so stalls count (no coordinated omission). Events intended during the warm-up are excluded.',
  'Cores per level (the Every level table): the whole machine\'s busy cores, the harness process\'s (on embedded targets it is also the system under test), and the Kafka system under test\'s own process. Machine cores well above the other two mean other processes competed (on Kafka, the mock broker is one of them). – is a figure not measured: a level cut short before its warm-up ended has no measured period.',
  'Lag: embedded Verdict and Kafka targets report the consumer group\'s uncommitted records; the fused loop reports records not yet pulled (it does not commit).',
  'The generator sends what has fallen due every 2 ms on embedded targets and every 10 ms on Kafka targets (fewer, larger message sets: the mock broker scans message sets linearly, so its cost grows with their number). That wait counts as latency: on average half a tick.',
  'passthrough forwards every record (poison included) to the output topic, so it reports no dead letters.',
  'Against the mock broker (librdkafka\'s mock cluster, one broker, loopback) absolute Kafka figures are not those of a real cluster; the ratios between Kafka targets are the comparable part. The mock keeps only the newest 5 MiB of record batches per partition, read or not: a backlog beyond that is deleted before it is read. The harness tells those records apart (their offsets fall below the log start offset) and reports them as deleted by broker retention, not as lost by the system under test; a drain stops once every unanswered event is such a record.',
];

export async function runBench(options: BenchOptions): Promise<BenchReport> {
  const startedAt = new Date().toISOString();
  const logger = options.logger ?? silentLogger;
  const progress = new Progress(options.progress);
  const machine = machineInfo();
  const git = gitInfo();
  const pipeline = await compileBenchPipeline(options.pipelinePath, logger);
  const pool = new EventPool({ seed: options.seed, size: options.poolSize, poisonRate: options.poisonRate });
  const runId = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
  const targetContext = {
    pipelinePath: options.pipelinePath, partitions: options.partitions, runId, logger, logLevel: options.logLevel ?? 'warn',
    ...(options.brokers === undefined ? {} : { brokers: options.brokers }),
    ...(options.shadow === undefined ? {} : { shadow: options.shadow }),
  };
  const plan = (offeredRate: number, transport: BenchTarget['transport']): LevelPlan => ({
    offeredRate, durationS: options.durationS, warmupS: options.warmupS, windowS: options.windowS,
    maxBacklogS: options.maxBacklogS, drainTimeoutS: options.drainTimeoutS, drainIdleS: options.drainIdleS, tickMs: options.tickMs[transport],
    ...(options.burst === undefined ? {} : { burst: options.burst }),
  });

  const repeat = options.repeat ?? 1;
  if (!Number.isInteger(repeat) || repeat < 1) throw new RangeError(`repeat must be a whole number ≥ 1, not ${repeat}`);
  if (repeat > 1 && (options.overload !== undefined || options.soak !== undefined)) throw new RangeError('repeat runs measure levels only: not with an overload or a soak');
  const runs: Array<{ readonly name: TargetName; readonly run: number }> = [];
  for (let run = 1; run <= repeat; run++) {
    for (const name of run % 2 === 0 ? [...options.targets].reverse() : options.targets) runs.push({ name, run });
  }

  const reports: TargetReport[] = [];
  let overload: BenchReport['overload'] = null;
  let soak: BenchReport['soak'];
  for (const { name, run } of runs) {
    // A level's backlog is bounded (maxBacklogS), an overload's is not: keep everything for that one.
    const overloaded = options.overload?.target === name ? options.overload : undefined;
    const soaked = options.soak?.target === name ? options.soak : undefined;
    // A soak at a given rate needs no search (unless an overload on the same target needs its rate).
    const searching = options.rates === undefined && !(soaked?.rate !== undefined && overloaded === undefined);
    const partitions = overloaded?.partitions ?? options.partitions;
    const retention = overloaded !== undefined ? Number.MAX_SAFE_INTEGER : embeddedRetention(partitions);
    // Each run its own topics and groups (an external cluster keeps the last run's).
    const target = createTarget(name, { ...targetContext, ...(repeat > 1 ? { runId: `${runId}r${run}` } : {}), partitions, embeddedRetention: retention });
    progress.line(`${name}${repeat > 1 ? ` (run ${run} of ${repeat})` : ''}: ${target.description}`);
    const outputs = new OutputRouter();
    const ctx: LevelContext = {
      target, outputs, events: pool.sequence('e'),
      // A third of what the log holds: keys are skewed, and the busiest partition's share of a backlog (up to
      // 1.5× an even one) then stays at half its retention.
      ...(target.transport === 'embedded' && overloaded === undefined ? { backlogLimit: Math.floor((retention * partitions) / 3) } : {}),
      onWindow: (w, i, p) => progress.window(name, p, i, w),
    };
    const levels: ReportedLevel[] = [];
    let report: TargetReport | undefined;
    try {
      await startTarget(target, outputs, options, ctx);
      let max: number | null = null;
      let firstFailing: number | null = null;
      let limitedBy: TargetReport['limitedBy'] = [];
      if (searching) {
        const search = await searchSaturation((rate) => runLevel(plan(rate, target.transport), ctx), options.saturation, (judged) => {
          progress.level(name, judged);
          levels.push({ ...judged.result, judgement: judged.judgement, role: 'search' });
        });
        max = search.maxSustainableRate;
        firstFailing = search.firstFailingRate;
        limitedBy = search.limitedBy;
      } else {
        for (const rate of options.rates ?? []) {
          const result = await runLevel(plan(rate, target.transport), ctx);
          const judgement = judgeLevel(result, options.saturation);
          progress.level(name, { result, judgement });
          levels.push({ ...result, judgement, role: 'fixed' });
          if (judgement.sustainable && (max === null || rate > max)) max = rate;
          if (!judgement.sustainable && (firstFailing === null || rate < firstFailing) && (max === null || rate > max)) {
            firstFailing = rate;
            limitedBy = judgement.reasons;
          }
        }
      }
      let half: ReportedLevel | null = null;
      if (options.halfSaturation && max !== null) {
        const result = await runLevel(plan(Math.max(1, Math.round(max / 2)), target.transport), ctx);
        const judged = { result, judgement: judgeLevel(result, options.saturation) };
        progress.level(`${name} ½`, judged);
        half = { ...result, judgement: judged.judgement, role: 'half-saturation' };
        levels.push(half);
      }
      if (soaked !== undefined) {
        const { rate, rateBasis: rateSource } = soakRate(soaked.rate, max, levels);
        if (rate === null) progress.line(`${name}: ${rateSource}, so no soak`);
        else {
          const tickMs = options.tickMs[target.transport];
          progress.line(`${name}: soak at ${rate}/s (${rateSource}) for ${Math.round(soaked.durationS / 6) / 10} min, sampled every ${soaked.sampleS} s`);
          const result = await runSoak({
            rate, durationS: soaked.durationS, sampleS: soaked.sampleS, warmupS: soaked.warmupS, tickMs,
            // Half the saturation rate keeps up with a wide margin, but on a shared machine a neighbour's burst
            // of work can hold the system under test back for a minute; two minutes of load unanswered is a
            // failed soak (and at most 12,000 records at 100/s: well within the mock broker's retention).
            maxBacklogS: 120, drainTimeoutS: Math.max(60, options.drainTimeoutS), drainIdleS: 20, note: (t) => progress.line(t),
          }, withoutWindows(ctx));
          soak = { target: name, rateSource, partitions, tickMs, ...result };
        }
      }
      if (overloaded !== undefined) {
        const { rate, rateBasis } = overloadRate(overloaded.rate, max, levels);
        if (rate === null) progress.line(`${name}: ${rateBasis}, so no overload check`);
        else {
          const tickMs = options.tickMs[target.transport];
          const fit = predictOverload({
            rate, durationS: overloaded.durationS, tickMs, partitions, pool,
            ...consumption(levels),
            retentionBytesPerPartition: target.transport === 'kafka' && options.brokers === undefined ? MOCK_RETENTION_BYTES_PER_PARTITION : null,
          });
          progress.line(`${name}: overload at ${rate}/s (${rateBasis}) for ${overloaded.durationS} s on ${partitions} partitions, then no load until caught up`);
          for (const l of fit.lines) progress.line(`  ${l}`);
          const embedded = target.transport === 'embedded';
          const rssOf = embedded
            ? 'the harness process: generator, output reader and the embedded log, which keeps every record of the backlog, so it grows with the lag whatever Verdict does'
            : 'the system under test\'s own process (child process)';
          const result = await runOverload({
            rate, durationS: overloaded.durationS, catchUpTimeoutS: overloaded.catchUpTimeoutS, stallS: overloaded.stallS, sampleS: 1, tickMs,
            recordBytes: fit.recordBytes, note: (t) => progress.line(t),
            inflightAllowance: Math.ceil(VERDICT_KAFKA_MAX_BYTES_PER_PARTITION / fit.recordBytes),
            retentionBytesPerPartition: target.transport === 'kafka' && options.brokers === undefined ? MOCK_RETENTION_BYTES_PER_PARTITION : null,
            ...(embedded ? { memoryNotJudged: 'the embedded log lives in the same process and keeps the whole backlog: this memory cannot show Verdict\'s backpressure (run the overload on verdict-kafka)' } : {}),
          }, ctx);
          overload = { target: name, rateBasis, rssOf, partitions, tickMs, recordBytes: fit.recordBytes, prediction: fit.prediction, worstCase: fit.worstCase, predictionNote: fit.note, ...result };
        }
      }
      report = {
        name, transport: target.transport, description: target.description, status: 'ok', note: null, settings: target.settings(),
        levels, maxSustainableRate: max, firstFailingRate: firstFailing, limitedBy, halfSaturation: half,
        ...(repeat > 1 ? { run } : {}),
      };
    } catch (err) {
      const skipped = isUnavailableBroker(err) || isUnavailableTarget(err);
      const note = isUnavailableBroker(err)
        ? `Kafka targets need the mock broker (librdkafka-dev: scripts/ensure-system-deps.sh) or --brokers: ${(err as Error).message}`
        : (err as Error).message;
      progress.line(`${name}: ${skipped ? 'skipped' : 'FAILED'}: ${note}`);
      report = {
        name, transport: target.transport, description: target.description, status: skipped ? 'skipped' : 'failed', note,
        settings: safeSettings(target), levels, maxSustainableRate: null, firstFailingRate: null, limitedBy: [], halfSaturation: null,
        ...(repeat > 1 ? { run } : {}),
      };
    } finally {
      await target.stop().catch((err: unknown) => logger.warn({ err, target: name }, 'target stop failed'));
    }
    reports.push(report);
  }

  const b = options.burst;
  const repeats = repeat > 1 ? repeatsOf(options.targets, reports, repeat) : undefined;
  const medianRate = (n: TargetName): number | null => repeats?.targets.find((t) => t.name === n)?.medianMaxSustainableRate ?? null;
  return {
    tool: 'verdict bench',
    startedAt,
    finishedAt: new Date().toISOString(),
    machine,
    git,
    notes: NOTES,
    config: {
      command: options.command,
      pipeline: { path: options.pipelinePath, name: pipeline.name, steps: pipeline.steps.map((s) => `${s.id}=${s.modelId}`) },
      mode: options.rates === undefined ? 'saturate' : 'rates',
      rates: options.rates ?? null,
      saturation: options.rates === undefined ? { ...options.saturation } : null,
      durationS: options.durationS,
      warmupS: options.warmupS,
      windowS: options.windowS,
      generatorTickMs: { ...options.tickMs },
      burst: b === undefined ? null : { ...b },
      sloP99Ms: options.saturation.sloP99Ms,
      partitions: options.partitions,
      overloadPartitions: options.overload?.partitions ?? null,
      seed: options.seed,
      poolSize: options.poolSize,
      poisonRate: options.poisonRate,
      kafka: options.brokers === undefined ? 'mock broker (librdkafka mock cluster, 1 broker, loopback)' : options.brokers.join(','),
      targets: options.targets,
      repeat,
    },
    targets: reports,
    ...(repeats === undefined ? {} : { repeats }),
    ratios: repeats === undefined ? ratios(reports) : ratios(reports, medianRate),
    overload,
    ...(soak === undefined ? {} : { soak }),
    loadAverageAtEnd: loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

async function startTarget(target: BenchTarget, outputs: OutputRouter, options: BenchOptions, ctx: LevelContext): Promise<void> {
  await target.start(outputs.listener);
  // Consumers joined, sessions loaded, first batches run: only then is anything timed.
  const primed = await primeTarget(ctx, options.primeEvents, options.primeTimeoutS);
  if (primed.answered < primed.sent) {
    throw new Error(`${target.name} answered ${primed.answered} of ${primed.sent} priming events within ${options.primeTimeoutS} s`);
  }
  const { rate, durationS } = options.targetWarmup;
  if (durationS > 0 && rate > 0) {
    await runLevel({
      offeredRate: rate, durationS, warmupS: 0, windowS: durationS, maxBacklogS: Infinity,
      drainTimeoutS: options.drainTimeoutS, tickMs: options.tickMs[target.transport],
    }, withoutWindows(ctx));
  }
}

/**
 * The overload's rate: given, else twice the max sustainable rate. On a machine so busy that no level meets
 * the latency objective there is no such rate, yet the overload's questions (backpressure, memory, loss,
 * catch-up) do not depend on latency: it then runs at twice the most the target achieved in any level, which
 * is more than it can consume in the same conditions. Null when no level ran.
 */
export function overloadRate(given: number | undefined, max: number | null, levels: readonly ReportedLevel[]): { rate: number | null; rateBasis: string } {
  if (given !== undefined) return { rate: given, rateBasis: 'given (--overload-rate)' };
  if (max !== null) return { rate: 2 * max, rateBasis: `2× the max sustainable rate, ${max}/s` };
  const achieved = Math.max(0, ...levels.map((l) => l.achievedRate));
  if (achieved <= 0) return { rate: null, rateBasis: 'no sustainable rate and no throughput measured' };
  const rate = roundRate(2 * achieved);
  return { rate, rateBasis: `no level met the latency objective: 2× the highest throughput achieved in a level, ${Math.round(achieved)}/s` };
}

/**
 * The soak's rate: given, else half the max sustainable rate; on a machine too busy for any level to meet
 * the latency objective, half the highest throughput a level achieved (as for the overload). Null when no
 * level ran.
 */
export function soakRate(given: number | undefined, max: number | null, levels: readonly ReportedLevel[]): { rate: number | null; rateBasis: string } {
  if (given !== undefined) return { rate: given, rateBasis: 'given (--soak-rate)' };
  if (max !== null) return { rate: Math.max(1, Math.round(max / 2)), rateBasis: `half the max sustainable rate found in this run, ${max}/s` };
  const achieved = Math.max(0, ...levels.map((l) => l.achievedRate));
  if (achieved <= 0) return { rate: null, rateBasis: 'no sustainable rate and no throughput measured' };
  return { rate: roundRate(achieved / 2), rateBasis: `no level met the latency objective: half the highest throughput achieved in a level, ${Math.round(achieved)}/s` };
}

/**
 * What the target will consume during the overload, for the backlog forecast: the fastest it consumed in
 * this run's levels. A level it sustained only bounds its capacity from below.
 */
function consumption(levels: readonly ReportedLevel[]): { consumeRate: number; consumeSource: string } {
  const best = levels.reduce<ReportedLevel | undefined>((a, l) => (a === undefined || l.achievedRate > a.achievedRate ? l : a), undefined);
  if (best === undefined) return { consumeRate: 0, consumeSource: 'no level ran: assuming nothing is consumed' };
  return {
    consumeRate: best.achievedRate,
    consumeSource: best.judgement.sustainable
      ? `achieved at ${best.offeredRate}/s, which it sustained: its capacity is higher, so this forecast is pessimistic`
      : `achieved at ${best.offeredRate}/s, which it could not sustain: about its capacity`,
  };
}

/** The lower median (an odd count's middle); null for none. */
function median(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  return [...xs].sort((a, b) => a - b)[(xs.length - 1) >> 1] ?? null;
}

/**
 * Medians over the runs of each target. A run that ran (status ok) without a sustainable rate counts as 0;
 * skipped and failed runs are left out. CPU per event: at each run's highest sustainable level.
 */
export function repeatsOf(names: readonly TargetName[], reports: readonly TargetReport[], runs: number): RepeatsReport {
  return {
    runs,
    targets: names.map((name) => {
      const mine = reports.filter((r) => r.name === name).sort((a, b) => (a.run ?? 0) - (b.run ?? 0));
      const ok = mine.filter((r) => r.status === 'ok');
      const atMax = ok.map(levelAtMax).filter((l): l is ReportedLevel => l !== null);
      const figures = (pick: (l: ReportedLevel) => number | null): number[] => atMax.map(pick).filter((x): x is number => x !== null);
      return {
        name,
        maxSustainableRates: mine.map((r) => r.maxSustainableRate),
        medianMaxSustainableRate: median(ok.map((r) => r.maxSustainableRate ?? 0)),
        medianCpuPerEventAtMax: {
          processUs: median(figures((l) => l.cpuPerEvent.processUs)),
          mainThreadUs: median(figures((l) => l.cpuPerEvent.mainThreadUs)),
        },
      };
    }),
  };
}

/** The target needs what this machine does not have (the librdkafka producer): skipped, not failed. */
function isUnavailableTarget(err: unknown): boolean {
  return err instanceof Error && err.name === 'TargetUnavailableError';
}

/** The mock broker could not be built or started: Kafka targets are skipped, not failed. */
function isUnavailableBroker(err: unknown): boolean {
  return err instanceof Error && err.name === 'MockBrokerError';
}

function safeSettings(target: BenchTarget): Readonly<Record<string, unknown>> {
  try {
    return target.settings();
  } catch {
    return {};
  }
}
