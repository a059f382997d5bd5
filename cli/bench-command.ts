/**
 * `verdict bench`: the load-test harness. With no flags, a short run (about two minutes): every target,
 * the saturation search from 1000 events/s, a level at half of each saturation rate, and report.json,
 * summary.md and chart.svg under bench/results/<timestamp>/. Kafka targets start the mock broker unless
 * `--brokers` names a cluster.
 */
import { resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_LOG_LEVEL, fraction, positive } from './option-parsers.js';
import { createLogger } from '../core/log.js';
import { defaultPipelinePath } from '../core/paths.js';
import { runBench, type BenchOptions } from '../bench/harness.js';
import { renderMarkdown, writeReport } from '../bench/report.js';
import { DEFAULT_TICK_MS, DEFAULT_WARMUP_S } from '../bench/run-level.js';
import { defaultSaturationOptions } from '../bench/saturation.js';
import { DEFAULT_TARGETS, TARGET_NAMES, type TargetName } from '../bench/targets/target.js';

export function parseTargets(value: string): TargetName[] {
  const names = value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  const known = new Set<string>(TARGET_NAMES);
  const unknown = names.filter((n) => !known.has(n));
  if (unknown.length > 0 || names.length === 0) {
    throw new InvalidArgumentError(`unknown target ${unknown.join(', ') || '(none)'}; targets are ${TARGET_NAMES.join(', ')}`);
  }
  return [...new Set(names)] as TargetName[];
}

/** `<step>=<model id>`, e.g. `gbt=fraud_gbt@2`: the shadow the verdict-embedded-shadow target adds. */
export function parseShadow(value: string): { step: string; model: string } {
  const at = value.indexOf('=');
  const [step, model] = [value.slice(0, at).trim(), value.slice(at + 1).trim()];
  if (at < 1 || step.length === 0 || model.length === 0) throw new InvalidArgumentError('shadow must be <step>=<model id>, e.g. gbt=fraud_gbt@2');
  return { step, model };
}

export function parseRates(value: string): number[] {
  const rates = value.split(',').map((s) => Number(s.trim()));
  if (rates.length === 0 || rates.some((r) => !Number.isFinite(r) || r <= 0)) throw new InvalidArgumentError('rates must be positive numbers, comma-separated');
  return rates;
}

/** `factor:everyMs:lengthMs`, e.g. `3:5000:500`: every 5 s, 500 ms at three times the rate. */
export function parseBurst(value: string): { factor: number; everyMs: number; lengthMs: number } {
  const parts = value.split(':').map(Number);
  const [factor, everyMs, lengthMs] = parts;
  if (parts.length !== 3 || factor === undefined || everyMs === undefined || lengthMs === undefined
    || !(factor > 0) || !(everyMs > 0) || !(lengthMs > 0) || lengthMs > everyMs) {
    throw new InvalidArgumentError('burst must be factor:everyMs:lengthMs with lengthMs ≤ everyMs, e.g. 3:5000:500');
  }
  return { factor, everyMs, lengthMs };
}

function wholeRuns(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 20) throw new InvalidArgumentError('repeat must be a whole number in 1..20');
  return n;
}

function wholePartitions(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1024) throw new InvalidArgumentError('overload-partitions must be a whole number in 1..1024');
  return n;
}

interface BenchFlags {
  targets: TargetName[];
  rates?: number[];
  saturate?: boolean;
  duration?: number;
  warmup?: number;
  window?: number;
  sloP99: number;
  startRate: number;
  factor: number;
  maxRate: number;
  bisect: number;
  confirm: number;
  tickMs?: number;
  burst?: { factor: number; everyMs: number; lengthMs: number };
  brokers?: string;
  partitions: number;
  seed: number;
  poisonRate: number;
  pipeline: string;
  out?: string;
  quick?: boolean;
  half: boolean;
  overload?: string | boolean;
  overloadRate?: number;
  overloadDuration: number;
  overloadPartitions?: number;
  shadow?: { step: string; model: string };
  soak?: number;
  soakRate?: number;
  soakSample?: number;
  soakWarmup?: number;
  repeat?: number;
  /** Whether --targets was given (set by the action): a soak alone runs verdict-kafka only. */
  targetsGiven?: boolean;
}

