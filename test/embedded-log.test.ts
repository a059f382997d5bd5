/** The embedded log: Kafka's keyed partitioning, offsets, retention, consumer groups, pause, commits and lag. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Partitioners, type PartitionMetadata } from 'kafkajs';
import { VirtualTimeScheduler } from 'rxjs';
import { createRandom } from '../bench/prng.js';
import { TransportError } from '../core/errors.js';
import { EmbeddedLog } from '../streams/embedded/embedded-log.js';
import type { EmbeddedSource } from '../streams/embedded/embedded-source.js';
import { murmur2, partitionForKey } from '../streams/partitioner.js';
import type { SourceEvent } from '../streams/types.js';
import type { InboundRecord, OutboundRecord, TopicPartition } from '../pipeline/record.js';

const out = (topic: string, key: string | null, value = 'v', partition?: number): OutboundRecord =>
  partition === undefined ? { topic, key, value, headers: [] } : { topic, key, value, headers: [], partition };

/** Records every event of a source; `handle` runs inside delivery, as a pipeline's operator would. */
function collect(source: EmbeddedSource, handle: (event: SourceEvent) => void = () => {}) {
  const events: SourceEvent[] = [];
  let completed = false;
  const subscription = source.events$.subscribe({
    next: (event) => {
      events.push(event);
      handle(event);
    },
    complete: () => {
      completed = true;
    },
  });
  const records = (): InboundRecord[] => events.flatMap((e) => (e.type === 'batch' ? [...e.batch.records] : []));
  const offsets = (partition: number): number[] => records().filter((r) => r.partition === partition).map((r) => r.offset);
  const partitionsOf = (type: 'assigned' | 'revoked'): number[][] =>
    events.flatMap((e) => (e.type === type ? [e.partitions.map((p) => p.partition).sort((a, b) => a - b)] : []));
  return { events, records, offsets, partitionsOf, subscription, completed: () => completed };
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);
const sorted = (tps: readonly TopicPartition[]): number[] => tps.map((tp) => tp.partition).sort((a, b) => a - b);

void describe('partitioner', () => {
  void test('murmur2 gives the values asserted by Kafka’s own Utils tests', () => {
    const cases: Array<[string, number]> = [
      ['21', -973932308],
      ['foobar', -790332482],
      ['a-little-bit-long-string', -985981536],
      ['a-little-bit-longer-string', -1486304829],
      ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
      ['abc', 479470107],
    ];
    for (const [key, expected] of cases) assert.equal(murmur2(Buffer.from(key)), expected, key);
  });

  void test('keys land on the partitions kafkajs’s DefaultPartitioner picks', () => {
    const random = createRandom(7);
    const keys: Array<string | Buffer> = [];
    for (let i = 0; i < 600; i++) keys.push(`card-${i}`, `${random.int(0, 1e9)}`, 'é€😀'.repeat(random.int(0, 5)));
    for (let i = 0; i < 300; i++) keys.push(Buffer.from(Array.from({ length: random.int(0, 40) }, () => random.int(0, 255))));
    for (const partitions of [1, 2, 3, 5, 8, 12, 64]) {
      const kafkajs = Partitioners.DefaultPartitioner();
      const partitionMetadata = range(0, partitions).map((partitionId): PartitionMetadata => ({
        partitionId, leader: 0, partitionErrorCode: 0, replicas: [0], isr: [0],
      }));
      for (const key of keys) {
        const expected = kafkajs({ topic: 't', partitionMetadata, message: { key, value: 'v' } });
        assert.equal(partitionForKey(key, partitions), expected, `key ${key.toString()} over ${partitions}`);
      }
    }
  });
});

