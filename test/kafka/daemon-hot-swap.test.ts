/**
 * Hot-swap over the mock broker, the daemon in its default placement (block workers), the registry a temp
 * copy that the test changes under it as another process would:
 * - ten promote/rollback swaps during a sustained stream: nothing failed, lost or dead-lettered, and every
 *   decision ran the version in force when its block was handed to processing (checked against the
 *   daemon's own activation times, which must follow the registry's alias history);
 * - a corrupt candidate (wrong sha256; a manifest that lies about the model) is refused while the old
 *   version keeps serving every event, and the refusal shows in `status()`, the log and `/metrics`.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { createDaemon } from '../../index.js';
import { ModelIntegrityError, ModelSignatureError } from '../../core/errors.js';
import { uniqueTopic } from '../../mock-kafka/mock-broker.js';
import { ModelRegistry } from '../../models/registry.js';
import { copyRegistry, shippedModel, writeAlias, writeVersionByHand } from '../helpers/registry-copy.js';
import { waitUntil } from '../helpers/wait.js';
import { account, describe as describeAccounting } from './helpers/accounting.js';
import { daemonConfigObject, metricSum, writeDaemonConfig } from './helpers/daemon-process.js';
import { describeEachProducer } from '../helpers/producers.js';
import { startHarness, type Harness } from './helpers/harness.js';
import {
  createTopics, produceSteadily, readTopic, transactionMessages, waitForCommittedToEnd, type ReadRecord,
} from './helpers/kafka-io.js';

let h: Harness;

/** Sum of a metric's series whose labels include every `labels` pair, from Prometheus text. */
function metricWhere(text: string, name: string, labels: Record<string, string>): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** The sample pipeline on a private registry, polled every 100 ms, with timeouts no busy 2-core machine reaches. */
function swapPipeline(registry: string) {
  return (p: Record<string, unknown> & { models: Record<string, unknown> }): void => {
    p.models.registry = registry;
    p.models.aliasPollMs = 100;
    for (const step of p['steps'] as Array<Record<string, unknown>>) step['timeoutMs'] = 2_000;
    p['join'] = { ...(p['join'] as object), deadlineMs: 5_000 };
  };
}

interface DecisionValue { eventId: string; policy: string; models: Record<string, string> }

const parse = (d: ReadRecord): DecisionValue => JSON.parse(d.value ?? '') as DecisionValue;

