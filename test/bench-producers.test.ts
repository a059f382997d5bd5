/**
 * The bench's two producers side by side: the main thread's CPU read from /proc (the command name may hold
 * spaces and parentheses), CPU per event between two marks, the medians of `--repeat` runs and their
 * report, and a librdkafka target on a machine without the librdkafka producer (skipped, with the reason,
 * before anything starts). Nothing here measures speed.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { benchOptions, benchCommand } from '../cli/bench-command.js';
import { silentLogger } from '../core/log.js';
import { defaultPipelinePath } from '../core/paths.js';
import { cpuPerEvent, type CpuMark } from '../bench/cpu.js';
import { repeatsOf } from '../bench/harness.js';
import { levelAtMax, ratios, renderMarkdown } from '../bench/report.js';
import type { BenchReport, ReportedLevel, TargetReport } from '../bench/report-types.js';
import { runBench } from '../bench/harness.js';
import { defaultSaturationOptions } from '../bench/saturation.js';
import { startMockCluster } from '../bench/targets/kafka-cluster.js';
import { KafkaTarget } from '../bench/targets/kafka-target.js';
import { LibrdkafkaRounds } from '../bench/targets/librdkafka-rounds.js';
import { kafkaProducerSchema } from '../config/kafka-options.js';
import { loadLibrdkafka, type LibrdkafkaModule } from '../streams/kafka/librdkafka-binding.js';
import { librdkafkaConfig } from '../streams/kafka/librdkafka-config.js';
import { DEFAULT_TARGETS, type TargetName } from '../bench/targets/target.js';
import { clockTicks, mainThreadCpuUs, parseTaskStat } from '../bench/thread-cpu.js';

describe('main-thread CPU from /proc', () => {
  // A real line of /proc/<pid>/task/<tid>/stat with utime 1234 and stime 567 (fields 14 and 15).
  const line = (comm: string): string =>
    `4242 (${comm}) S 1 4242 4242 0 -1 4194560 12345 0 3 0 1234 567 0 0 20 0 11 0 987654 1234567890 54321 18446744073709551615 1 1 0 0 0 0 0 16781312 134234626 0 0 0 17 1 0 0 0 0 0\n`;

  test('utime and stime are fields 14 and 15, counted from the last parenthesis', () => {
    assert.deepEqual(parseTaskStat(line('node')), { utime: 1234, stime: 567 });
    // A command name may contain spaces and parentheses, even ") S 1 2": only the last `)` ends it.
    assert.deepEqual(parseTaskStat(line('my (odd) name')), { utime: 1234, stime: 567 });
    assert.deepEqual(parseTaskStat(line(') 9 9 9 9 9 9 9 9 9 9 9 9 9 (')), { utime: 1234, stime: 567 });
  });

  test('a line without the fields is not read', () => {
    assert.equal(parseTaskStat('4242 node S 1'), null);
    assert.equal(parseTaskStat('4242 (node) S 1 4242'), null);
    assert.equal(parseTaskStat('4242 (node) S 1 4242 4242 0 -1 4194560 12345 0 3 0 x 567'), null);
  });

  test('this process: the main thread\'s CPU grows with work on it and never exceeds the process\'s (null off Linux)', () => {
    assert.ok(clockTicks() > 0);
    if (process.platform !== 'linux') {
      assert.equal(mainThreadCpuUs(), null);
      return;
    }
    const process0 = process.cpuUsage();
    const main0 = mainThreadCpuUs();
    assert.ok(main0 !== null && main0 >= 0);
    // About 100 ms of work on this thread: ten ticks at 100 Hz.
    const until = Date.now() + 100;
    let spin = 0;
    while (Date.now() < until) spin++;
    assert.ok(spin > 0);
    const main1 = mainThreadCpuUs()!;
    const p = process.cpuUsage(process0);
    assert.ok(main1 > main0, `main thread ${main0} → ${main1} µs`);
    // One tick of slack: the process counter is exact, the thread's is rounded down to ticks.
    assert.ok(main1 - main0 <= p.user + p.system + 1e6 / clockTicks(), `main ${main1 - main0} µs, process ${p.user + p.system} µs`);
  });
});

describe('CPU per event between two marks', () => {
  const mark = (at: number, sutUs: number | null, sutMainUs: number | null): CpuMark => ({ at, machineBusyMs: 0, harnessUs: 0, sutUs, sutMainUs });

  test('the process\'s and the main thread\'s µs over the outputs, to one decimal', () => {
    assert.deepEqual(cpuPerEvent(mark(0, 1_000_000, 400_000), mark(2000, 1_600_000, 700_000), 20_000), { processUs: 30, mainThreadUs: 15 });
    assert.deepEqual(cpuPerEvent(mark(0, 0, 0), mark(1000, 100, 70), 3), { processUs: 33.3, mainThreadUs: 23.3 });
  });

  test('nothing measured gives null, never a negative or infinite figure', () => {
    assert.deepEqual(cpuPerEvent(mark(0, null, null), mark(1000, null, null), 10), { processUs: null, mainThreadUs: null });
    assert.deepEqual(cpuPerEvent(mark(0, 100, null), mark(1000, 200, null), 10), { processUs: 10, mainThreadUs: null });
    assert.deepEqual(cpuPerEvent(mark(0, 100, 50), mark(1000, 200, 60), 0), { processUs: null, mainThreadUs: null });
    assert.deepEqual(cpuPerEvent(mark(1000, 100, 50), mark(0, 200, 60), 10), { processUs: null, mainThreadUs: null });
    assert.deepEqual(cpuPerEvent(mark(0, 300, 50), mark(1000, 200, 60), 10), { processUs: null, mainThreadUs: 1 });
    // Marks from before this field existed (absent) measure nothing.
    assert.deepEqual(cpuPerEvent({ at: 0, machineBusyMs: 0, harnessUs: 0, sutUs: 0 }, { at: 1, machineBusyMs: 0, harnessUs: 0, sutUs: 10 }, 1), { processUs: 10, mainThreadUs: null });
  });
});

function level(rate: number, sustainable: boolean, processUs: number | null, mainThreadUs: number | null, role: ReportedLevel['role'] = 'search'): ReportedLevel {
  return {
    offeredRate: rate, offeredMeanRate: rate, achievedRate: rate, measuredS: 2, sent: rate * 2, decided: rate * 2, deadLetters: 0, lost: 0, duplicates: 0,
    latency: { count: rate * 2, p50Ms: 5, p90Ms: 8, p99Ms: sustainable ? 20 : 400, p999Ms: 30, maxMs: 40, meanMs: 6 },
    lagMax: 0, backlogMax: 0, rssMaxBytes: 0, windows: [], lostWhere: null, drainS: 0, drainEnd: { end: 'caught-up', reason: '' }, cutShort: null,
    cpu: { machineCores: 1.8, harnessCores: 0.4, sutCores: 0.9 }, cpuPerEvent: { processUs, mainThreadUs }, eventLoopDelay: { p99Ms: 2, maxMs: 3 },
    judgement: sustainable ? { sustainable: true, reasons: [] } : { sustainable: false, reasons: ['slo'] }, role,
  };
}

function targetReport(name: TargetName, run: number, levels: ReportedLevel[], status: TargetReport['status'] = 'ok'): TargetReport {
  const ok = levels.filter((l) => l.judgement.sustainable && l.role !== 'half-saturation');
  return {
    name, transport: 'kafka', description: 'd', status, note: status === 'ok' ? null : 'the librdkafka producer is unavailable', settings: {}, levels,
    maxSustainableRate: ok.length === 0 ? null : Math.max(...ok.map((l) => l.offeredRate)), firstFailingRate: null, limitedBy: [], halfSaturation: null, run,
  };
}

describe('--repeat: medians over interleaved runs', () => {
  const reports: TargetReport[] = [
    targetReport('verdict-kafka-librdkafka', 1, [level(8000, true, 60, 30), level(16000, true, 50, 25), level(20000, false, 45, 22), level(8000, true, 70, 35, 'half-saturation')]),
    targetReport('passthrough', 1, [level(20000, true, 40, 30)]),
    targetReport('passthrough', 2, [level(22000, true, 38, 28)]),
    targetReport('verdict-kafka-librdkafka', 2, [level(18000, true, 48, 24)]),
    targetReport('verdict-kafka-librdkafka', 3, [level(12000, true, 52, null)]),
    targetReport('passthrough', 3, [level(1000, false, 90, 80)]),
  ];

  test('the CPU of a target is quoted at its highest sustainable level, never the half-saturation check', () => {
    assert.equal(levelAtMax(reports[0]!)?.offeredRate, 16000);
    assert.equal(levelAtMax(reports[5]!), null);
  });

  test('each target\'s rates by run, their median (a run without a sustainable rate counts as 0), and the CPU medians at max', () => {
    const r = repeatsOf(['verdict-kafka-librdkafka', 'passthrough'], reports, 3);
    assert.deepEqual(r.targets, [
      { name: 'verdict-kafka-librdkafka', maxSustainableRates: [16000, 18000, 12000], medianMaxSustainableRate: 16000, medianCpuPerEventAtMax: { processUs: 50, mainThreadUs: 24 } },
      { name: 'passthrough', maxSustainableRates: [20000, 22000, null], medianMaxSustainableRate: 20000, medianCpuPerEventAtMax: { processUs: 38, mainThreadUs: 28 } },
    ]);
    // Ratios then use the medians: 16,000 / 20,000.
    const median = (n: TargetName): number | null => r.targets.find((t) => t.name === n)?.medianMaxSustainableRate ?? null;
    assert.equal(ratios(reports, median)['verdict-kafka-librdkafka/passthrough'], 0.8);
  });

  test('skipped runs are left out; a target skipped every time has no median', () => {
    const skipped = [1, 2, 3].map((run) => targetReport('passthrough-librdkafka', run, [], 'skipped'));
    assert.deepEqual(repeatsOf(['passthrough-librdkafka'], skipped, 3).targets[0], {
      name: 'passthrough-librdkafka', maxSustainableRates: [null, null, null], medianMaxSustainableRate: null, medianCpuPerEventAtMax: { processUs: null, mainThreadUs: null },
    });
  });

  test('the summary has the medians, each run\'s rows, and CPU per event at max and per level', () => {
    const repeats = repeatsOf(['verdict-kafka-librdkafka', 'passthrough'], reports, 3);
    const report: BenchReport = {
      tool: 'verdict bench', startedAt: '2025-01-01T00:00:00.000Z', finishedAt: '2025-01-01T00:01:00.000Z',
      machine: { cpuModel: 'cpu', cpuCount: 2, memoryBytes: 2 ** 30, freeMemoryBytes: 2 ** 29, node: 'v20.0.0', v8: '11', os: 'linux', loadAverage: [0, 0, 0] },
      git: { commit: null, dirty: null }, notes: [],
      config: {
        command: 'verdict bench --repeat 3', pipeline: { path: 'p', name: 'card-risk', steps: [] }, mode: 'saturate', rates: null, saturation: null,
        durationS: 2, warmupS: 1, windowS: 0.5, generatorTickMs: { embedded: 2, kafka: 10 }, burst: null, sloP99Ms: 50, partitions: 4, overloadPartitions: null,
        seed: 1, poolSize: 1, poisonRate: 0, kafka: 'mock', targets: ['verdict-kafka-librdkafka', 'passthrough'], repeat: 3,
      },
      targets: reports, repeats, ratios: {}, overload: null, loadAverageAtEnd: [0, 0, 0],
    };
    const md = renderMarkdown(report);
    assert.match(md, /## Medians of 3 runs/);
    assert.match(md, /\| verdict-kafka-librdkafka \| 16,000, 18,000, 12,000 \| 16,000 \| 50\.0 \/ 24\.0 \|/);
    assert.match(md, /\| passthrough \| 20,000, 22,000, – \| 20,000 \| 38\.0 \/ 28\.0 \|/);
    assert.match(md, /\| verdict-kafka-librdkafka \(run 1\) \| kafka \| 16,000 \| .* \| 50\.0 \/ 25\.0 at 16,000\/s \|/);
    assert.match(md, /\| verdict-kafka-librdkafka \(run 3\) \| 12,000 \| .* \| 52\.0 \/ – \|/);
  });

  test('the command takes --repeat, and refuses it with an overload or a soak', () => {
    const flags = {
      targets: [...DEFAULT_TARGETS], sloP99: 50, startRate: 1000, factor: 2, maxRate: 1e6, bisect: 3, confirm: 1, partitions: 4, seed: 1,
      poisonRate: 0, pipeline: defaultPipelinePath, half: true, overloadDuration: 60,
    };
    assert.equal(benchOptions({ ...flags, repeat: 3 }, 'bench --repeat 3').repeat, 3);
    assert.equal(benchOptions(flags, 'bench').repeat, undefined);
    assert.throws(() => benchOptions({ ...flags, repeat: 3, overload: true }, 'bench'), /--repeat measures levels only/);
    assert.throws(() => benchOptions({ ...flags, repeat: 2, soak: 1 }, 'bench'), /--repeat measures levels only/);
    assert.throws(() => benchCommand().exitOverride().configureOutput({ writeErr: () => undefined }).parse(['--repeat', '0'], { from: 'user' }), /repeat must be a whole number/);
  });
});

describe('a librdkafka target where the librdkafka producer is missing', () => {
  test('the default run has both producers side by side', () => {
    for (const name of ['verdict-kafka', 'verdict-kafka-librdkafka', 'passthrough', 'passthrough-librdkafka'] as const) assert.ok(DEFAULT_TARGETS.includes(name));
  });

  test('is unavailable before anything starts: no broker, no child process', async () => {
    let clusters = 0;
    const target = new KafkaTarget({
      name: 'passthrough-librdkafka', kind: 'passthrough', producerClient: 'librdkafka', description: 'd',
      cluster: () => { clusters++; return Promise.reject(new Error('no broker wanted')); },
      partitions: 1, pipelinePath: defaultPipelinePath, runId: 't', logger: silentLogger, logLevel: 'silent',
      loadLibrdkafka: () => Promise.resolve({ missing: '@confluentinc/kafka-javascript is not installed' }),
    });
    await assert.rejects(target.start(() => undefined), (err: Error) => {
      // The harness skips a target on this name (harness.ts isUnavailableTarget), and reports the message.
      assert.equal(err.name, 'TargetUnavailableError');
      assert.match(err.message, /needs the librdkafka producer: @confluentinc\/kafka-javascript is not installed/);
      return true;
    });
    assert.equal(clusters, 0);
    await target.stop();
  });
});

async function librdkafka(): Promise<LibrdkafkaModule> {
  const loaded = await loadLibrdkafka();
  assert.ok('module' in loaded, `the librdkafka producer is needed for this test: ${'missing' in loaded ? loaded.missing : ''}`);
  return loaded.module;
}

describe('librdkafka rounds, used directly (the baseline\'s producer)', () => {
  test('a round resolves once every record is reported; a round with a failed record rejects; flush rounds count errors', { timeout: 60_000 }, async () => {
    const module = await librdkafka();
    const cluster = await startMockCluster();
    try {
      await cluster.createTopic('rounds', 2);
      const config = librdkafkaConfig({ brokers: cluster.brokers, clientId: 'rounds-test' }, kafkaProducerSchema.parse({ client: 'librdkafka' }));
      const record = (partition: number | null) => ({ key: Buffer.from('k'), value: Buffer.from('v'), headers: [{ h: Buffer.from('x') }], partition });
      const perRecord = await LibrdkafkaRounds.connect(module, config, 'per-record');
      try {
        await perRecord.send('rounds', [record(null), record(0), record(1)]);
        // Partition 99 does not exist: librdkafka reports it failed (or refuses it at once).
        await assert.rejects(perRecord.send('rounds', [record(0), record(99)]), /librdkafka (delivery|produce): .*[Pp]artition/);
        await perRecord.send('rounds', [record(1)]);
      } finally {
        await perRecord.disconnect();
      }
      const flushed = await LibrdkafkaRounds.connect(module, config, 'flush');
      try {
        await flushed.send('rounds', [record(0), record(1)]);
        assert.equal(flushed.errors, 0);
      } finally {
        await flushed.disconnect();
      }
    } finally {
      await cluster.stop();
    }
  });
});

describe('the librdkafka targets, smoke run', () => {
  test('verdict-kafka-librdkafka and passthrough-librdkafka answer every event, name their producer, and report CPU per event', { timeout: 180_000 }, async () => {
    await librdkafka();
    const report = await runBench({
      targets: ['passthrough-librdkafka', 'verdict-kafka-librdkafka'],
      rates: [100],
      saturation: defaultSaturationOptions,
      durationS: 1, warmupS: 0.5, windowS: 0.5, maxBacklogS: 3, drainTimeoutS: 30, drainIdleS: 10, tickMs: { embedded: 2, kafka: 10 },
      halfSaturation: false,
      pipelinePath: defaultPipelinePath, partitions: 2, seed: 11, poolSize: 1000, poisonRate: 0.02,
      primeEvents: 10, primeTimeoutS: 60, targetWarmup: { rate: 100, durationS: 0 },
      command: 'test',
    });
    assert.deepEqual(report.targets.map((t) => [t.name, t.status, t.note]), [['passthrough-librdkafka', 'ok', null], ['verdict-kafka-librdkafka', 'ok', null]]);
    for (const t of report.targets) {
      assert.equal(t.settings['producerClient'], 'librdkafka');
      assert.match(String(t.settings['producer']), /^librdkafka/);
      assert.equal(t.settings['consumer'], 'kafkajs');
      for (const l of t.levels) {
        assert.equal(l.lost, 0, `${t.name} lost events`);
        assert.equal(l.decided + l.deadLetters, l.sent);
        assert.ok(l.cpuPerEvent.processUs !== null && l.cpuPerEvent.processUs > 0, `${t.name}: process CPU per event`);
        if (process.platform === 'linux') {
          assert.ok(l.cpuPerEvent.mainThreadUs !== null && l.cpuPerEvent.mainThreadUs > 0, `${t.name}: main-thread CPU per event`);
          // One tick of slack on each of the two marks of the main thread's counter.
          assert.ok(l.cpuPerEvent.mainThreadUs <= l.cpuPerEvent.processUs + (2 * 1e6 / clockTicks()) / Math.max(1, l.achievedRate * l.measuredS));
        }
      }
    }
    const [passthrough, verdict] = report.targets;
    assert.ok(passthrough!.levels.every((l) => l.deadLetters === 0), 'passthrough forwards everything');
    assert.ok(verdict!.levels.some((l) => l.deadLetters > 0), 'Verdict dead-letters the poison records');
    assert.deepEqual(Object.keys(report.ratios).filter((k) => k.includes('librdkafka')), ['verdict-kafka-librdkafka/passthrough-librdkafka']);
  });
});