export function benchCommand(): Command {
  return new Command('bench')
    .description('load-test Verdict and its baselines, open loop; writes report.json, summary.md and chart.svg')
    .addOption(new Option('--targets <list>', `comma-separated: ${TARGET_NAMES.join(',')}`).argParser(parseTargets).default([...DEFAULT_TARGETS], DEFAULT_TARGETS.join(',')))
    .option('--rates <list>', 'fixed offered rates, events/s (instead of the saturation search)', parseRates)
    .option('--saturate', 'search for the maximum sustainable rate (the default without --rates)')
    .option('--duration <s>', 'measured seconds per level (default 2; 1 with --quick)', positive('duration'))
    .option('--warmup <s>', 'warm-up seconds per level, left out of the figures (default 0.5)', positive('warmup'))
    .option('--window <s>', 'measurement window, seconds (default 0.5, or one burst period)', positive('window'))
    .option('--slo-p99 <ms>', 'latency objective: a level whose p99 exceeds it is not sustainable', positive('slo-p99'), defaultSaturationOptions.sloP99Ms)
    .option('--start-rate <n>', 'first rate of the search, events/s', positive('start-rate'), defaultSaturationOptions.startRate)
    .option('--factor <x>', 'step-up factor of the search', positive('factor'), defaultSaturationOptions.factor)
    .option('--max-rate <n>', 'highest rate the search tries', positive('max-rate'), defaultSaturationOptions.maxRate)
    .option('--bisect <n>', 'bisections between the last good and first bad rate', (v) => Math.floor(Number(v)), defaultSaturationOptions.bisectSteps)
    .option('--confirm <n>', 'run a failing rate up to n more times before it counts as failed (noisy machines)', (v) => Math.max(0, Math.floor(Number(v))), defaultSaturationOptions.confirmFailures)
    .option('--tick-ms <ms>', 'how often the generator sends what has fallen due (default 2 ms embedded, 10 ms Kafka)', positive('tick-ms'))
    .option('--burst <f:every:len>', 'bursts: rate × f for len ms every `every` ms', parseBurst)
    .option('--brokers <list>', 'an existing Kafka cluster (host:port,...); default: the embedded mock broker')
    .option('--partitions <n>', 'input partitions', positive('partitions'), 4)
    .option('--seed <n>', 'generator seed', positive('seed'), 42)
    .option('--poison-rate <p>', 'share of malformed records', fraction, 0.001)
    .option('--pipeline <file>', 'pipeline YAML', defaultPipelinePath)
    .option('--shadow <step=model>', 'the shadow the verdict-embedded-shadow target adds to a step (default: the first step, shadowed by its own model id)', parseShadow)
    .option('--out <dir>', 'output directory (default bench/results/<timestamp>)')
    .option('--quick', 'a few seconds per target: rates 200,500, 1 s levels (a smoke run)')
    .option('--no-half', 'skip the level at half the saturation rate')
    .option('--repeat <n>', 'run every target n times, interleaved (every other run in reverse order), and report the medians (not with --overload or --soak)', wholeRuns)
    .addOption(new Option('--overload [target]', 'then run the target at 2× its saturation rate, then no load until caught up').preset('verdict-kafka'))
    .option('--overload-rate <n>', 'overload rate instead of 2× saturation', positive('overload-rate'))
    .option('--overload-duration <s>', 'seconds of overload', positive('overload-duration'), 60)
    .option('--overload-partitions <n>', 'partitions of the overload target, for all its levels (the mock broker keeps 5 MiB per partition: a long backlog needs many)', wholePartitions)
    .option('--soak <minutes>', 'a steady run at half the saturation rate (searched first) for this long, sampling memory, event-loop delay and p99 latency; reports their slopes and soak.svg. Runs the first of --targets (default: verdict-kafka alone)', positive('soak'))
    .option('--soak-rate <n>', 'the soak\'s rate instead of half the saturation rate (no search then)', positive('soak-rate'))
    .option('--soak-sample <s>', 'sampling interval and latency window of the soak (default 10 s; shorter for soaks under 200 s)', positive('soak-sample'))
    .option('--soak-warmup <s>', 'first seconds of the soak left out of the slopes (default 10% of it, at most 300 s)', positive('soak-warmup'))
    .action(async (flags: BenchFlags, cmd: Command) => {
      const logLevel = cmd.optsWithGlobals<{ logLevel?: string }>().logLevel ?? DEFAULT_LOG_LEVEL;
      const logger = createLogger({ level: logLevel });
      const options = benchOptions({ ...flags, targetsGiven: cmd.getOptionValueSource('targets') !== 'default' }, process.argv.slice(2).join(' '), logLevel);
      const report = await runBench({ ...options, logger, progress: process.stderr });
      const stamp = report.startedAt.replace(/[:.]/g, '-');
      const written = await writeReport(report, resolve(flags.out ?? `bench/results/${stamp}`));
      process.stdout.write(`${renderMarkdown(report)}\nWrote ${written.json}\n      ${written.markdown}\n      ${written.chart}\n${written.soakChart === undefined ? '' : `      ${written.soakChart}\n`}`);
      if (report.targets.some((t) => t.status === 'failed')) process.exitCode = 1;
    });
}

