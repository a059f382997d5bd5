import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { silentLogger } from '../core/log.js';
import { createMetrics } from '../core/metrics.js';
import { CommitTracker } from '../streams/runtime/commit-tracker.js';
import { PartitionedStream } from '../streams/runtime/partitioned-stream.js';
import { EmbeddedLog } from '../streams/embedded/embedded-log.js';
import { toEncodedOutcome, type EncodedOutcome, type Outcome } from '../pipeline/outcome.js';
import type { InboundRecord, OutboundRecord } from '../pipeline/record.js';
import { ManualScheduler } from './helpers/manual-scheduler.js';
import { SchemaError } from '../core/errors.js';
import { Subject } from 'rxjs';
import type { Source, SourceEvent } from '../streams/types.js';
import type { TopicPartition } from '../pipeline/record.js';

const tick = () => new Promise<void>((r) => setImmediate(r));
/** One turn on both clocks: admission releases its next block on the stream's (virtual) clock, I/O on the real one. */
const turn = async (scheduler: ManualScheduler): Promise<void> => { scheduler.advance(0); await tick(); };

/** Lifts a per-record stand-in to the block processor the stream calls with each block, encoding with `encode`. */
const perRecord = (fn: (record: InboundRecord) => Promise<Outcome>) =>
  (records: readonly InboundRecord[]): Promise<EncodedOutcome[]> => Promise.all(records.map((r) => fn(r).then((o) => toEncodedOutcome(o, encode(o)))));

/** A stand-in for the engine: outcomes resolve only when the test says so. */
function gatedProcessor() {
  const waiting: Array<() => void> = [];
  let started = 0;
  let maxConcurrent = 0;
  const process = (record: InboundRecord): Promise<Outcome> => {
    started++;
    maxConcurrent = Math.max(maxConcurrent, waiting.length + 1);
    return new Promise((resolve) => waiting.push(() => resolve({ kind: 'dead-letter', record, error: new SchemaError('test'), attempts: 1 })));
  };
  return {
    process,
    releaseAll: () => { for (const r of waiting.splice(0)) r(); },
    get started() { return started; },
    get pending() { return waiting.length; },
    get maxConcurrent() { return maxConcurrent; },
  };
}

const encode = (o: Outcome): OutboundRecord => ({ topic: 'out', key: o.record.key, value: o.record.value ?? '', headers: [] });

