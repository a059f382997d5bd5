/**
 * The stream's half of per-key state, with a stand-in state (the state itself: test/state-*.test.ts):
 * no block starts before its partition's restore, blocks of a partition revoked while restoring never
 * start, a block's changelog records are written only after its outcomes and every earlier block's, and
 * its offsets are committed only after its changelog records (streams/runtime/changelog-writes.ts).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { silentLogger } from '../core/log.js';
import { RecordRejectedError } from '../core/errors.js';
import { CommitTracker } from '../streams/runtime/commit-tracker.js';
import { ChangelogWrites, latestPerKey } from '../streams/runtime/changelog-writes.js';
import { PartitionedStream, type StreamDeps } from '../streams/runtime/partitioned-stream.js';
import { EmbeddedLog } from '../streams/embedded/embedded-log.js';
import type { EncodedOutcome } from '../pipeline/outcome.js';
import type { InboundRecord, OutboundRecord, TopicPartition } from '../pipeline/record.js';
import type { StateRead } from '../pipeline/state/types.js';
import type { RejectedRecord, StreamState } from '../streams/types.js';
import { ManualScheduler } from './helpers/manual-scheduler.js';

const tick = () => new Promise<void>((r) => setImmediate(r));
const turn = async (scheduler: ManualScheduler): Promise<void> => { scheduler.advance(0); await tick(); };

const record = (topic: string, partition: number, key: string, value: string): OutboundRecord => ({ topic, partition, key, value, headers: [] });

describe('changelog writes', () => {
  interface Block { readonly name: string; readonly offset: number }
  function harness() {
    const sends: Array<{ records: readonly OutboundRecord[]; resolve: (r: readonly RejectedRecord[]) => void }> = [];
    const written: string[] = [];
    const refused: string[] = [];
    const writes = new ChangelogWrites<Block>({
      send: (records) => new Promise((resolve) => sends.push({ records, resolve })),
      written: (b) => written.push(b.name),
      refused: (b) => refused.push(b.name),
      failed: () => assert.fail('no write fails here'),
    });
    return { writes, sends, written, refused };
  }
  const p0: TopicPartition = { topic: 'in', partition: 0 };
  const p1: TopicPartition = { topic: 'in', partition: 1 };

  test('a block is written only after it and every earlier block of its partition are delivered; its offsets only after the write', async () => {
    const { writes, sends, written } = harness();
    const a = writes.opened({ tp: p0, block: { name: 'a', offset: 0 }, changelog: [record('cl', 0, 'k1', 'a1'), record('cl', 0, '\u0000meta', 'ma')] });
    const b = writes.opened({ tp: p0, block: { name: 'b', offset: 10 }, changelog: [record('cl', 0, 'k1', 'b1'), record('cl', 0, 'k2', 'b2'), record('cl', 0, '\u0000meta', 'mb')] });
    writes.delivered(b);
    assert.equal(sends.length, 0, 'b waits for a, delivered later');
    writes.delivered(a);
    assert.equal(sends.length, 1);
    // Coalesced: k1's later state only, the meta record of the last block last.
    assert.deepEqual(sends[0]!.records.map((r) => `${String(r.key)}=${String(r.value)}`), ['k1=b1', 'k2=b2', '\u0000meta=mb']);
    assert.deepEqual(written, [], 'nothing committable before the write is acknowledged');
    sends[0]!.resolve([]);
    await tick();
    assert.deepEqual(written, ['a', 'b']);
  });

  test('one write at a time; what is delivered meanwhile goes in the next; a block without records is committable at once', async () => {
    const { writes, sends, written } = harness();
    const a = writes.opened({ tp: p0, block: { name: 'a', offset: 0 }, changelog: [record('cl', 0, 'k', '1')] });
    const b = writes.opened({ tp: p1, block: { name: 'b', offset: 0 }, changelog: [record('cl', 1, 'k', '2')] });
    const c = writes.opened({ tp: p1, block: { name: 'c', offset: 5 }, changelog: [] });
    writes.delivered(a);
    writes.delivered(b);
    assert.equal(sends.length, 1, 'b waits for the write in flight');
    writes.delivered(c);
    assert.deepEqual(written, ['c'], 'no records: straight to the tracker (which still commits p1 only up to b)');
    sends[0]!.resolve([]);
    await tick();
    assert.equal(sends.length, 2);
    assert.deepEqual(sends[1]!.records.map((r) => r.value), ['2']);
    sends[1]!.resolve([]);
    await tick();
    assert.deepEqual(written, ['c', 'a', 'b']);
  });

  test('a refused changelog record halts its partition at the first block of the write; other partitions are written', async () => {
    const { writes, sends, written, refused } = harness();
    const a = writes.opened({ tp: p0, block: { name: 'a', offset: 0 }, changelog: [record('cl', 0, 'k', 'big')] });
    const b = writes.opened({ tp: p0, block: { name: 'b', offset: 3 }, changelog: [record('cl', 0, 'j', 'x')] });
    const c = writes.opened({ tp: p1, block: { name: 'c', offset: 0 }, changelog: [record('cl', 1, 'k', 'y')] });
    writes.delivered(a);
    // b and c are delivered while a's write is in flight: they go together in the next one.
    writes.delivered(b);
    writes.delivered(c);
    sends[0]!.resolve([]);
    await tick();
    assert.equal(sends[1]!.records.length, 2);
    sends[1]!.resolve([{ index: 0, error: new RecordRejectedError('too large') }]);
    await tick();
    assert.deepEqual(refused, ['b']);
    assert.deepEqual(written, ['a', 'c']);
  });

  test('dropping a partition forgets its blocks not yet written', () => {
    const { writes, sends } = harness();
    const a = writes.opened({ tp: p0, block: { name: 'a', offset: 0 }, changelog: [record('cl', 0, 'k', '1')] });
    writes.opened({ tp: p0, block: { name: 'b', offset: 1 }, changelog: [record('cl', 0, 'k', '2')] });
    writes.drop(p0);
    assert.equal(writes.pending, 0);
    writes.delivered(a);
    assert.equal(sends.length, 0);
  });

  test('latestPerKey compares keys by bytes, per partition', () => {
    const out = latestPerKey([
      { topic: 't', partition: 0, key: Buffer.from([1, 2]), value: 'a', headers: [] },
      { topic: 't', partition: 1, key: Buffer.from([1, 2]), value: 'b', headers: [] },
      { topic: 't', partition: 0, key: Buffer.from([1, 2]), value: 'c', headers: [] },
      { topic: 't', partition: 0, key: Buffer.from([1, 3]), value: 'd', headers: [] },
    ]);
    assert.deepEqual(out.map((r) => r.value), ['b', 'c', 'd']);
  });
});

/** A stand-in state: restores when the test says so, and returns one changelog record per block. */
function fakeState() {
  const restores: Array<{ partitions: readonly TopicPartition[]; resolve: (ok: boolean) => void }> = [];
  const applied: number[] = [];
  const released: TopicPartition[] = [];
  const state: StreamState = {
    restore: (partitions) => new Promise((resolve) => restores.push({ partitions, resolve })),
    release: (partitions) => { released.push(...partitions); },
    apply: (records: readonly InboundRecord[]) => {
      for (const r of records) applied.push(r.offset);
      const last = records[records.length - 1]!;
      const states: StateRead[] = records.map(() => ({ values: { n: applied.length } }));
      return { states, changelog: [{ topic: 'cl', partition: last.partition, key: 'meta', value: String(last.offset), headers: [] }] };
    },
  };
  return { state, restores, applied, released };
}

