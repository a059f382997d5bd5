/**
 * `verdict bench`: the saturation search and its stability rule on made-up levels, the report's Markdown
 * and SVG, and a smoke run of the real harness at tiny rates on both embedded targets and one Kafka
 * baseline against the mock broker. Nothing here asserts speed: only that every event is accounted for,
 * that every target saw the same events, and that the report files are complete.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { benchOptions, parseBurst, parseTargets } from '../cli/bench-command.js';
import { defaultPipelinePath } from '../core/paths.js';
import { renderChart } from '../bench/chart.js';
import { EventPool } from '../bench/events.js';
import { runBench } from '../bench/harness.js';
import { renderMarkdown, writeReport } from '../bench/report.js';
import type { BenchReport, TargetReport } from '../bench/report-types.js';
import type { LevelResult, WindowStat } from '../bench/run-level.js';
import { defaultSaturationOptions, isStable, judgeLevel, searchSaturation } from '../bench/saturation.js';

const window = (throughput: number, p99Ms = 5): WindowStat => ({ atS: 0, throughput, p99Ms, lag: 0, backlog: 0, rssBytes: 0 });

/** A level as a system of the given capacity would produce it: keeps up below capacity, falls behind above. */
function levelAt(rate: number, capacity: number): LevelResult {
  const achieved = Math.min(rate, capacity);
  const behind = rate > capacity;
  return {
    offeredRate: rate, offeredMeanRate: rate, achievedRate: achieved, measuredS: 2, sent: rate * 3, decided: rate * 3, deadLetters: 0, lost: 0, duplicates: 0,
    latency: { count: rate * 2, p50Ms: 2, p90Ms: 4, p99Ms: behind ? 900 : 8, p999Ms: behind ? 950 : 9, maxMs: behind ? 1000 : 10, meanMs: 2.5 },
    lagMax: behind ? rate - capacity : 0, backlogMax: 0, rssMaxBytes: 0,
    windows: [window(achieved), window(achieved), window(achieved), window(achieved)],
    lostWhere: null, drainS: 0, drainEnd: { end: 'caught-up', reason: '' }, cutShort: null, cpu: { machineCores: 1, harnessCores: 0.5, sutCores: null }, cpuPerEvent: { processUs: null, mainThreadUs: null },
    eventLoopDelay: { p99Ms: 6, maxMs: 8 },
  };
}

describe('saturation search', () => {
  // Each failing rate once, unless a test asks for confirmation runs.
  const once = { ...defaultSaturationOptions, confirmFailures: 0 };
  test('steps up until a level fails, bisects, and reports the highest sustainable rate', async () => {
    const tried: number[] = [];
    const result = await searchSaturation((rate) => { tried.push(rate); return Promise.resolve(levelAt(rate, 5000)); }, { ...once, bisectSteps: 2 });
    assert.deepEqual(tried, [1000, 2000, 4000, 8000, 5700, 4800]);
    assert.equal(result.maxSustainableRate, 4800);
    assert.equal(result.firstFailingRate, 5700);
    assert.deepEqual(result.limitedBy, ['throughput', 'slo']);
    assert.equal(result.levels.length, 6);
  });

  test('steps down when the first rate already fails', async () => {
    const tried: number[] = [];
    const result = await searchSaturation((rate) => { tried.push(rate); return Promise.resolve(levelAt(rate, 300)); }, { ...once, bisectSteps: 0 });
    assert.deepEqual(tried, [1000, 500, 250]);
    assert.equal(result.maxSustainableRate, 250);
    assert.equal(result.firstFailingRate, 500);
  });

  test('reports no sustainable rate when even the minimum rate fails', async () => {
    const result = await searchSaturation((rate) => Promise.resolve(levelAt(rate, 10)), { ...once, minRate: 200 });
    assert.equal(result.maxSustainableRate, null);
    assert.deepEqual(result.levels.map((l) => l.result.offeredRate), [1000, 500, 250]);
  });

  test('stops at the level budget and says so', async () => {
    const result = await searchSaturation((rate) => Promise.resolve(levelAt(rate, 1e9)), { ...once, maxLevels: 3 });
    assert.equal(result.maxSustainableRate, 4000);
    assert.deepEqual(result.limitedBy, ['max-levels']);
  });

  test('a failing rate is run again when asked, and passes if the second run does', async () => {
    let runs = 0;
    const flaky = (rate: number): Promise<LevelResult> => {
      runs++;
      // The first run at 2000 is disturbed; every later one is clean.
      return Promise.resolve(rate === 2000 && runs === 2 ? { ...levelAt(rate, 5000), lost: 3 } : levelAt(rate, 5000));
    };
    const result = await searchSaturation(flaky, { ...defaultSaturationOptions, confirmFailures: 1, bisectSteps: 0 });
    assert.deepEqual(result.levels.map((l) => [l.result.offeredRate, l.judgement.sustainable]), [
      [1000, true], [2000, false], [2000, true], [4000, true], [8000, false], [8000, false],
    ]);
    assert.equal(result.maxSustainableRate, 4000);
  });

  test('a level whose last windows disagree by more than the tolerance is unstable', () => {
    assert.equal(isStable([1000, 1000, 1050, 980], 3, 0.1), true);
    assert.equal(isStable([1000, 1000, 700, 1000], 3, 0.1), false);
    assert.equal(isStable([1000, 1000], 3, 0.1), false);
    const wobbly = { ...levelAt(1000, 5000), windows: [window(1000), window(1300), window(800), window(1000)] };
    assert.deepEqual(judgeLevel(wobbly, defaultSaturationOptions).reasons, ['unstable']);
  });

  test('a lost event or a cut-short load fails a level whatever its latency', () => {
    const lost = { ...levelAt(1000, 5000), lost: 1 };
    const cut = { ...levelAt(1000, 5000), cutShort: 'backlog' };
    assert.deepEqual(judgeLevel(lost, defaultSaturationOptions).reasons, ['lost']);
    assert.deepEqual(judgeLevel(cut, defaultSaturationOptions).reasons, ['cut-short']);
  });
});

