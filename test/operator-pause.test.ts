/**
 * The operator's pause of a partitioned stream (the admin API's POST /admin/pause): it stops consumption of
 * every assigned partition, backpressure's resume does not undo it, partitions assigned while it holds start
 * paused, and `resume()` reads on from where it stopped, losing and duplicating nothing.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SchemaError } from '../core/errors.js';
import { silentLogger } from '../core/log.js';
import { toEncodedOutcome, type EncodedOutcome, type Outcome } from '../pipeline/outcome.js';
import type { InboundRecord } from '../pipeline/record.js';
import { EmbeddedLog } from '../streams/embedded/embedded-log.js';
import { CommitTracker } from '../streams/runtime/commit-tracker.js';
import { PartitionedStream } from '../streams/runtime/partitioned-stream.js';
import { ManualScheduler } from './helpers/manual-scheduler.js';

const tick = () => new Promise<void>((r) => setImmediate(r));
const turns = async (scheduler: ManualScheduler, n: number): Promise<void> => {
  for (let i = 0; i < n; i++) { scheduler.advance(0); await tick(); }
};

/** Every record becomes an outcome whose value is the record's value; blocks wait while the gate is shut. */
function gatedProcess() {
  let open = true;
  const waiting: Array<() => void> = [];
  const process = async (records: readonly InboundRecord[]): Promise<EncodedOutcome[]> => {
    if (!open) await new Promise<void>((resolve) => waiting.push(resolve));
    return records.map((record) => {
      const outcome: Outcome = { kind: 'dead-letter', record, error: new SchemaError('x'), attempts: 1 };
      return toEncodedOutcome(outcome, { topic: 'out', key: record.key, value: record.value ?? '', headers: [] });
    });
  };
  return {
    process,
    shut: () => { open = false; },
    openAll: () => { open = true; for (const r of waiting.splice(0)) r(); },
  };
}

function setup(partitions: number, options: { maxBuffered: number; maxBufferedPerPartition: number }) {
  const log = new EmbeddedLog();
  log.createTopic('in', partitions);
  log.createTopic('out', 1);
  const gate = gatedProcess();
  const scheduler = new ManualScheduler();
  const stream = new PartitionedStream({
    deadLetter: { topic: 'dlq', pipeline: 'p' },
    source: log.consumer({ groupId: 'g', topics: ['in'], maxBatchSize: 50 }),
    sink: log.producer(),
    process: gate.process,
    tracker: new CommitTracker(),
    scheduler,
    logger: silentLogger,
    options: { blockSize: 50, maxInflight: 100, commitIntervalMs: 10, ...options },
  });
  const produce = (from: number, to: number) => log.producer().send(
    Array.from({ length: to - from }, (_, i) => ({ topic: 'in', key: `k${from + i}`, value: `v${from + i}`, headers: [] })));
  const out = (): string[] => log.read('out', 0, 0).map((r) => r.value?.toString() ?? '');
  return { log, gate, scheduler, stream, produce, out };
}

describe('operator pause', () => {
  test('a pause taken while backpressure holds the source is not undone when backpressure lets go', async () => {
    const { log, gate, scheduler, stream, produce, out } = setup(2, { maxBuffered: 200, maxBufferedPerPartition: 100 });
    await produce(0, 2000);
    gate.shut();
    stream.start();
    await turns(scheduler, 50);
    const read = stream.inflight;
    assert.ok(read >= 200 && read < 2000, `backpressure paused the source after reading ${read}`);
    assert.equal(stream.pause(), true);
    assert.equal(stream.paused, true);
    assert.equal(stream.pause(), false, 'a second pause changes nothing');

    // Everything read is decided and acknowledged: backpressure would resume here, the operator's pause holds.
    gate.openAll();
    await turns(scheduler, 300);
    await produce(2000, 2500);
    await turns(scheduler, 300);
    assert.equal(stream.inflight, 0, 'what was read before the pause was finished');
    assert.equal(out().length, read, `nothing read after the pause: ${out().length} out, ${read} read before it`);
    scheduler.advance(10);
    await turns(scheduler, 5);
    assert.equal(log.committed('g', 'in').reduce<number>((a, o) => a + (o ?? 0), 0), read, 'and committed');

    assert.equal(stream.resume(), true);
    assert.equal(stream.resume(), false, 'a second resume changes nothing');
    for (let guard = 0; out().length < 2500 && guard < 5000; guard++) await turns(scheduler, 1);
    const values = out();
    assert.equal(values.length, 2500, 'every record decided after the resume');
    assert.equal(new Set(values).size, 2500, 'none twice');
    scheduler.advance(10);
    await tick();
    assert.deepEqual(await stream.drain(1000), { drained: true, abandoned: 0 });
    assert.deepEqual(log.committed('g', 'in'), log.endOffsets('in'), 'everything committed');
  });

  test('partitions assigned while paused start paused, also after a rebalance', async () => {
    const { log, scheduler, stream, produce, out } = setup(4, { maxBuffered: 10_000, maxBufferedPerPartition: 5_000 });
    await produce(0, 400);
    stream.start();
    // Paused before the first delivery pass announced the assignment.
    stream.pause();
    await turns(scheduler, 100);
    assert.equal(stream.assigned().length, 4, 'the stream owns every partition');
    assert.equal(out().length, 0, 'nothing read from partitions assigned while paused');

    // A second member takes half the partitions, then leaves: they come back, and stay paused.
    const other = log.consumer({ groupId: 'g', topics: ['in'] });
    await turns(scheduler, 20);
    assert.equal(stream.assigned().length, 2);
    await other.close();
    await turns(scheduler, 100);
    assert.equal(stream.assigned().length, 4);
    assert.equal(out().length, 0, 'nothing read after the rebalance either');

    stream.resume();
    for (let guard = 0; out().length < 400 && guard < 5000; guard++) await turns(scheduler, 1);
    assert.equal(new Set(out()).size, 400);
    scheduler.advance(10);
    await tick();
    assert.deepEqual(await stream.drain(1000), { drained: true, abandoned: 0 });
    assert.deepEqual(log.committed('g', 'in'), log.endOffsets('in'));
  });
});
