/**
 * Verdict's share of the bench latency: Prometheus histograms read back from a real prom-client
 * exposition (Verdict's own metric names), their differences and quantiles as Prometheus estimates them,
 * the split's arithmetic and its Markdown row; then a real verdict-kafka level on the mock broker whose
 * report carries the split. Nothing asserts speed.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Histogram, Registry } from 'prom-client';
import { runBench } from '../bench/harness.js';
import { verdictShare } from '../bench/latency-share.js';
import { latencyShareMarkdown, latencyShareRow } from '../bench/latency-share-report.js';
import { renderMarkdown } from '../bench/report.js';
import { defaultSaturationOptions } from '../bench/saturation.js';
import { histogramDelta, histogramOf, histogramQuantile, type PromHistogram } from '../bench/sut-histograms.js';
import { parsePrometheus, sutMetricsOf } from '../bench/sut-metrics.js';
import { createMetrics } from '../core/metrics.js';
import { defaultPipelinePath } from '../core/paths.js';

/** Cumulative buckets from per-bucket counts, as Prometheus exposes them. */
function cumulative(bounds: readonly number[], counts: readonly number[], sum: number): PromHistogram {
  let running = 0;
  const buckets = bounds.map((le, i) => ({ le, count: (running += counts[i] ?? 0) }));
  return { buckets, count: running, sum };
}

describe('Prometheus histograms from the system under test', () => {
  test('read from a real exposition, summed over label sets, and only the labels asked for', async () => {
    const registry = new Registry();
    const h = new Histogram({ name: 'x_seconds', help: 'h', labelNames: ['stage'], buckets: [0.001, 0.01], registers: [registry] });
    h.observe({ stage: 'a' }, 0.0005);
    h.observe({ stage: 'a' }, 0.005);
    h.observe({ stage: 'b' }, 0.005);
    h.observe({ stage: 'b' }, 2);
    const samples = parsePrometheus(await registry.metrics());
    const all = histogramOf(samples, 'x_seconds');
    assert.ok(all !== null);
    assert.deepEqual(all.buckets, [{ le: 0.001, count: 1 }, { le: 0.01, count: 3 }, { le: Infinity, count: 4 }]);
    assert.equal(all.count, 4);
    assert.ok(Math.abs(all.sum - 2.0105) < 1e-9);
    assert.deepEqual(histogramOf(samples, 'x_seconds', { stage: 'a' })?.buckets, [{ le: 0.001, count: 1 }, { le: 0.01, count: 2 }, { le: Infinity, count: 2 }]);
    assert.equal(histogramOf(samples, 'missing_seconds'), null);
  });

  test('Verdict\'s own metric names: the end-to-end histogram and each stage\'s, as the daemon exports them', async () => {
    const metrics = createMetrics();
    metrics.endToEndSeconds.observe({ pipeline: 'p' }, 0.002);
    metrics.endToEndSeconds.observe({ pipeline: 'p' }, 0.004);
    for (const stage of ['ingest', 'models', 'decision']) metrics.stageSeconds.observe({ pipeline: 'p', stage }, 0.0002);
    const latency = sutMetricsOf(await metrics.registry.metrics()).latency;
    assert.equal(latency?.endToEnd?.count, 2);
    assert.deepEqual(Object.keys(latency?.stages ?? {}).sort(), ['decision', 'ingest', 'models']);
    assert.equal(latency?.stages['models']?.count, 1);
    // A baseline's endpoint (process metrics only) has none.
    assert.deepEqual(sutMetricsOf('verdict_process_resident_memory_bytes 1\n').latency, { endToEnd: null, stages: {} });
  });

  test('quantiles interpolate linearly within the bucket, as histogram_quantile does', () => {
    const h = cumulative([0.001, 0.0025, 0.005, Infinity], [0, 10, 10, 0], 0.05);
    assert.equal(histogramQuantile(h, 0.5), 0.0025);
    assert.ok(Math.abs((histogramQuantile(h, 0.25) ?? 0) - 0.00175) < 1e-12);
    assert.ok(Math.abs((histogramQuantile(h, 0.99) ?? 0) - 0.00495) < 1e-12);
    // A rank in the +Inf bucket: the highest finite bound (nothing better is known).
    assert.equal(histogramQuantile(cumulative([0.001, Infinity], [1, 9], 20), 0.5), 0.001);
    // Empty buckets below the rank are skipped, not interpolated across.
    assert.ok(Math.abs((histogramQuantile(cumulative([0.001, 0.002, 0.004, Infinity], [0, 0, 4, 0], 0.01), 0.5) ?? 0) - 0.003) < 1e-12);
    assert.equal(histogramQuantile(cumulative([0.001, Infinity], [0, 0], 0), 0.5), null);
  });

  test('a level\'s histogram is the later scrape less the earlier one', () => {
    const earlier = cumulative([0.001, 0.01, Infinity], [5, 5, 0], 0.03);
    const later = cumulative([0.001, 0.01, Infinity], [5, 15, 1], 1.1);
    const d = histogramDelta(later, earlier);
    assert.deepEqual(d.buckets.map((b) => b.count), [0, 10, 11]);
    assert.equal(d.count, 11);
    assert.ok(Math.abs(d.sum - 1.07) < 1e-12);
    assert.equal(histogramDelta(later, null), later);
  });
});