void describe('EmbeddedLog producing and reading', () => {
  void test('keyed records get increasing offsets per partition, on the partition Kafka would pick', async () => {
    const log = new EmbeddedLog();
    log.createTopic('tx', 3);
    const producer = log.producer();
    const keys = range(0, 60).map((i) => `card-${i % 7}`);
    await producer.send(keys.map((k, i) => out('tx', k, `${i}`)));
    assert.deepEqual(log.endOffsets('tx').reduce((a, b) => a + b, 0), 60);
    for (let p = 0; p < 3; p++) {
      const records = log.read('tx', p, 0);
      assert.deepEqual(records.map((r) => r.offset), range(0, records.length));
      for (const r of records) {
        assert.equal(r.topic, 'tx');
        assert.equal(partitionForKey(r.key ?? '', 3), p);
      }
      // Per-key order holds: a key's values appear in the order they were sent.
      const values = records.map((r) => Number(r.value?.toString()));
      assert.deepEqual(values, [...values].sort((a, b) => a - b));
    }
  });

  void test('records without a key go round-robin and an explicit partition wins over the key', async () => {
    const log = new EmbeddedLog({ defaultPartitions: 4 });
    const producer = log.producer();
    await producer.send(range(0, 8).map(() => out('t', null)));
    assert.deepEqual(log.endOffsets('t'), [2, 2, 2, 2]);
    await producer.send([out('t', 'some-key', 'pinned', 3)]);
    assert.equal(log.read('t', 3, 2)[0]?.value?.toString(), 'pinned');
  });

  void test('a send naming a missing partition rejects and appends nothing', async () => {
    const log = new EmbeddedLog();
    log.createTopic('t', 2);
    const producer = log.producer();
    await assert.rejects(producer.send([out('t', 'a'), out('t', 'b', 'v', 2)]), TransportError);
    assert.deepEqual(log.endOffsets('t'), [0, 0]);
  });

  void test('createTopic is idempotent for the same count and refuses a different one', () => {
    const log = new EmbeddedLog();
    log.createTopic('t', 3);
    log.createTopic('t', 3);
    assert.throws(() => log.createTopic('t', 4), TransportError);
    assert.throws(() => log.createTopic('bad name', 1), TransportError);
    assert.equal(log.partitionCount('t'), 3);
  });

  void test('retention drops the oldest records and reads from before the log start begin at it', () => {
    const log = new EmbeddedLog({ maxRecordsPerPartition: 5 });
    log.append(range(0, 3000).map((i) => out('t', null, `${i}`)));
    assert.deepEqual(log.endOffsets('t'), [3000]);
    assert.deepEqual(log.startOffsets('t'), [2995]);
    assert.deepEqual(log.read('t', 0, 0).map((r) => r.offset), [2995, 2996, 2997, 2998, 2999]);
    assert.deepEqual(log.read('t', 0, 2998, 1).map((r) => r.value?.toString()), ['2998']);
    log.createTopic('small', 1, { maxRecordsPerPartition: 2 });
    log.append(range(0, 10).map((i) => out('small', null, `${i}`)));
    assert.deepEqual([log.startOffsets('small'), log.startOffsets('t')], [[8], [2995]], 'a topic may keep fewer');
  });

  void test('waitForRecords resolves once the topic holds the count, and rejects when aborted', async () => {
    const log = new EmbeddedLog({ defaultPartitions: 2 });
    const reached = log.waitForRecords('t', 3);
    log.append([out('t', 'a'), out('t', 'b')]);
    log.append([out('t', 'c')]);
    await reached;
    const controller = new AbortController();
    const never = log.waitForRecords('t', 100, controller.signal);
    controller.abort(new TransportError('stop'));
    await assert.rejects(never, TransportError);
  });
});

