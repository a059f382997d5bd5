/**
 * `verdict bench --soak`: the slope rule on made-up series, the Prometheus scrape the harness reads, and a
 * few-second smoke soak of verdict-kafka against the mock broker that checks the report's shape (slopes,
 * samples from the system under test's own endpoint, the chart file) and its accounting. No figure here is
 * held against a wall-clock threshold: the soak's verdicts are for people, not for CI.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { benchOptions, parseTargets } from '../cli/bench-command.js';
import { defaultPipelinePath } from '../core/paths.js';
import { runBench } from '../bench/harness.js';
import { renderMarkdown, writeReport } from '../bench/report.js';
import { defaultSaturationOptions } from '../bench/saturation.js';
import { parsePrometheus, sutMetricsOf } from '../bench/sut-metrics.js';
import { fitLine, LATENCY_RULE, MEMORY_RULE, trendOf } from '../bench/soak-trend.js';

const MiB = 2 ** 20;
/** One sample every 10 s for 30 minutes. */
const series = (f: (s: number, i: number) => number): Array<readonly [number, number]> => Array.from({ length: 180 }, (_, i) => [(i + 1) * 10, f((i + 1) * 10, i)] as const);
/** Deterministic noise in [-1, 1]. */
const noise = (i: number): number => Math.sin(i * 12.9898) * 0.999;

describe('soak slopes', () => {
  test('the fitted line of a straight series is exact, with no error', () => {
    const fit = fitLine([[0, 1], [1, 3], [2, 5], [3, 7]]);
    assert.equal(fit.slope, 2);
    assert.equal(fit.intercept, 1);
    assert.equal(fit.slopeStdErr, 0);
  });

  test('memory within a few MiB of noise around a level is flat; the warm-up is left out', () => {
    // A steep warm-up (the first 3 minutes) then 200 MiB ± 2 MiB.
    const t = trendOf(series((s, i) => (s < 180 ? s * MiB : 200 * MiB + 2 * MiB * noise(i))), 180, 'bytes', MEMORY_RULE);
    assert.equal(t.verdict, 'flat', t.why);
    assert.equal(t.points, 163);
    assert.ok(Math.abs(t.mean - 200 * MiB) < MiB);
    assert.equal(t.thresholdPerHour, Number((0.01 * Math.abs(t.mean)).toPrecision(3)));
  });

  test('memory that climbs 10 MiB an hour on 200 MiB is rising, and the slope says so in its unit', () => {
    const t = trendOf(series((s, i) => 200 * MiB + (10 * MiB * s) / 3600 + MiB * noise(i)), 180, 'bytes', MEMORY_RULE);
    assert.equal(t.verdict, 'rising', t.why);
    assert.ok(Math.abs(t.slopePerHour / MiB - 10) < 0.5, `${t.slopePerHour / MiB} MiB/h`);
    assert.ok(t.relativeSlopePerHour > 0.04 && t.relativeSlopePerHour < 0.06);
  });

  test('a slope the noise cannot tell from the threshold is inconclusive; too few points are no data', () => {
    // 2 MiB/h (1% of 200 MiB) under ±20 MiB of noise.
    const t = trendOf(series((s, i) => 200 * MiB + (2 * MiB * s) / 3600 + 20 * MiB * noise(i)), 180, 'bytes', MEMORY_RULE);
    assert.equal(t.verdict, 'inconclusive', t.why);
    assert.equal(trendOf([[1, 5], [2, 6]], 0, 'ms', LATENCY_RULE).verdict, 'no data');
    assert.equal(trendOf([], 0, 'ms', LATENCY_RULE).points, 0);
  });

  test('a steeply falling latency is falling, not flat: the run had not settled', () => {
    const t = trendOf(series((s) => 20 - s / 600), 0, 'ms', LATENCY_RULE);
    assert.equal(t.verdict, 'falling', t.why);
    assert.ok(t.slopePerHour < 0);
    // A slight fall within the threshold is flat.
    assert.equal(trendOf(series((s, i) => 20 - s / 360_000 + 0.1 * noise(i)), 0, 'ms', LATENCY_RULE).verdict, 'flat');
  });

  test('a slope per hour is not judged on less than 5 minutes of samples', () => {
    const short = series((s) => 100 + s).filter(([t]) => t < 240);
    const t = trendOf(short, 0, 'bytes', MEMORY_RULE);
    assert.equal(t.verdict, 'too short', t.why);
    assert.ok(t.slopePerHour > 0, 'the slope is still reported');
  });
});