describe('bench inputs', () => {
  test('the event pool replays the same events, with fresh ids, for every sequence', () => {
    const pool = new EventPool({ seed: 7, size: 100, poisonRate: 0.05 });
    const a = pool.sequence('a').take(150);
    const b = pool.sequence('a').take(150);
    assert.deepEqual(a.map((e) => e.value.toString()), b.map((e) => e.value.toString()));
    assert.equal(new Set(a.map((e) => e.id)).size, 150);
    assert.equal(pool.poisonCount, 5);
    const parsed = JSON.parse(a[0]!.value.toString()) as { id: string; amount: number };
    assert.equal(parsed.id, a[0]!.id);
    assert.equal(typeof parsed.amount, 'number');
    assert.equal(a[0]!.headers['bench-id'], a[0]!.id);
  });

  test('flags default to a short saturation run over every target, and --quick to fixed tiny rates', () => {
    const base = { targets: parseTargets('verdict-embedded,fused,verdict-kafka,passthrough,naive'), sloP99: 50, startRate: 1000, factor: 2, maxRate: 1e5, bisect: 1, confirm: 0, partitions: 4, seed: 42, poisonRate: 0.001, pipeline: defaultPipelinePath, half: true, overloadDuration: 60 };
    const normal = benchOptions(base, 'bench');
    assert.equal(normal.rates, undefined);
    assert.equal(normal.targets.length, 5);
    assert.equal(normal.halfSaturation, true);
    const quick = benchOptions({ ...base, quick: true }, 'bench --quick');
    assert.deepEqual(quick.rates, [200, 500]);
    assert.equal(quick.halfSaturation, false);
    assert.deepEqual(parseBurst('3:5000:500'), { factor: 3, everyMs: 5000, lengthMs: 500 });
    assert.throws(() => parseBurst('3:500:5000'), /lengthMs ≤ everyMs/);
    assert.throws(() => parseTargets('verdict,fused'), /unknown target verdict/);
  });

});