void describe('EmbeddedLog consumers', () => {
  void test('delivery is asynchronous: nothing is emitted inside send, everything arrives afterwards', async () => {
    const log = new EmbeddedLog({ defaultPartitions: 2 });
    const consumer = log.consumer({ groupId: 'g', topics: ['t'] });
    const seen = collect(consumer);
    const sent = log.producer().send(range(0, 100).map((i) => out('t', `k${i}`)));
    assert.equal(seen.records().length, 0);
    await sent;
    await log.waitForRecords('t', 100);
    for (let turn = 0; turn < 100 && seen.records().length < 100; turn++) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(seen.records().length, 100);
    assert.equal(seen.events[0]?.type, 'assigned');
    await consumer.close();
  });

  void test('a consumer announces its assignment, then delivers contiguous batches in offset order up to maxBatchSize', () => {
    const scheduler = new VirtualTimeScheduler();
    const log = new EmbeddedLog();
    log.createTopic('t', 2);
    log.append(range(0, 25).map((i) => out('t', null, `${i}`, i % 2)));
    const consumer = log.consumer({ groupId: 'g', topics: ['t'], maxBatchSize: 4, scheduler });
    const seen = collect(consumer);
    assert.equal(seen.events.length, 0);
    scheduler.flush();
    assert.deepEqual(seen.events[0], { type: 'assigned', partitions: [{ topic: 't', partition: 0 }, { topic: 't', partition: 1 }] });
    for (const event of seen.events.slice(1)) {
      assert.equal(event.type, 'batch');
      if (event.type !== 'batch') continue;
      const offsets = event.batch.records.map((r) => r.offset);
      assert.ok(offsets.length >= 1 && offsets.length <= 4);
      assert.deepEqual(offsets, range(offsets[0] ?? 0, (offsets[0] ?? 0) + offsets.length));
      for (const r of event.batch.records) assert.equal(r.partition, event.batch.partition);
    }
    assert.deepEqual(seen.offsets(0), range(0, 13));
    assert.deepEqual(seen.offsets(1), range(0, 12));
    log.append([out('t', null, 'late', 1)]);
    scheduler.flush();
    assert.deepEqual(seen.offsets(1), range(0, 13));
  });

  void test('two members split the partitions; when one closes the other resumes its partitions from the committed offset', async () => {
    const scheduler = new VirtualTimeScheduler();
    const log = new EmbeddedLog();
    log.createTopic('t', 4);
    log.append(range(0, 400).map((i) => out('t', `card-${i}`, `${i}`)));
    const a = log.consumer({ groupId: 'g', topics: ['t'], scheduler });
    const b = log.consumer({ groupId: 'g', topics: ['t'], scheduler });
    const seenA = collect(a);
    const seenB = collect(b);
    scheduler.flush();

    assert.deepEqual(sorted(a.assignment()), [0, 1]);
    assert.deepEqual(sorted(b.assignment()), [2, 3]);
    const ends = log.endOffsets('t');
    for (const p of [0, 1]) assert.deepEqual(seenA.offsets(p), range(0, ends[p] ?? 0));
    for (const p of [2, 3]) assert.deepEqual(seenB.offsets(p), range(0, ends[p] ?? 0));
    assert.equal(seenB.offsets(0).length + seenB.offsets(1).length, 0);

    // A finished only half of each of its partitions before leaving.
    const commitsA = [0, 1].map((partition) => ({ topic: 't', partition, offset: Math.floor((ends[partition] ?? 0) / 2) }));
    await a.commit(commitsA);
    await a.close();
    assert.ok(seenA.completed());
    // A was told of B's arrival (losing 2 and 3), then of its own departure.
    assert.deepEqual(seenA.partitionsOf('revoked'), [[2, 3], [0, 1]]);
    scheduler.flush();

    assert.deepEqual(sorted(b.assignment()), [0, 1, 2, 3]);
    assert.deepEqual(seenB.partitionsOf('assigned'), [[2, 3], [0, 1]]);
    for (const { partition, offset } of commitsA) {
      // Nothing lost, and the only records seen twice are those beyond A's commit.
      assert.deepEqual(seenB.offsets(partition), range(offset, ends[partition] ?? 0));
    }
    log.append([out('t', null, 'after', 0)]);
    scheduler.flush();
    assert.equal(seenB.offsets(0).at(-1), ends[0]);
  });

  void test('a joining member takes partitions away; a commit made on revoke is where the newcomer starts', () => {
    const scheduler = new VirtualTimeScheduler();
    const log = new EmbeddedLog();
    log.createTopic('t', 4);
    log.append(range(0, 40).map((i) => out('t', null, `${i}`)));
    const a = log.consumer({ groupId: 'g', topics: ['t'], scheduler });
    const processed = new Map<number, number>();
    const seenA = collect(a, (event) => {
      if (event.type === 'batch') processed.set(event.batch.partition, (event.batch.records.at(-1)?.offset ?? -1) + 1);
      // On revoke, commit what was processed, as the pipeline's commit tracker would.
      if (event.type === 'revoked') {
        void a.commit(event.partitions.map((tp) => ({ ...tp, offset: processed.get(tp.partition) ?? 0 })));
      }
    });
    scheduler.flush();
    assert.equal(seenA.records().length, 40);

    log.append(range(0, 8).map((i) => out('t', null, `more-${i}`)));
    const b = log.consumer({ groupId: 'g', topics: ['t'], scheduler });
    const seenB = collect(b);
    scheduler.flush();

    assert.deepEqual(seenA.partitionsOf('revoked'), [[2, 3]]);
    assert.deepEqual(seenB.partitionsOf('assigned'), [[2, 3]]);
    const revokedAt = seenA.events.findIndex((e) => e.type === 'revoked');
    for (const event of seenA.events.slice(revokedAt)) {
      if (event.type === 'batch') assert.ok(event.batch.partition < 2, 'no batch of a revoked partition after revoked');
    }
    // A read partitions 2 and 3 to offset 10 before the newcomer joined; B starts there, with no duplicate.
    assert.deepEqual(seenB.offsets(2), [10, 11]);
    assert.deepEqual(seenB.offsets(3), [10, 11]);
    assert.deepEqual(seenA.offsets(0), range(0, 12));
  });

  void test('pause stops delivery at once, even within a pass, and resume restarts where it left off', () => {
    const scheduler = new VirtualTimeScheduler();
    const log = new EmbeddedLog();
    log.createTopic('t', 2);
    log.append(range(0, 20).map((i) => out('t', null, `${i}`, i % 2)));
    const all = [{ topic: 't', partition: 0 }, { topic: 't', partition: 1 }];
    const consumer = log.consumer({ groupId: 'g', topics: ['t'], maxBatchSize: 3, scheduler });
    const seen = collect(consumer, (event) => {
      if (event.type === 'batch') consumer.pause(all);
    });
    scheduler.flush();
    // The first batch's handler paused both partitions, so the other partition's turn in the same pass is skipped.
    assert.equal(seen.events.filter((e) => e.type === 'batch').length, 1);
    const first = seen.records();
    assert.equal(first.length, 3);

    log.append(range(0, 6).map((i) => out('t', null, 'x', i % 2)));
    scheduler.flush();
    assert.equal(seen.records().length, 3);

    seen.subscription.unsubscribe();
    const resumed = log.consumer({ groupId: 'other', topics: ['t'], scheduler });
    const again = collect(resumed);
    resumed.pause([{ topic: 't', partition: 1 }]);
    scheduler.flush();
    assert.deepEqual(again.offsets(0), range(0, 13));
    assert.deepEqual(again.offsets(1), []);
    resumed.resume([{ topic: 't', partition: 1 }]);
    scheduler.flush();
    assert.deepEqual(again.offsets(1), range(0, 13));
  });

  void test('a paused partition resumes from the next undelivered offset', () => {
    const scheduler = new VirtualTimeScheduler();
    const log = new EmbeddedLog();
    log.append(range(0, 10).map((i) => out('t', null, `${i}`)));
    const consumer = log.consumer({ groupId: 'g', topics: ['t'], maxBatchSize: 4, scheduler });
    const tp = [{ topic: 't', partition: 0 }];
    const seen = collect(consumer, (event) => {
      if (event.type === 'batch' && event.batch.records[0]?.offset === 0) consumer.pause(tp);
    });
    scheduler.flush();
    assert.deepEqual(seen.offsets(0), [0, 1, 2, 3]);
    consumer.resume(tp);
    scheduler.flush();
    assert.deepEqual(seen.offsets(0), range(0, 10));
  });

  void test('commits are stored per group and lag counts from the committed offset', async () => {
    const log = new EmbeddedLog();
    log.createTopic('t', 2);
    log.append(range(0, 10).map((i) => out('t', null, `${i}`, i < 6 ? 0 : 1)));
    const consumer = log.consumer({ groupId: 'g', topics: ['t'], scheduler: new VirtualTimeScheduler() });
    assert.deepEqual(log.committed('g', 't'), [undefined, undefined]);
    assert.equal(log.totalLag('g', 't'), 10);
    await consumer.commit([{ topic: 't', partition: 0, offset: 4 }]);
    assert.deepEqual(log.committed('g', 't'), [4, undefined]);
    assert.deepEqual(log.committed('other', 't'), [undefined, undefined]);
    assert.deepEqual(log.lag('g', 't'), [
      { partition: 0, committed: 4, highWatermark: 6, lag: 2 },
      { partition: 1, committed: undefined, highWatermark: 4, lag: 4 },
    ]);
    await assert.rejects(consumer.commit([{ topic: 't', partition: 5, offset: 1 }]), TransportError);
    await assert.rejects(consumer.commit([{ topic: 't', partition: 1, offset: -1 }]), TransportError);
    assert.deepEqual(log.committed('g', 't'), [4, undefined]);
  });

  void test('groups are independent: each reads every record from its own committed offset', async () => {
    const scheduler = new VirtualTimeScheduler();
    const log = new EmbeddedLog();
    log.append(range(0, 5).map((i) => out('t', null, `${i}`)));
    const first = log.consumer({ groupId: 'one', topics: ['t'], scheduler });
    await first.commit([{ topic: 't', partition: 0, offset: 3 }]);
    const seenOne = collect(first);
    const seenTwo = collect(log.consumer({ groupId: 'two', topics: ['t'], scheduler }));
    scheduler.flush();
    assert.deepEqual(seenOne.offsets(0), [3, 4]);
    assert.deepEqual(seenTwo.offsets(0), range(0, 5));
  });

  void test('resetTo latest skips what was there before the group started', () => {
    const scheduler = new VirtualTimeScheduler();
    const log = new EmbeddedLog();
    log.append(range(0, 5).map((i) => out('t', null, `${i}`)));
    const seen = collect(log.consumer({ groupId: 'g', topics: ['t'], resetTo: 'latest', scheduler }));
    scheduler.flush();
    log.append([out('t', null, 'new')]);
    scheduler.flush();
    assert.deepEqual(seen.offsets(0), [5]);
  });

  void test('close announces the loss of every partition, completes events$ and refuses later commits', async () => {
    const scheduler = new VirtualTimeScheduler();
    const log = new EmbeddedLog({ defaultPartitions: 3 });
    const consumer = log.consumer({ groupId: 'g', topics: ['t'], scheduler });
    const seen = collect(consumer, (event) => {
      // Commits made while handling the final revocation still count.
      if (event.type === 'revoked') void consumer.commit([{ topic: 't', partition: 0, offset: 0 }]);
    });
    scheduler.flush();
    await consumer.close();
    assert.deepEqual(seen.partitionsOf('assigned'), [[0, 1, 2]]);
    assert.deepEqual(seen.partitionsOf('revoked'), [[0, 1, 2]]);
    assert.ok(seen.completed());
    assert.deepEqual(log.committed('g', 't'), [0, undefined, undefined]);
    await assert.rejects(consumer.commit([{ topic: 't', partition: 0, offset: 1 }]), TransportError);
    log.append([out('t', null, 'x')]);
    scheduler.flush();
    assert.equal(seen.records().length, 0);
  });

  void test('a second concurrent subscriber is refused; a later one restarts from the committed offsets', async () => {
    const scheduler = new VirtualTimeScheduler();
    const log = new EmbeddedLog();
    log.append(range(0, 6).map((i) => out('t', null, `${i}`)));
    const consumer = log.consumer({ groupId: 'g', topics: ['t'], scheduler });
    const first = collect(consumer);
    let refused: unknown;
    consumer.events$.subscribe({ error: (err: unknown) => (refused = err) });
    assert.ok(refused instanceof TransportError);
    scheduler.flush();
    assert.deepEqual(first.offsets(0), range(0, 6));
    await consumer.commit([{ topic: 't', partition: 0, offset: 2 }]);
    first.subscription.unsubscribe();

    const second = collect(consumer);
    scheduler.flush();
    assert.deepEqual(second.partitionsOf('assigned'), [[0]]);
    assert.deepEqual(second.offsets(0), range(2, 6));
  });

  void test('round-robin assignment deals partitions of several topics across members', () => {
    const log = new EmbeddedLog({ assignor: 'round-robin' });
    log.createTopic('a', 3);
    log.createTopic('b', 2);
    const scheduler = new VirtualTimeScheduler();
    const one = log.consumer({ groupId: 'g', topics: ['a', 'b'], scheduler });
    const two = log.consumer({ groupId: 'g', topics: ['a', 'b'], scheduler });
    const names = (c: EmbeddedSource): string[] => c.assignment().map((tp) => `${tp.topic}${tp.partition}`).sort();
    assert.deepEqual(names(one), ['a0', 'a2', 'b1']);
    assert.deepEqual(names(two), ['a1', 'b0']);
  });
});