describe('system-under-test scrape', () => {
  test('reads memory, event-loop delay, queues and their bounds from a Prometheus exposition', () => {
    const text = [
      '# HELP verdict_process_resident_memory_bytes Resident memory size in bytes.',
      '# TYPE verdict_process_resident_memory_bytes gauge',
      'verdict_process_resident_memory_bytes 251658240',
      'verdict_nodejs_heap_size_used_bytes 52428800',
      'verdict_nodejs_eventloop_lag_p99_seconds 0.012345',
      'verdict_inflight_events 4100',
      'verdict_admitted_events 512',
      'verdict_paused_partitions 3',
      'verdict_backpressure_pauses_total 17',
      'verdict_backpressure_resumes_total 14',
      'verdict_model_mailbox_depth{model="fraud_gbt@3"} 40',
      'verdict_model_mailbox_capacity{model="fraud_gbt@3"} 8192',
      'verdict_model_mailbox_capacity{model="fraud_mlp@2"} 8192',
      'verdict_stream_bound{bound="max_inflight"} 512',
      'verdict_stream_bound{bound="max_buffered"} 8192',
      'verdict_stream_bound{bound="max_buffered_per_partition"} 4096',
      'verdict_model_batch_size_bucket{le="+Inf",model="a\\"b"} 3',
    ].join('\n');
    const m = sutMetricsOf(text);
    assert.deepEqual(m, {
      rssBytes: 240 * MiB, heapUsedBytes: 50 * MiB, eventLoopP99Ms: 12.35, inflight: 4100, admitted: 512, pausedPartitions: 3,
      backpressurePauses: 17, backpressureResumes: 14,
      mailboxes: { 'fraud_gbt@3': { depth: 40, capacity: 8192 }, 'fraud_mlp@2': { depth: 0, capacity: 8192 } },
      bounds: { maxInflight: 512, maxBuffered: 8192, maxBufferedPerPartition: 4096 },
      // The exposition carries no latency histograms: none read.
      latency: { endToEnd: null, stages: {} },
    });
    assert.deepEqual(parsePrometheus(text).at(-1), { name: 'verdict_model_batch_size_bucket', labels: { le: '+Inf', model: 'a"b' }, value: 3 });
    assert.equal(sutMetricsOf('').rssBytes, null);
  });
});