describe('decision stream', () => {
  test('admission bounds the records in processing and backpressure pauses the source', async () => {
    const log = new EmbeddedLog();
    log.createTopic('in', 2);
    log.createTopic('out', 1);
    const N = 5000;
    await log.producer().send(Array.from({ length: N }, (_, i) => ({ topic: 'in', key: `k${i % 50}`, value: `v${i}`, headers: [] })));
    const gate = gatedProcessor();
    const scheduler = new ManualScheduler();
    const stream = new PartitionedStream({
      deadLetter: { topic: 'dlq', pipeline: 'p' },
      source: log.consumer({ groupId: 'g', topics: ['in'], maxBatchSize: 200 }),
      sink: log.producer(),
      process: perRecord(gate.process),
      tracker: new CommitTracker(),
      scheduler,
      logger: silentLogger,
      options: { maxInflight: 300, blockSize: 100, maxBuffered: 1000, maxBufferedPerPartition: 600, commitIntervalMs: 50 },
    });
    stream.start();
    for (let i = 0; i < 50; i++) await turn(scheduler);
    assert.ok(gate.started <= 300, `admission: ${gate.started} records started, bound 300`);
    assert.ok(stream.inflight <= 1000 + 200, `buffered ${stream.inflight}: the source was paused near the bound`);
    assert.ok(stream.inflight >= 300, 'but it did read ahead');

    let guard = 0;
    while (log.endOffsets('out').reduce((a, b) => a + b, 0) < N && guard++ < 2000) {
      gate.releaseAll();
      await turn(scheduler);
      assert.ok(gate.pending <= 300, `never more than 300 in processing, saw ${gate.pending}`);
    }
    assert.equal(log.read('out', 0, 0).length, N, 'every record produced exactly once');
    scheduler.advance(50);
    await tick();
    const result = await stream.drain(1000);
    assert.deepEqual(result, { drained: true, abandoned: 0 });
    assert.deepEqual(log.committed('g', 'in'), log.endOffsets('in'), 'everything committed');
    assert.ok(gate.maxConcurrent <= 300);
  });

  test('backpressure is counted: the bounds, the records admitted, and every partition paused and resumed', async () => {
    const log = new EmbeddedLog();
    log.createTopic('in', 2);
    log.createTopic('out', 1);
    const N = 3000;
    await log.producer().send(Array.from({ length: N }, (_, i) => ({ topic: 'in', key: `k${i % 50}`, value: `v${i}`, headers: [] })));
    const gate = gatedProcessor();
    const scheduler = new ManualScheduler();
    const metrics = createMetrics();
    const stream = new PartitionedStream({
      deadLetter: { topic: 'dlq', pipeline: 'p' },
      source: log.consumer({ groupId: 'g', topics: ['in'], maxBatchSize: 200 }),
      sink: log.producer(),
      process: perRecord(gate.process),
      tracker: new CommitTracker(),
      scheduler,
      logger: silentLogger,
      metrics,
      options: { maxInflight: 300, blockSize: 100, maxBuffered: 1000, maxBufferedPerPartition: 600, commitIntervalMs: 50 },
    });
    const value = async (name: string, labels: Record<string, string> = {}): Promise<number | undefined> => {
      const m = await metrics.registry.getSingleMetric(name)?.get();
      return m?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value;
    };
    stream.start();
    assert.deepEqual(await Promise.all(['max_inflight', 'max_buffered', 'max_buffered_per_partition'].map((bound) => value('verdict_stream_bound', { bound }))), [300, 1000, 600]);
    for (let i = 0; i < 50; i++) await turn(scheduler);
    assert.equal(await value('verdict_admitted_events'), gate.pending, 'the records in processing');
    assert.ok(gate.pending > 0 && gate.pending <= 300);
    const paused = await value('verdict_backpressure_pauses_total') ?? 0;
    assert.ok(paused >= 2, `both partitions paused (${paused} pauses)`);
    assert.equal(await value('verdict_paused_partitions'), 2);
    assert.equal(await value('verdict_backpressure_resumes_total'), 0);

    let guard = 0;
    while (log.endOffsets('out').reduce((a, b) => a + b, 0) < N && guard++ < 2000) {
      gate.releaseAll();
      await turn(scheduler);
    }
    assert.equal(log.read('out', 0, 0).length, N);
    const pauses = await value('verdict_backpressure_pauses_total') ?? 0;
    const resumes = await value('verdict_backpressure_resumes_total') ?? 0;
    assert.ok(resumes >= 2, `both partitions resumed (${resumes} resumes)`);
    assert.equal(pauses - resumes, await value('verdict_paused_partitions'), 'every pause not resumed is a partition paused now');
    assert.equal(await value('verdict_admitted_events'), 0, 'nothing in processing once all is acknowledged');
    await stream.drain(1000);
  });

  test('outcomes of a partition are produced in offset order even when they finish out of order', async () => {
    const log = new EmbeddedLog();
    log.createTopic('in', 1);
    log.createTopic('out', 1);
    await log.producer().send(Array.from({ length: 20 }, (_, i) => ({ topic: 'in', key: 'same', value: `v${i}`, headers: [] })));
    const scheduler = new ManualScheduler();
    const stream = new PartitionedStream({
      deadLetter: { topic: 'dlq', pipeline: 'p' },
      source: log.consumer({ groupId: 'g', topics: ['in'] }),
      sink: log.producer(),
      // Later offsets finish first.
      process: perRecord((record) => new Promise((resolve) => setTimeout(() => resolve({ kind: 'dead-letter', record, error: new SchemaError('x'), attempts: 1 }), 40 - 2 * record.offset))),
      tracker: new CommitTracker(),
      scheduler,
      logger: silentLogger,
      options: { blockSize: 5 },
    });
    stream.start();
    // Admission releases the four blocks one turn of the stream's clock apart.
    for (let guard = 0; log.endOffsets('out')[0]! < 20 && guard < 5000; guard++) await turn(scheduler);
    await log.waitForRecords('out', 20);
    assert.deepEqual(log.read('out', 0, 0).map((r) => r.value?.toString()), Array.from({ length: 20 }, (_, i) => `v${i}`));
    await stream.drain(1000);
  });

  test('a commit owed by a revoked generation never lands after the next generation committed further', async () => {
    // daemon-broker-outage's stall: a commit spanning the outage held the queue while the group rejoined and the
    // new generation read and decided everything; the old generation's owed commit then landed last.
    const events = new Subject<SourceEvent>();
    const commits: number[] = [];
    let release = (): void => undefined;
    const source: Source = {
      events$: events,
      commit: (offsets) => {
        commits.push(...offsets.map((o) => o.offset));
        return commits.length === 1 ? new Promise<void>((resolve) => { release = resolve; }) : Promise.resolve();
      },
      pause: () => undefined,
      resume: () => undefined,
      close: () => Promise.resolve(),
    };
    const scheduler = new ManualScheduler();
    const stream = new PartitionedStream({
      deadLetter: { topic: 'dlq', pipeline: 'p' },
      source,
      sink: { send: () => Promise.resolve([]), close: () => Promise.resolve() },
      process: perRecord((record) => Promise.resolve({ kind: 'dead-letter', record, error: new SchemaError('x'), attempts: 1 })),
      tracker: new CommitTracker(),
      scheduler,
      logger: silentLogger,
      options: { commitIntervalMs: 100 },
    });
    stream.start();
    const p0: TopicPartition = { topic: 'in', partition: 0 };
    const batch = (from: number, to: number): SourceEvent => ({ type: 'batch', batch: { ...p0, records: Array.from({ length: to - from }, (_, i) => ({
      ...p0, offset: from + i, key: null, value: Buffer.from('v'), headers: [], timestamp: 0,
    })) } });
    const settle = async (): Promise<void> => { for (let i = 0; i < 20; i++) await tick(); };

    events.next({ type: 'assigned', partitions: [p0] });
    events.next(batch(0, 10));
    await settle();
    scheduler.advance(100);
    await settle();
    assert.deepEqual(commits, [10], 'the first commit is sent and hangs');
    events.next(batch(10, 20));
    await settle();
    scheduler.advance(100); // a commit of 20 queues behind it
    // The rejoin: the old generation owes 20; the new one reads again from the commit (10) to the end.
    events.next({ type: 'revoked', partitions: [p0] });
    events.next({ type: 'assigned', partitions: [p0] });
    events.next(batch(10, 30));
    await settle();
    scheduler.advance(100);
    release();
    await settle();
    assert.deepEqual(commits, [10, 30], 'the owed 20 is not committed after 30');
    await stream.drain(1000);
  });

  test('a sink failure is retried and nothing is committed past an unacknowledged record', async () => {
    const log = new EmbeddedLog();
    log.createTopic('in', 1);
    log.createTopic('out', 1);
    await log.producer().send(Array.from({ length: 10 }, (_, i) => ({ topic: 'in', key: null, value: `v${i}`, headers: [] })));
    const real = log.producer();
    let failures = 2;
    const { TransportError } = await import('../core/errors.js');
    const sink = {
      send: (records: readonly OutboundRecord[]) => (failures-- > 0 ? Promise.reject(new TransportError('broker away')) : real.send(records)),
      close: () => real.close(),
    };
    const scheduler = new ManualScheduler();
    const stream = new PartitionedStream({
      deadLetter: { topic: 'dlq', pipeline: 'p' },
      source: log.consumer({ groupId: 'g', topics: ['in'] }),
      sink,
      process: perRecord((record) => Promise.resolve({ kind: 'dead-letter', record, error: new SchemaError('x'), attempts: 1 })),
      tracker: new CommitTracker(),
      scheduler,
      logger: silentLogger,
    });
    stream.start();
    await tick();
    assert.ok(failures < 2, 'the first send failed');
    await stream.commitNow();
    assert.deepEqual(log.committed('g', 'in'), [undefined], 'nothing committed while the sink fails');
    // The retry's backoffs run on the stream's clock.
    for (let guard = 0; log.endOffsets('out')[0]! < 10 && guard < 1000; guard++) { scheduler.advance(100); await tick(); }
    await log.waitForRecords('out', 10);
    assert.equal(log.read('out', 0, 0).length, 10);
    await stream.drain(1000);
    assert.deepEqual(log.committed('g', 'in'), [10]);
  });
});