describe('verdict bench, smoke run', () => {
  test('runs embedded targets and a Kafka baseline, accounts for every event, and writes the report, summary and chart', { timeout: 120_000 }, async () => {
    const report = await runBench({
      targets: ['verdict-embedded', 'fused', 'passthrough'],
      rates: [100, 200],
      saturation: defaultSaturationOptions,
      durationS: 1, warmupS: 0.5, windowS: 0.5, maxBacklogS: 3, drainTimeoutS: 30, drainIdleS: 10, tickMs: { embedded: 2, kafka: 10 },
      halfSaturation: false,
      pipelinePath: defaultPipelinePath, partitions: 2, seed: 11, poolSize: 2000, poisonRate: 0.02,
      primeEvents: 10, primeTimeoutS: 60, targetWarmup: { rate: 100, durationS: 1 },
      command: 'test',
    });
    assert.deepEqual(report.targets.map((t) => [t.name, t.status, t.note]), [
      ['verdict-embedded', 'ok', null], ['fused', 'ok', null], ['passthrough', 'ok', null],
    ]);
    for (const t of report.targets) {
      assert.deepEqual(t.levels.map((l) => l.offeredRate), [100, 200]);
      for (const l of t.levels) {
        assert.equal(l.lost, 0, `${t.name} at ${l.offeredRate}/s lost events`);
        assert.equal(l.drainEnd.end, 'caught-up');
        assert.equal(l.lostWhere, null, 'nothing lost, so nothing to place');
        assert.equal(l.decided + l.deadLetters, l.sent, `${t.name} at ${l.offeredRate}/s: every sent event has an output`);
        assert.ok(l.latency.count > 0);
        assert.ok(l.latency.p50Ms <= l.latency.p99Ms && l.latency.p99Ms <= l.latency.maxMs);
        assert.equal(l.windows.length, 2);
        assert.ok(l.cpu.machineCores !== null && l.cpu.machineCores >= 0 && l.cpu.harnessCores !== null && l.cpu.harnessCores >= 0);
        assert.equal(l.cpu.sutCores === null, t.transport === 'embedded', 'a Kafka system under test reports its own CPU');
      }
    }
    // Same events for every target: Verdict and the fused loop dead-letter exactly the same records.
    const [verdict, fused, passthrough] = report.targets;
    assert.ok(verdict !== undefined && fused !== undefined && passthrough !== undefined);
    assert.deepEqual(verdict.levels.map((l) => l.sent), fused.levels.map((l) => l.sent));
    assert.deepEqual(verdict.levels.map((l) => l.deadLetters), fused.levels.map((l) => l.deadLetters));
    assert.ok(verdict.levels.some((l) => l.deadLetters > 0), 'poison records reach the dead-letter topic');
    assert.ok(passthrough.levels.every((l) => l.deadLetters === 0), 'passthrough forwards everything');
    assert.equal(report.machine.cpuCount > 0, true);
    assert.match(report.machine.node, /^v\d+/);
    assert.deepEqual(Object.keys(report.ratios), ['verdict-kafka/passthrough', 'verdict-kafka/naive', 'verdict-embedded/fused']);

    const dir = await mkdtemp(join(tmpdir(), 'verdict-bench-'));
    try {
      const written = await writeReport(report, dir);
      const json = JSON.parse(await readFile(written.json, 'utf8')) as BenchReport;
      assert.equal(json.targets.length, 3);
      assert.equal(json.config.mode, 'rates');
      const md = await readFile(written.markdown, 'utf8');
      assert.match(md, /^# verdict bench: card-risk/);
      for (const name of ['verdict-embedded', 'fused', 'passthrough']) assert.match(md, new RegExp(`\\| ${name} \\|`));
      const svg = await readFile(written.chart, 'utf8');
      assertWellFormedSvg(svg);
      // Three series (p50, p99, achieved) per target.
      assert.equal(svg.match(/<polyline /g)?.length, 9);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('report rendering', () => {
  test('the chart and summary of a report with a skipped target stay well formed', () => {
    const level = { ...levelAt(1000, 5000), judgement: { sustainable: true, reasons: [] }, role: 'search' as const };
    const report: BenchReport = {
      tool: 'verdict bench', startedAt: '2025-01-01T00:00:00.000Z', finishedAt: '2025-01-01T00:01:00.000Z',
      machine: { cpuModel: 'Test <CPU> & co', cpuCount: 2, memoryBytes: 2 ** 30, freeMemoryBytes: 2 ** 29, node: 'v20.0.0', v8: '11', os: 'linux', loadAverage: [0, 0, 0] },
      git: { commit: null, dirty: null }, notes: ['n'],
      config: {
        command: 'verdict bench', pipeline: { path: 'p', name: 'card-risk', steps: [] }, mode: 'saturate', rates: null, saturation: null,
        durationS: 2, warmupS: 1, windowS: 0.5, generatorTickMs: { embedded: 2, kafka: 10 }, burst: null, sloP99Ms: 50, partitions: 4, overloadPartitions: null, seed: 1, poolSize: 1, poisonRate: 0, kafka: 'mock', targets: ['fused', 'naive'],
      },
      targets: [
        { name: 'fused', transport: 'embedded', description: 'd', status: 'ok', note: null, settings: {}, levels: [level, { ...level, offeredRate: 2000, achievedRate: 1990 }], maxSustainableRate: 2000, firstFailingRate: null, limitedBy: ['max-rate'], halfSaturation: null },
        { name: 'naive', transport: 'kafka', description: 'd', status: 'skipped', note: 'no broker', settings: {}, levels: [], maxSustainableRate: null, firstFailingRate: null, limitedBy: [], halfSaturation: null },
      ],
      ratios: { 'verdict-embedded/fused': null }, overload: null, loadAverageAtEnd: [0, 0, 0],
    };
    const svg = renderChart(report);
    assertWellFormedSvg(svg);
    assert.match(svg, /Test &lt;CPU&gt; &amp; co/);
    assert.equal(svg.match(/<polyline /g)?.length, 3);
    assert.match(renderMarkdown(report), /\| naive \| kafka \| – \| skipped: no broker \|/);
  });
});

describe('cores in the report', () => {
  test('a level cut short before its warm-up ended shows no core figures, never a negative one', () => {
    const cut = { ...levelAt(8000, 5000), cpu: { machineCores: null, harnessCores: null, sutCores: null }, cutShort: 'backlog', judgement: { sustainable: false, reasons: ['cut-short' as const] }, role: 'search' as const };
    const ok = { ...levelAt(1000, 5000), cpu: { machineCores: 1.5, harnessCores: 0.75, sutCores: 0.5 }, judgement: { sustainable: true, reasons: [] }, role: 'search' as const };
    const target = (name: 'fused' | 'naive', transport: 'embedded' | 'kafka'): TargetReport => ({
      name, transport, description: 'd', status: 'ok' as const, note: null, settings: {}, levels: [ok, cut],
      maxSustainableRate: 1000, firstFailingRate: 8000, limitedBy: ['throughput' as const], halfSaturation: null,
    });
    const report: BenchReport = {
      tool: 'verdict bench', startedAt: '2025-01-01T00:00:00.000Z', finishedAt: '2025-01-01T00:01:00.000Z',
      machine: { cpuModel: 'cpu', cpuCount: 2, memoryBytes: 2 ** 30, freeMemoryBytes: 2 ** 29, node: 'v20.0.0', v8: '11', os: 'linux', loadAverage: [0, 0, 0] },
      git: { commit: null, dirty: null }, notes: [],
      config: {
        command: 'verdict bench', pipeline: { path: 'p', name: 'card-risk', steps: [] }, mode: 'saturate', rates: null, saturation: null,
        durationS: 2, warmupS: 1, windowS: 0.5, generatorTickMs: { embedded: 2, kafka: 10 }, burst: null, sloP99Ms: 50, partitions: 4, overloadPartitions: null, seed: 1, poolSize: 1, poisonRate: 0, kafka: 'mock', targets: ['fused', 'naive'],
      },
      targets: [target('fused', 'embedded'), target('naive', 'kafka')],
      ratios: {}, overload: null, loadAverageAtEnd: [0, 0, 0],
    };
    const cores = renderMarkdown(report).split('\n').filter((l) => /^\| (fused|naive) \| [\d,]+ \|/.test(l)).map((l) => l.split(' | ')[12]);
    assert.deepEqual(cores, ['1.50 / 0.75 / same', '– / – / same', '1.50 / 0.75 / 0.50', '– / – / –']);
  });
});

/** No XML parser in the dependencies: check the structure the chart relies on instead. */
function assertWellFormedSvg(svg: string): void {
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"[^>]*>/);
  assert.match(svg.trim(), /<\/svg>$/);
  assert.doesNotMatch(svg, /NaN|undefined|Infinity/);
  for (const tag of ['g', 'svg', 'text', 'style']) {
    const open = svg.match(new RegExp(`<${tag}[\\s>]`, 'g'))?.length ?? 0;
    const close = svg.match(new RegExp(`</${tag}>`, 'g'))?.length ?? 0;
    assert.equal(open, close, `<${tag}> opened ${open} times, closed ${close}`);
  }
  // Every element that is not closed by a tag closes itself.
  for (const tag of ['line', 'polyline', 'circle', 'rect', 'path']) {
    for (const m of svg.match(new RegExp(`<${tag} [^>]*>`, 'g')) ?? []) assert.ok(m.endsWith('/>'), `unclosed ${m}`);
  }
}