describe('verdict bench --soak', () => {
  test('flags: a soak alone runs verdict-kafka at half the saturation rate, or the given rate, without the half-rate level', () => {
    const base = { targets: parseTargets('verdict-embedded,fused,verdict-kafka,passthrough,naive'), sloP99: 50, startRate: 1000, factor: 2, maxRate: 1e5, bisect: 1, confirm: 0, partitions: 4, seed: 42, poisonRate: 0.001, pipeline: defaultPipelinePath, half: true, overloadDuration: 60 };
    const soak = benchOptions({ ...base, soak: 30 }, 'bench --soak 30');
    assert.deepEqual(soak.targets, ['verdict-kafka']);
    assert.deepEqual(soak.soak, { target: 'verdict-kafka', durationS: 1800, sampleS: 10, warmupS: 180 });
    assert.equal(soak.halfSaturation, false);
    const chosen = benchOptions({ ...base, targets: parseTargets('passthrough'), targetsGiven: true, soak: 1, soakRate: 300, soakSample: 2 }, 'bench');
    assert.deepEqual(chosen.soak, { target: 'passthrough', durationS: 60, sampleS: 2, warmupS: 6, rate: 300 });
    assert.equal(benchOptions(base, 'bench').soak, undefined);
  });

  test('a few seconds on verdict-kafka: every sample from the system under test, slopes for every series, the chart written', { timeout: 180_000 }, async () => {
    const report = await runBench({
      targets: ['verdict-kafka'],
      saturation: defaultSaturationOptions,
      durationS: 1, warmupS: 0.5, windowS: 0.5, maxBacklogS: 3, drainTimeoutS: 30, drainIdleS: 10, tickMs: { embedded: 2, kafka: 10 },
      halfSaturation: false,
      pipelinePath: defaultPipelinePath, partitions: 2, seed: 5, poolSize: 2000, poisonRate: 0.02,
      primeEvents: 10, primeTimeoutS: 60, targetWarmup: { rate: 100, durationS: 0 },
      soak: { target: 'verdict-kafka', rate: 200, durationS: 6, sampleS: 1, warmupS: 1 },
      command: 'test',
    });
    assert.deepEqual(report.targets.map((t) => [t.name, t.status, t.note]), [['verdict-kafka', 'ok', null]]);
    assert.deepEqual(report.targets[0]?.levels, [], 'a given soak rate needs no search');
    const soak = report.soak;
    assert.ok(soak !== undefined);
    assert.equal(soak.rate, 200);
    // Exact accounting: every event sent has its decision or dead letter.
    assert.equal(soak.level.lost, 0);
    assert.equal(soak.level.decided + soak.level.deadLetters, soak.level.sent);
    assert.ok(soak.level.deadLetters > 0, 'poison records are dead-lettered');
    assert.ok(soak.samples.length >= 3, `${soak.samples.length} samples`);
    for (const s of soak.samples) {
      assert.ok(s.rssBytes !== null && s.rssBytes > 0, 'RSS scraped from the child\'s endpoint');
      assert.ok(s.heapUsedBytes !== null && s.heapUsedBytes > 0 && s.heapUsedBytes < s.rssBytes);
      assert.ok(s.eventLoopP99Ms !== null && s.eventLoopP99Ms >= 0);
    }
    assert.equal(soak.windows.length, 5);
    assert.ok(soak.windows.every((w) => w.atS > soak.warmupS));
    for (const [name, t] of Object.entries(soak.trends)) {
      assert.ok(Number.isFinite(t.slopePerHour), `${name} has a slope`);
      assert.ok(['flat', 'rising', 'falling', 'inconclusive', 'too short', 'no data'].includes(t.verdict));
    }
    assert.equal(soak.trends.rssBytes.unit, 'bytes');
    assert.equal(soak.trends.latencyP99Ms.unit, 'ms');
    assert.ok(soak.trends.rssBytes.points >= 2);

    const dir = await mkdtemp(join(tmpdir(), 'verdict-soak-'));
    try {
      const written = await writeReport(report, dir);
      assert.equal(written.soakChart, join(dir, 'soak.svg'));
      const svg = await readFile(join(dir, 'soak.svg'), 'utf8');
      assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
      assert.doesNotMatch(svg, /NaN|undefined|Infinity/);
      // Four panels: RSS and heap, event-loop delay, latency p99, throughput; each series with its fitted line.
      assert.equal(svg.match(/<polyline /g)?.length, 5);
      assert.equal(svg.match(/stroke-dasharray="6 4"/g)?.length, 5);
      const json = JSON.parse(await readFile(written.json, 'utf8')) as typeof report;
      assert.equal(json.soak?.trends.rssBytes.unit, 'bytes');
      const md = renderMarkdown(report);
      assert.match(md, /## Soak: verdict-kafka at 200\/s/);
      assert.match(md, /\| resident memory \(RSS\) \| [\d,]+ MiB \| [+-][\d,.]+ ± [\d,.]+ MiB\/h \|/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
