/**
 * Bounded memory: idle keys start afresh (their own time, or the partition's), are swept at takeChanges,
 * and the key bound evicts the least recently applied key; the gauges' numbers.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PartitionState, type EvictReason } from '../pipeline/state/partition-state.js';
import type { StateRead, StateValues } from '../pipeline/state/types.js';
import { HOUR, key, stateDef, timeSince, windowed } from './helpers/state-def.js';

function values(read: StateRead): StateValues {
  assert.ok('values' in read, `expected values, got ${JSON.stringify(read)}`);
  return read.values;
}

const hex = (s: string): string => Buffer.from(s).toString('hex');

function counted(): { counts: Record<EvictReason, number>; opts: { onEvict(reason: EvictReason): void } } {
  const counts = { idle: 0, lru: 0 };
  return { counts, opts: { onEvict: (reason) => { counts[reason]++; } } };
}

// idleAfter defaults to the longest window: 1 h.
const def = stateDef({ aggregates: [windowed('c', 'count', null, 2 * HOUR, { bucketMs: HOUR }), timeSince('since')], idleAfterMs: HOUR });

describe('idle keys (rule 1)', () => {
  test('a key whose own next event is more than idleAfter later starts afresh, counted', () => {
    const { counts, opts } = counted();
    const s = new PartitionState(def, opts);
    s.apply(0, key('a'), { ts: 0 });
    assert.deepEqual(values(s.apply(1, key('a'), { ts: HOUR + 1 })), { c: 1, since: null });
    assert.deepEqual(counts, { idle: 1, lru: 0 });
  });

  test('exactly idleAfter later is not idle', () => {
    const { counts, opts } = counted();
    const s = new PartitionState(def, opts);
    s.apply(0, key('a'), { ts: 0 });
    assert.deepEqual(values(s.apply(1, key('a'), { ts: HOUR })), { c: 2, since: 3600 });
    assert.deepEqual(counts, { idle: 0, lru: 0 });
  });

  test('a key more than idleAfter behind the partition\'s latest applied time starts afresh, even for an older event', () => {
    const { counts, opts } = counted();
    const s = new PartitionState(def, opts);
    s.apply(0, key('a'), { ts: 0 });
    s.apply(1, key('b'), { ts: HOUR + 1 });
    assert.deepEqual(values(s.apply(2, key('a'), { ts: 10 })), { c: 1, since: null });
    assert.deepEqual(counts, { idle: 1, lru: 0 });
  });

  test('the partition exactly idleAfter ahead keeps the key', () => {
    const s = new PartitionState(def);
    s.apply(0, key('a'), { ts: 0 });
    s.apply(1, key('b'), { ts: HOUR });
    assert.deepEqual(values(s.apply(2, key('a'), { ts: 10 })), { c: 2, since: 0.01 });
  });

  test('takeChanges sweeps idle keys: a tombstone, counted once, the gauges drop', () => {
    const { counts, opts } = counted();
    const s = new PartitionState(def, opts);
    s.apply(0, key('a'), { ts: 0 });
    s.apply(1, key('b'), { ts: 10 });
    const first = s.takeChanges();
    assert.equal(first.length, 3);
    assert.equal(s.bytes, (first[0]?.value?.length ?? 0) + (first[1]?.value?.length ?? 0));
    const bBytes = first[1]?.value?.length ?? 0;
    s.apply(2, key('b'), { ts: HOUR + 5 });
    const second = s.takeChanges();
    assert.deepEqual(second.map((e) => [Buffer.from(e.key).toString(), e.value === null]), [['b', false], ['a', true], ['\u0000verdict.state.meta', false]]);
    assert.deepEqual(counts, { idle: 1, lru: 0 });
    assert.equal(s.keys, 1);
    assert.equal(s.bytes, second[0]?.value?.length);
    assert.ok(bBytes > 0);
    // Swept, a's next event is its first again, and is not counted a second time.
    assert.deepEqual(values(s.apply(3, key('a'), { ts: HOUR + 6 })), { c: 1, since: null });
    assert.deepEqual(counts, { idle: 1, lru: 0 });
  });
});

describe('the key bound', () => {
  const bounded = stateDef({ aggregates: [windowed('c', 'count', null, HOUR)], maxKeysPerPartition: 2 });

  test('inserting a key at the bound evicts the least recently applied key, counted', () => {
    const { counts, opts } = counted();
    const s = new PartitionState(bounded, opts);
    s.apply(0, key('a'), { ts: 0 });
    s.apply(1, key('b'), { ts: 1 });
    s.apply(2, key('a'), { ts: 2 });
    s.apply(3, key('c'), { ts: 3 });
    assert.deepEqual(counts, { idle: 0, lru: 1 });
    assert.deepEqual([...s.snapshot().keys()].sort(), [hex('a'), hex('c')]);
    assert.equal(s.keys, 2);
    // b starts afresh, evicting a (c was applied after it).
    assert.deepEqual(values(s.apply(4, key('b'), { ts: 4 })), { c: 1 });
    assert.deepEqual([...s.snapshot().keys()].sort(), [hex('b'), hex('c')]);
    assert.deepEqual(s.takeChanges().map((e) => [Buffer.from(e.key).toString(), e.value === null]),
      [['a', true], ['b', false], ['c', false], ['\u0000verdict.state.meta', false]]);
  });

  test('a late read does not make a key recent', () => {
    const s = new PartitionState(bounded);
    s.apply(0, key('a'), { ts: 0 });
    s.apply(1, key('b'), { ts: 100_000 });
    s.apply(2, key('a'), { ts: 200_000 });
    s.apply(3, key('b'), { ts: 200_001 });
    assert.deepEqual(values(s.apply(4, key('a'), { ts: 0 })), { c: 1 }); // late: read at 0 (bucket 0 only: a's first event)
    s.apply(5, key('c'), { ts: 200_002 });
    assert.deepEqual([...s.snapshot().keys()].sort(), [hex('b'), hex('c')]);
  });

  test('at the bound, keys that can no longer be read are swept before a live key is evicted', () => {
    const { counts, opts } = counted();
    const s = new PartitionState(stateDef({ aggregates: [windowed('c', 'count', null, HOUR)], maxKeysPerPartition: 2 }), opts);
    s.apply(0, key('a'), { ts: HOUR + 1 });
    // b's only event is more than idleAfter behind the partition: it can never be read again.
    s.apply(1, key('b'), { ts: 0 });
    s.apply(2, key('c'), { ts: HOUR + 2 });
    assert.deepEqual(counts, { idle: 1, lru: 0 });
    assert.deepEqual([...s.snapshot().keys()].sort(), [hex('a'), hex('c')]);
  });
});
