/**
 * The embedded log's changelog: a compacted topic that keeps each key's latest record (tombstones too), with
 * offsets that keep their numbers across the gaps, and the check against the input topic's partitions.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError } from '../core/errors.js';
import { EmbeddedLog } from '../streams/embedded/embedded-log.js';

describe('embedded changelog', () => {
  test('a compacted topic keeps the latest record per key, in offset order, with their offsets', async () => {
    const log = new EmbeddedLog();
    log.createTopic('in', 2);
    const store = log.consumer({ groupId: 'g', topics: ['in'] }).changelog;
    await store.prepare('cl', 'in');
    assert.equal(log.partitionCount('cl'), 2);
    const n = 5_000;
    // 10 keys written over and over, then key k3 deleted: compaction must have run (n >> its threshold).
    await log.producer().send(Array.from({ length: n }, (_, i) => ({ topic: 'cl', partition: 1, key: `k${i % 10}`, value: String(i), headers: [] })));
    await log.producer().send([{ topic: 'cl', partition: 1, key: 'k3', value: null, headers: [] }]);
    assert.equal(log.endOffsets('cl')[1], n + 1, 'offsets keep counting');
    const kept = log.read('cl', 1, 0);
    assert.ok(kept.length < 2_100, `superseded records dropped (${kept.length} kept of ${n + 1})`);
    const latest = new Map<string, string | null>();
    const seen: Array<[number, string, string | null]> = [];
    await store.read('cl', [1], (p, key, value) => seen.push([p, key!.toString(), value?.toString() ?? null]), new AbortController().signal);
    for (const [, key, value] of seen) latest.set(key, value);
    assert.deepEqual([...latest].sort(), Array.from({ length: 10 }, (_, k) => [`k${k}`, k === 3 ? null : String(n - 10 + k)] as [string, string | null]).sort());
    const offsets = log.read('cl', 1, 0).map((r) => r.offset);
    assert.deepEqual(offsets, [...offsets].sort((a, b) => a - b), 'in offset order');
    // Reading from an offset inside a gap starts at the next retained record.
    // Key `once` at offset 0, then `often` 3,000 times: compaction leaves a gap after offset 0.
    await log.producer().send([{ topic: 'cl', partition: 0, key: 'once', value: 'x', headers: [] }]);
    await log.producer().send(Array.from({ length: 3_000 }, (_, i) => ({ topic: 'cl', partition: 0, key: 'often', value: String(i), headers: [] })));
    const p0 = log.read('cl', 0, 0).map((r) => r.offset);
    assert.equal(p0[0], 0);
    assert.ok(p0[1]! > 1, `a gap after offset 0 (${p0.slice(0, 3).join(', ')})`);
    assert.equal(log.read('cl', 0, 1)[0]!.offset, p0[1], 'reading from inside the gap starts at the next retained record');
  });

  test('a changelog whose partition count differs from the input is refused', async () => {
    const log = new EmbeddedLog();
    log.createTopic('in', 3);
    log.createTopic('cl', 2);
    const store = log.consumer({ groupId: 'g', topics: ['in'] }).changelog;
    await assert.rejects(store.prepare('cl', 'in'), (err: unknown) => err instanceof ConfigError && /has 2 partitions/.test(err.message));
  });
});