describe('the split of a level\'s latency', () => {
  const bounds = [0.001, 0.0025, 0.005, 0.01, Infinity];
  const start = { endToEnd: cumulative(bounds, [3, 0, 0, 0, 0], 0.002), stages: { models: cumulative(bounds, [2, 0, 0, 0, 0], 0.001) } };
  const end = {
    endToEnd: cumulative(bounds, [3, 10, 9, 1, 0], 0.002 + 0.08),
    stages: { models: cumulative(bounds, [6, 0, 0, 0, 0], 0.001 + 0.002), ingest: cumulative(bounds, [4, 0, 0, 0, 0], 0.0008) },
  };

  test('Verdict\'s p50, p99 and mean between the scrapes, the rest against the harness\'s, and the stage means', () => {
    const s = verdictShare({ p50Ms: 10, p99Ms: 40 }, start, end);
    assert.ok(s !== null);
    assert.equal(s.events, 20);
    // In the level: 10 events in (1, 2.5] ms, 9 in (2.5, 5], 1 in (5, 10]. Rank 10 of 20 is the top of the
    // first of those buckets; rank 19.8 is 0.8 of the way through the last one's single event.
    assert.deepEqual(s.inProcess, { p50Ms: 2.5, p99Ms: 9, meanMs: 4 });
    assert.equal(s.restP50Ms, 7.5);
    assert.equal(s.restP99Ms, 31);
    assert.equal(s.shareAtP50, 0.25);
    // Per block: models 4 blocks for 2 ms in the level, ingest 4 for 0.8 ms since the start (no earlier scrape of it).
    assert.deepEqual(s.stageMeanMs, { models: 0.5, ingest: 0.2 });
  });

  test('no split where the system exports no histogram of Verdict\'s, or acknowledged nothing in between', () => {
    assert.equal(verdictShare({ p50Ms: 10, p99Ms: 40 }, null, { endToEnd: null, stages: {} }), null);
    assert.equal(verdictShare({ p50Ms: 10, p99Ms: 40 }, end, end), null);
    assert.equal(verdictShare({ p50Ms: 10, p99Ms: 40 }, null, null), null);
    assert.equal(verdictShare({ p50Ms: 0, p99Ms: 0 }, start, end)?.shareAtP50, null);
  });

  test('one Markdown row per level', () => {
    const s = verdictShare({ p50Ms: 10, p99Ms: 40 }, start, end);
    assert.ok(s !== null);
    assert.equal(latencyShareRow('verdict-kafka', 1000, { p50Ms: 10, p99Ms: 40 }, s),
      '| verdict-kafka | 1,000 | 10.0 / 40.0 | 2.5 / 9.0 (mean 4.0) | 25% | 7.5 / 31.0 | 0.20 / 0.50 / – | 20 |');
  });
});

describe('the split in a real bench run', () => {
  test('verdict-kafka on the mock broker: each level reports Verdict\'s own latency, the rest, and its stages', { timeout: 150_000 }, async () => {
    const report = await runBench({
      targets: ['verdict-kafka'],
      rates: [200],
      saturation: defaultSaturationOptions,
      durationS: 1, warmupS: 0.5, windowS: 0.5, maxBacklogS: 3, drainTimeoutS: 30, drainIdleS: 10, tickMs: { embedded: 2, kafka: 10 },
      halfSaturation: false,
      pipelinePath: defaultPipelinePath, partitions: 2, seed: 13, poolSize: 2000, poisonRate: 0,
      primeEvents: 10, primeTimeoutS: 60, targetWarmup: { rate: 100, durationS: 1 },
      command: 'test',
    });
    const [target] = report.targets;
    assert.equal(target?.status, 'ok', target?.note ?? '');
    const level = target.levels[0];
    assert.ok(level !== undefined);
    assert.equal(level.lost, 0);
    const s = level.verdictShare;
    assert.ok(s !== null && s !== undefined, 'the level has Verdict\'s share');
    // The measured period's events and the drain's; a few of the warm-up's may be acknowledged after its scrape.
    assert.ok(s.events >= level.latency.count && s.events <= level.sent, `${s.events} events between ${level.latency.count} and ${level.sent}`);
    assert.ok(s.inProcess.p50Ms > 0 && s.inProcess.p50Ms <= s.inProcess.p99Ms);
    assert.equal(s.restP50Ms, Math.round((level.latency.p50Ms - s.inProcess.p50Ms) * 100) / 100);
    for (const stage of ['ingest', 'models', 'decision']) assert.ok((s.stageMeanMs[stage] ?? -1) >= 0, stage);
    const section = latencyShareMarkdown(report);
    assert.match(section[0] ?? '', /^## Where the latency goes/);
    assert.ok(renderMarkdown(report).includes(section.at(-1) ?? '∅'), 'the summary carries the section');
    assert.match(section.at(-1) ?? '', /^\| verdict-kafka \| 200 \|/);
  });
});