/** The flags, defaulted into harness options; `--quick` shrinks everything to a smoke run. */
export function benchOptions(flags: BenchFlags, command: string, logLevel = DEFAULT_LOG_LEVEL): Omit<BenchOptions, 'logger' | 'progress'> {
  const quick = flags.quick === true;
  const overloadTarget = flags.overload === undefined || flags.overload === false ? undefined
    : flags.overload === true ? 'verdict-kafka' : parseTargets(flags.overload)[0];
  // A soak alone is about the product: verdict-kafka, unless --targets says otherwise (it soaks the first).
  const chosen = flags.soak !== undefined && flags.targetsGiven !== true ? ['verdict-kafka' as const] : flags.targets;
  const soakTarget = flags.soak === undefined ? undefined : chosen[0];
  const targets = overloadTarget !== undefined && !chosen.includes(overloadTarget) ? [...chosen, overloadTarget] : chosen;
  const rates = flags.rates ?? (quick && flags.saturate !== true ? [200, 500] : undefined);
  // Absent: one run (no medians to take).
  const repeat = flags.repeat;
  if (repeat !== undefined && repeat > 1 && (overloadTarget !== undefined || soakTarget !== undefined)) throw new InvalidArgumentError('--repeat measures levels only: run --overload and --soak without it');
  return {
    targets,
    ...(rates === undefined ? {} : { rates }),
    saturation: {
      ...defaultSaturationOptions,
      sloP99Ms: flags.sloP99, startRate: flags.startRate, factor: flags.factor, maxRate: flags.maxRate, bisectSteps: flags.bisect,
      confirmFailures: flags.confirm,
    },
    durationS: flags.duration ?? (quick ? 1 : 2),
    warmupS: flags.warmup ?? DEFAULT_WARMUP_S,
    // With bursts, a window spans a whole burst period, so windows of a steady system agree.
    windowS: flags.window ?? (flags.burst === undefined ? 0.5 : Math.max(0.5, flags.burst.everyMs / 1000)),
    ...(flags.burst === undefined ? {} : { burst: flags.burst }),
    maxBacklogS: 3,
    drainTimeoutS: 30,
    drainIdleS: 5,
    tickMs: { embedded: flags.tickMs ?? DEFAULT_TICK_MS.embedded, kafka: flags.tickMs ?? DEFAULT_TICK_MS.kafka },
    halfSaturation: flags.half && !quick && soakTarget === undefined,
    pipelinePath: resolve(flags.pipeline),
    partitions: flags.partitions,
    seed: flags.seed,
    poolSize: 20_000,
    poisonRate: flags.poisonRate,
    ...(flags.brokers === undefined ? {} : { brokers: flags.brokers.split(',').map((s) => s.trim()) }),
    ...(flags.shadow === undefined ? {} : { shadow: flags.shadow }),
    primeEvents: 20,
    primeTimeoutS: 60,
    targetWarmup: { rate: 2_000, durationS: quick ? 0 : 3 },
    ...(overloadTarget === undefined ? {} : {
      overload: {
        target: overloadTarget,
        durationS: flags.overloadDuration,
        catchUpTimeoutS: Math.max(60, flags.overloadDuration * 3),
        // Catching up, a consumer outputs continuously; 20 s of nothing is a stuck system (a rebalance
        // against the mock broker takes about 3 s).
        stallS: 20,
        ...(flags.overloadPartitions === undefined ? {} : { partitions: flags.overloadPartitions }),
        ...(flags.overloadRate === undefined ? {} : { rate: flags.overloadRate }),
      },
    }),
    ...(soakTarget === undefined || flags.soak === undefined ? {} : { soak: soakOptions(soakTarget, flags.soak * 60, flags) }),
    ...(repeat !== undefined && repeat > 1 ? { repeat } : {}),
    command: `verdict ${command}`.trim(),
    logLevel,
  };
}

/**
 * The soak's settings: samples every 10 s (a 30-minute soak gets 180), fewer for short soaks so they still
 * get about 20; the first 10% (at most 5 minutes) left out of the slopes, while V8 sizes its heap.
 */
function soakOptions(target: TargetName, durationS: number, flags: BenchFlags): NonNullable<BenchOptions['soak']> {
  const sampleS = flags.soakSample ?? Math.min(10, Math.max(0.5, durationS / 20));
  const warmupS = Math.min(flags.soakWarmup ?? Math.min(300, durationS / 10), durationS / 2);
  return { target, durationS, sampleS, warmupS, ...(flags.soakRate === undefined ? {} : { rate: flags.soakRate }) };
}
