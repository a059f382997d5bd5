/**
 * Per-key state on the embedded transport: the same changelog, restore and exactness as on Kafka, with the
 * embedded log's own (compacted) topic. One group's streams are stopped without committing (as a crash
 * leaves them) and replaced, and a second member joins and takes partitions over; the first decision of
 * every event id and the final state of every key must equal an uninterrupted stream's.
 */
import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Engine } from '../runtime/engine.js';
import { readState } from '../pipeline/state/partition-state.js';
import type { StateValues } from '../pipeline/state/types.js';
import { EmbeddedLog } from '../streams/embedded/embedded-log.js';
import type { OutboundRecord } from '../pipeline/record.js';
import { relaxedTimeouts, samplePipeline, samplePipelinePath, transactions } from './helpers/pipelines.js';

const N = 3_000;
const PARTITIONS = 4;

/** First decision per event id, without latencies or model outputs (those vary in their last bits with the batch). */
function firstDecisions(log: EmbeddedLog, topic: string): Map<string, unknown> {
  const first = new Map<string, unknown>();
  for (let p = 0; p < PARTITIONS; p++) {
    for (const r of log.read(topic, p, 0)) {
      const { latencyMs: _l, outputs: _o, score, ...decision } = JSON.parse(r.value!.toString()) as Record<string, unknown>;
      const id = decision.eventId as string;
      if (!first.has(id)) first.set(id, { ...decision, score: typeof score === 'number' ? Math.round(score * 1e5) / 1e5 : score });
    }
  }
  return first;
}

function finalState(engine: Engine, log: EmbeddedLog, topic: string): Map<string, StateValues> {
  const all = new Map<string, StateValues>();
  for (let p = 0; p < PARTITIONS; p++) {
    const entries = log.read(topic, p, 0).filter((r) => r.key !== null).map((r) => ({ key: r.key!, value: r.value }));
    for (const [key, values] of readState(engine.pipeline.state!, entries)) all.set(key, values);
  }
  return all;
}