/** A started stream with the stand-in state, in blocks of 5, committing every 10 ms of the virtual clock. */
function startStream(deps: Pick<StreamDeps, 'source' | 'sink' | 'process' | 'scheduler'> & { readonly state: StreamState }): PartitionedStream {
  const stream = new PartitionedStream({
    ...deps,
    deadLetter: { topic: 'dlq', pipeline: 'p' },
    tracker: new CommitTracker(),
    logger: silentLogger,
    options: { blockSize: 5, commitIntervalMs: 10 },
  });
  stream.start();
  return stream;
}

describe('a stream with per-key state', () => {
  test('no block starts before its partition is restored; changelog after outcomes; commits after the changelog', async () => {
    const log = new EmbeddedLog();
    log.createTopic('in', 1);
    log.createTopic('out', 1);
    log.createTopic('cl', 1);
    await log.producer().send(Array.from({ length: 20 }, (_, i) => ({ topic: 'in', key: 'k', value: `v${i}`, headers: [] })));
    const fake = fakeState();
    const scheduler = new ManualScheduler();
    const seenStates: Array<readonly (StateRead | undefined)[] | undefined> = [];
    const sink = log.producer();
    // The changelog write waits for the test: offsets must not be committed meanwhile.
    let holdChangelog: (() => void) | undefined;
    const gatedSink = {
      send: async (records: readonly OutboundRecord[]) => {
        if (records.some((r) => r.topic === 'cl')) await new Promise<void>((resolve) => { holdChangelog = resolve; });
        return sink.send(records);
      },
      close: () => sink.close(),
    };
    const stream = startStream({
      source: log.consumer({ groupId: 'g', topics: ['in'], maxBatchSize: 5 }),
      sink: gatedSink,
      process: (records, states) => {
        seenStates.push(states);
        return Promise.resolve(records.map((r): EncodedOutcome => ({ kind: 'decision', record: r, output: { topic: 'out', key: r.key, value: r.value, headers: [] } } as unknown as EncodedOutcome)));
      },
      state: fake.state,
      scheduler,
    });
    for (let i = 0; i < 20; i++) await turn(scheduler);
    assert.equal(fake.restores.length, 1, 'restore asked on assignment');
    assert.equal(stream.restoring, true);
    assert.deepEqual(fake.applied, [], 'nothing applied before the restore');
    assert.equal(log.endOffsets('out')[0], 0, 'nothing decided before the restore');
    fake.restores[0]!.resolve(true);
    for (let i = 0; i < 20; i++) await turn(scheduler);
    assert.equal(stream.restoring, false);
    assert.deepEqual(fake.applied, Array.from({ length: 20 }, (_, i) => i), 'applied once each, in offset order');
    assert.ok(seenStates.every((s) => s !== undefined && s.length > 0), 'each block got its state reads');
    assert.equal(log.endOffsets('out')[0], 20, 'outcomes written');
    for (let i = 0; i < 10; i++) { scheduler.advance(10); await tick(); }
    assert.equal(log.committed('g', 'in')[0], undefined, 'nothing committed while the changelog write is held');
    while (holdChangelog !== undefined) {
      const release = holdChangelog;
      holdChangelog = undefined;
      release();
      for (let i = 0; i < 5; i++) await turn(scheduler);
    }
    for (let i = 0; i < 10; i++) { scheduler.advance(10); await tick(); }
    assert.equal(log.committed('g', 'in')[0], 20, `committed once the changelog is written (${log.read('cl', 0, 0).length} changelog records)`);
    const changelog = log.read('cl', 0, 0);
    assert.equal(changelog[changelog.length - 1]!.value!.toString(), '19', 'the last block\'s record written last');
    const report = await stream.drain(1000);
    assert.equal(report.drained, true);
  });

  test('a partition revoked while restoring: its blocks never start, its state is released', async () => {
    const log = new EmbeddedLog();
    log.createTopic('in', 1);
    log.createTopic('out', 1);
    await log.producer().send(Array.from({ length: 10 }, (_, i) => ({ topic: 'in', key: 'k', value: `v${i}`, headers: [] })));
    const fake = fakeState();
    const scheduler = new ManualScheduler();
    let processed = 0;
    const source = log.consumer({ groupId: 'g', topics: ['in'], maxBatchSize: 5 });
    const stream = startStream({
      source,
      sink: log.producer(),
      process: (records) => { processed += records.length; return Promise.resolve([]); },
      state: fake.state,
      scheduler,
    });
    for (let i = 0; i < 10; i++) await turn(scheduler);
    assert.equal(fake.restores.length, 1);
    await source.close();
    for (let i = 0; i < 10; i++) await turn(scheduler);
    fake.restores[0]!.resolve(true);
    for (let i = 0; i < 10; i++) await turn(scheduler);
    assert.equal(processed, 0, 'abandoned: the next owner reads them');
    assert.deepEqual(fake.released, [{ topic: 'in', partition: 0 }]);
    assert.equal(log.endOffsets('out')[0], 0);
    assert.equal(stream.inflight, 0, 'nothing left in flight');
  });
});