describeEachProducer('hot-swap over Kafka', { timeout: 240_000 }, (producer) => {
  before(async () => { h = await startHarness('hot-swap'); });
  after(async () => { await h.close(); });

  test('ten promote/rollback swaps under a sustained stream: 0 failed, 0 lost, 0 dead-lettered, versions as in force', { timeout: 150_000 }, async (t) => {
    const n = 9_000;
    const root = await copyRegistry();
    const registry = new ModelRegistry(root);
    const topics = await createTopics(h.broker, 'swap', 4);
    const groupId = uniqueTopic('g-swap');
    const daemon = await h.daemon(writeDaemonConfig({ producer, bootstrap: h.broker.bootstrap, groupId, topics, editPipeline: swapPipeline(root) }), 'swap');
    await daemon.waitForLog((l) => l.msg === 'partitions assigned', 'an assignment');

    // Every 7th round of 100 events, 50 ms apart: promote fraud_gbt@4, roll back to 1, ten times in all.
    const swaps: Array<{ at: number; to: string }> = [];
    await produceSteadily(h.producer, topics.input, transactionMessages(n, 21), {
      batch: 100, pauseMs: 50,
      onRound: async (sent) => {
        if (sent % 700 !== 0 || swaps.length >= 10) return;
        if (swaps.length % 2 === 0) await registry.promote('fraud_gbt', 4);
        else await registry.rollback('fraud_gbt');
        swaps.push({ at: Date.now(), to: swaps.length % 2 === 0 ? 'fraud_gbt@4' : 'fraud_gbt@3' });
      },
    });
    assert.equal(swaps.length, 10);
    await waitForCommittedToEnd(h.admin, groupId, topics.input, 60_000);
    // The last old version is unloaded once its last block is done: wait for it, then count exactly.
    let metrics = await daemon.scrapeMetrics();
    const deadline = Date.now() + 10_000;
    while (metricWhere(metrics, 'verdict_model_swaps_total', { event: 'unloaded' }) < 10 && Date.now() < deadline) {
      await sleep(100);
      metrics = await daemon.scrapeMetrics();
    }
    assert.equal(metricWhere(metrics, 'verdict_model_swaps_total', { step: 'gbt', role: 'primary', event: 'loaded' }), 10);
    assert.equal(metricWhere(metrics, 'verdict_model_swaps_total', { event: 'failed' }), 0);
    assert.equal(metricWhere(metrics, 'verdict_model_swaps_total', { step: 'gbt', event: 'unloaded' }), 10);
    assert.equal(metricWhere(metrics, 'verdict_model_info', { step: 'gbt', model: 'fraud_gbt', version: '3' }), 1);
    assert.equal(metricWhere(metrics, 'verdict_model_info', { step: 'gbt', model: 'fraud_gbt', version: '4' }), 0);
    // No step failed or timed out (block workers' metrics are merged into the scrape).
    assert.equal(metricWhere(metrics, 'verdict_step_outcomes_total', { status: 'error' }), 0);
    assert.equal(metricWhere(metrics, 'verdict_step_outcomes_total', { status: 'timeout' }), 0);
    assert.equal(metricSum(metrics, 'verdict_join_incomplete_total'), 0);
    assert.ok(metricWhere(metrics, 'verdict_model_queue_wait_seconds_count', { model: 'fraud_gbt@4' }) > 0, 'queue wait observed for the new version');

    const activations = daemon.logs.filter((l) => l.msg === 'model swapped').map((l) => ({ time: Number(l['time']), to: String(l['to']), generation: Number(l['generation']) }));
    const exit = await daemon.stop();
    assert.equal(exit.code, 0, daemon.describeErrors());

    // The daemon activated exactly the registry's moves, in order, each after the move was written.
    assert.deepEqual(activations.map((a) => a.to), swaps.map((s) => s.to));
    assert.deepEqual(activations.map((a) => a.generation), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);

    const [inputs, decisions, deadLetters] = await Promise.all([
      readTopic(h.broker, topics.input), readTopic(h.broker, topics.output), readTopic(h.broker, topics.dlq),
    ]);
    const a = account(inputs, decisions, deadLetters);
    assert.equal(inputs.length, n);
    assert.equal(a.lost.length, 0, describeAccounting(a));
    assert.equal(a.duplicates.length, 0, describeAccounting(a));
    assert.equal(deadLetters.length, 0, describeAccounting(a));
    assert.equal(decisions.length, n);

    // The version in force at time t, by the daemon's activations; every decision's gbt version must be one
    // in force at some moment between its input's produce time and its own (its block was stamped then).
    const inForce = (time: number): string => activations.filter((x) => x.time <= time).at(-1)?.to ?? 'fraud_gbt@3';
    const input = new Map(inputs.map((r) => [(JSON.parse(r.value ?? '{}') as { id: string }).id, r]));
    const byPartition = new Map<number, Array<{ offset: number; version: string }>>();
    const mismatches: string[] = [];
    for (const d of decisions) {
      const value = parse(d);
      assert.equal(value.policy, 'rules', d.value ?? '');
      const version = value.models['gbt'];
      assert.ok(version !== undefined, `the gbt version is recorded: ${d.value}`);
      const source = input.get(value.eventId)!;
      const possible = new Set([inForce(source.ts), ...activations.filter((x) => x.time > source.ts && x.time <= d.ts).map((x) => x.to)]);
      if (!possible.has(version)) mismatches.push(`${value.eventId} ran ${version}, in force: ${[...possible].join('|')}`);
      const list = byPartition.get(source.partition) ?? [];
      list.push({ offset: source.offset, version });
      byPartition.set(source.partition, list);
    }
    assert.deepEqual(mismatches.slice(0, 5), [], `${mismatches.length} decisions ran a version not in force`);
    // Per partition in offset order, the version changes only at swaps: at most eleven runs, never interleaved.
    for (const [partition, list] of byPartition) {
      list.sort((x, y) => x.offset - y.offset);
      const runs = list.filter((x, i) => i === 0 || list[i - 1]!.version !== x.version).length;
      assert.ok(runs <= 11, `partition ${partition}: ${runs} runs of versions for 10 swaps`);
    }

    // Swap latency: from the alias written to the first decision on the new version.
    const latencies = swaps.map((s) => {
      const first = Math.min(...decisions.filter((d) => d.ts >= s.at && parse(d).models['gbt'] === s.to).map((d) => d.ts));
      return first - s.at;
    }).sort((x, y) => x - y);
    t.diagnostic(`swap latency (alias written → first decision on the new version), aliasPollMs 100, ms: ` +
      `min ${latencies[0]}, median ${latencies[5]}, max ${latencies[9]}; ${n} events, 10 swaps`);
  });

  test('a corrupt candidate is refused; the old version serves every event; the refusal is in status(), the log and /metrics', { timeout: 120_000 }, async () => {
    const n = 3_000;
    const root = await copyRegistry();
    const topics = await createTopics(h.broker, 'corrupt', 2);
    const groupId = uniqueTopic('g-corrupt');
    const { config } = daemonConfigObject({ producer, bootstrap: h.broker.bootstrap, groupId, topics, editPipeline: swapPipeline(root) });
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done): void {
        for (const l of chunk.toString('utf8').split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    });
    const daemon = await createDaemon(config, { logger: pino({ level: 'info' }, sink) });
    let stopped = false;
    try {
      await daemon.start();
      const models = daemon.models!;
      const gbt = () => models.status().steps.find((s) => s.step === 'gbt')!.roles[0]!;
      const scrape = async () => (await fetch(`http://127.0.0.1:${daemon.metricsPort}/metrics`)).text();

      // Wrong sha256: the file's bytes are not the manifest's. Then a manifest that lies about the model.
      await writeVersionByHand(root, 'fraud_gbt', 5, { modelFile: shippedModel('fraud_gbt', 4), manifestOf: { name: 'fraud_gbt', version: 4 }, sha256: 'wrong' });
      await writeVersionByHand(root, 'fraud_gbt', 6, { modelFile: shippedModel('txn_autoencoder', 2), manifestOf: { name: 'fraud_gbt', version: 4 }, sha256: 'honest' });
      const refusals: Array<{ ref: string; code: string }> = [];
      await produceSteadily(h.producer, topics.input, transactionMessages(n, 22), {
        batch: 100, pauseMs: 40,
        onRound: async (sent) => {
          if (sent === 1_000) {
            await writeAlias(root, 'fraud_gbt', 'production', 5);
            await waitUntil(() => gbt().refused?.ref === 'fraud_gbt@5', 'the wrong-sha256 version refused', 10_000);
            refusals.push({ ref: gbt().refused!.ref, code: gbt().refused!.code });
            const metrics = await scrape();
            assert.equal(metricWhere(metrics, 'verdict_model_swaps_total', { step: 'gbt', role: 'primary', event: 'failed' }), 1);
            assert.equal(metricWhere(metrics, 'verdict_model_info', { step: 'gbt', version: '3' }), 1);
          }
          if (sent === 2_000) {
            await writeAlias(root, 'fraud_gbt', 'production', 6);
            await waitUntil(() => gbt().refused?.ref === 'fraud_gbt@6', 'the lying manifest refused', 10_000);
            refusals.push({ ref: gbt().refused!.ref, code: gbt().refused!.code });
          }
        },
      });
      assert.deepEqual(refusals, [{ ref: 'fraud_gbt@5', code: ModelIntegrityError.code }, { ref: 'fraud_gbt@6', code: ModelSignatureError.code }]);
      await waitForCommittedToEnd(h.admin, groupId, topics.input, 45_000);

      const status = models.status();
      assert.equal(status.generation, 0, 'nothing was ever activated');
      assert.equal(gbt().ref, 'fraud_gbt@3');
      const metrics = await scrape();
      assert.equal(metricWhere(metrics, 'verdict_model_swaps_total', { step: 'gbt', event: 'failed' }), 2);
      assert.equal(metricWhere(metrics, 'verdict_model_swaps_total', { event: 'loaded' }), 0);
      assert.equal(metricWhere(metrics, 'verdict_model_info', { step: 'gbt', model: 'fraud_gbt', version: '3' }), 1);
      assert.equal(metricWhere(metrics, 'verdict_step_outcomes_total', { status: 'error' }), 0);
      assert.equal(metricWhere(metrics, 'verdict_step_outcomes_total', { status: 'timeout' }), 0);
      const refusedLines = lines.filter((l) => l['msg'] === 'model swap refused; the old version keeps serving');
      assert.deepEqual(refusedLines.map((l) => [l['level'], l['code'], l['to']]), [
        [50, ModelIntegrityError.code, 'fraud_gbt@5'], [50, ModelSignatureError.code, 'fraud_gbt@6'],
      ]);

      const report = await daemon.stop();
      stopped = true;
      assert.deepEqual(report, { drained: true, abandoned: 0 });
      const [inputs, decisions, deadLetters] = await Promise.all([
        readTopic(h.broker, topics.input), readTopic(h.broker, topics.output), readTopic(h.broker, topics.dlq),
      ]);
      const a = account(inputs, decisions, deadLetters);
      assert.equal(a.lost.length, 0, describeAccounting(a));
      assert.equal(deadLetters.length, 0);
      assert.equal(decisions.length, n);
      for (const d of decisions) {
        const value = parse(d);
        assert.equal(value.policy, 'rules', d.value ?? '');
        assert.equal(value.models['gbt'], 'fraud_gbt@3');
      }
    } finally {
      if (!stopped) await daemon.stop();
    }
  });
});