describe('per-key state on the embedded transport', () => {
  let engine: Engine;
  before(async () => {
    engine = await Engine.create(relaxedTimeouts(await samplePipeline()), { baseDir: dirname(samplePipelinePath) });
  });
  after(async () => {
    await engine.close();
  });

  test('a crash-like stop, a restart and a rebalance decide as an uninterrupted stream does', { timeout: 120_000 }, async (t) => {
    const { input, output } = engine.pipeline;
    const log = new EmbeddedLog({ defaultPartitions: PARTITIONS });
    log.createTopic(input.topic, PARTITIONS);
    log.createTopic(output.topic, PARTITIONS);
    log.createTopic(output.deadLetter, 1);
    const records: OutboundRecord[] = transactions(N, 21, 0.05).map(({ event }) => ({ topic: input.topic, key: String(event['key']), value: JSON.stringify(event), headers: [] }));
    // The reference reads a copy of the input in its own log.
    const refLog = new EmbeddedLog({ defaultPartitions: PARTITIONS });
    for (const t of [input.topic, output.topic]) refLog.createTopic(t, PARTITIONS);
    refLog.createTopic(output.deadLetter, 1);
    await refLog.producer().send(records);
    const reference = engine.stream(refLog.consumer({ groupId: 'ref', topics: [input.topic] }), refLog.producer());
    await refLog.waitForRecords(output.topic, N);
    assert.deepEqual(await reference.drain(10_000), { drained: true, abandoned: 0 });

    // The group: the first third, then a stop that commits nothing (a crash), then a new member restores.
    await log.producer().send(records.slice(0, N / 3));
    const firstSource = log.consumer({ groupId: 'g', topics: [input.topic] });
    const first = engine.stream(firstSource, log.producer(), { stream: { commitIntervalMs: 60_000 } });
    await log.waitForRecords(output.topic, N / 6);
    // A stop with no time to drain, while records are in flight: what was not committed is read again.
    await log.producer().send(records.slice(N / 3, (2 * N) / 3));
    const stop = await first.drain(0);
    // The member leaves the group as a dead process would (its stream is detached: nothing more is committed).
    await firstSource.close();
    t.diagnostic(`first member stopped: drained ${String(stop.drained)}, ${stop.abandoned} abandoned; committed ${JSON.stringify(log.committed('g', input.topic))}`);
    const second = engine.stream(log.consumer({ groupId: 'g', topics: [input.topic] }), log.producer());
    // A third member joins: partitions move to it, their state restored from the changelog.
    await log.waitForRecords(output.topic, N / 3 + 200);
    const third = engine.stream(log.consumer({ groupId: 'g', topics: [input.topic] }), log.producer());
    await log.producer().send(records.slice((2 * N) / 3));
    while (log.totalLag('g', input.topic) > 0) await new Promise((r) => setTimeout(r, 50));
    await Promise.all([second.drain(10_000), third.drain(10_000)]);
    assert.ok(third.assigned().length > 0 || second.assigned().length < PARTITIONS, 'the rebalance moved partitions');

    const changelog = `g-${engine.pipeline.name}-changelog`;
    assert.ok(log.read(changelog, 0, 0).length > 0, `the changelog is the embedded log's own topic ${changelog}`);
    const got = firstDecisions(log, output.topic);
    const want = firstDecisions(refLog, output.topic);
    assert.equal(got.size, N);
    assert.deepEqual(got, want, 'first decisions equal the uninterrupted run\'s (state values included)');
    assert.deepEqual(finalState(engine, log, changelog), finalState(engine, refLog, `ref-${engine.pipeline.name}-changelog`), 'final state per key equal');
  });

  test('executePipeline keeps per-key state in memory, in call order', async () => {
    const [a, b] = transactions(2, 5, 0).map(({ event }): Record<string, unknown> => ({ ...event, key: 'card-api' }));
    const r1 = await engine.evaluate({ ...a!, id: 'api-1' });
    const r2 = await engine.evaluate({ ...b!, id: 'api-2', ts: Number(a!['ts']) + 1_000 });
    assert.equal(r1.decision?.state?.['txn_count_1h'], 1, 'the first event of the key counts itself (sees: after)');
    assert.equal(r2.decision?.state?.['txn_count_1h'], 2);
    assert.equal(r2.decision?.state?.['since_last_s'], 1);
  });
});

describe('what the state counts', () => {
  test('an event the core dead-letters for its own content (a feature column it cannot build) is not applied', async () => {
    // The sample, with the ip_risk column read from an optional field: an event without it has no such column.
    const file = relaxedTimeouts(await samplePipeline((f) => {
      const schema = f.schemas['transaction']!;
      const dense = f.input.features['dense']!;
      return {
        ...f,
        schemas: { ...f.schemas, transaction: { ...schema, fields: { ...schema.fields, extra: { type: 'number', required: false } } } },
        input: { ...f.input, features: { ...f.input.features, dense: dense.map((c) => ('field' in c && c.field === 'ip_risk' && !('oneHot' in c) && !('equalsField' in c) ? { field: 'extra', transform: 'identity' as const } : c)) } },
      };
    }));
    const engine = await Engine.create(file, { baseDir: dirname(samplePipelinePath) });
    try {
      const [a, b, c] = transactions(3, 9, 0).map(({ event }, i): Record<string, unknown> => ({ ...event, key: 'card-x', id: `x-${i}`, ts: 1_700_000_000_000 + i * 1_000 }));
      const first = await engine.evaluate({ ...a!, extra: 0.1 });
      const rejected = await engine.evaluate(b!);
      const third = await engine.evaluate({ ...c!, extra: 0.1 });
      assert.equal(first.decision?.state?.['txn_count_1h'], 1);
      assert.equal(rejected.outcome.kind === 'dead-letter' ? rejected.outcome.error.code : 'decided', 'INPUT_FEATURE_FAILED');
      assert.equal(third.decision?.state?.['txn_count_1h'], 2, 'the dead-lettered event was not counted');
    } finally {
      await engine.close();
    }
  });
});
